package plan

// Report is what every mutating command reports, and what its --json
// output carries at the top level: the same schema for a dry run and a
// real run, so a script can diff one against the other. Commands embed it
// in their JSON and add their own fields next to it.
type Report struct {
	DryRun  bool         `json:"dry_run"`
	Changed bool         `json:"changed"`
	Steps   []StepReport `json:"steps"`
}

// StepReport is one step of a [Report].
type StepReport struct {
	Action  string `json:"action"`
	Target  string `json:"target"`
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`
	Changed bool   `json:"changed"`
}

// NewReport turns the results of [Plan.Run] into a Report. Steps is never
// nil, so JSON always carries a list.
func NewReport(rs []Result, dryRun bool) Report {
	r := Report{DryRun: dryRun, Steps: []StepReport{}}
	for _, x := range rs {
		r.Steps = append(r.Steps, StepReport{Action: x.Action, Target: x.Target, Before: x.Before, After: x.After, Changed: x.Changed})
		r.Changed = r.Changed || x.Changed
	}
	return r
}

// ChangedCount counts the steps that changed (or would change) something.
func (r Report) ChangedCount() int {
	n := 0
	for _, s := range r.Steps {
		if s.Changed {
			n++
		}
	}
	return n
}
