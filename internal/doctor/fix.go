package doctor

import (
	"errors"
	"fmt"

	"github.com/rdctl/rdctl/internal/plan"
)

// FixAction is the action of every step FixPlan makes; the step's target
// is the check's ID.
const FixAction = "fix"

// FixError is a fix that failed; the plan stops there.
type FixError struct {
	ID  string // the check's
	Err error
}

func (e *FixError) Error() string { return fmt.Sprintf("fixing %s: %v", e.ID, e.Err) }
func (e *FixError) Unwrap() error { return e.Err }

// FixPlan has one step per check in cs that failed and is fixable, in
// order: the repairs `rdctl doctor --fix` makes. Each step looks at the
// files again, in Pending and in Apply, and repairs its problem only if it
// is still there: the plan may run after others changed the files (a
// recovered rotation, another fix), and a dry run must say what a real
// run would do now.
func FixPlan(in Input, cs []Check) []plan.Step {
	var out []plan.Step
	for _, c := range cs {
		if !c.OK && c.Fixable {
			out = append(out, &fixStep{in: in, id: c.ID})
		}
	}
	return out
}

type fixStep struct {
	in            Input
	id            string
	before, after string // the problem, and what the fix changed
}

func (s *fixStep) Action() string { return FixAction }
func (s *fixStep) Target() string { return s.id }

// current is the step's check as the files are now, and whether it still
// needs fixing.
func (s *fixStep) current() (Check, bool) {
	for _, c := range s.in.fileChecks() {
		if c.ID == s.id {
			return c, !c.OK && c.Fixable && c.Fix != nil
		}
	}
	return Check{}, false
}

func (s *fixStep) Pending() (bool, error) {
	c, pending := s.current()
	if pending {
		s.before = c.Message
	}
	return pending, nil
}

func (s *fixStep) Apply() (bool, error) {
	c, pending := s.current()
	if !pending {
		return false, nil
	}
	s.before = c.Message
	change, err := c.Fix()
	if err != nil {
		return false, &FixError{ID: s.id, Err: err}
	}
	s.after = change
	return change != "", nil
}

// Detail is the problem and, after a real run, what the fix changed.
func (s *fixStep) Detail() (before, after string) { return s.before, s.after }

// FixResult is what one fix did.
type FixResult struct {
	ID     string `json:"id"`
	Change string `json:"change,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Fixed lists what the fix steps of a real run did, for doctor's "fixed"
// output: each fix that changed something, then the one that failed (err
// from the run), if any. A dry run fixed nothing.
func Fixed(rep plan.Report, err error) []FixResult {
	out := []FixResult{}
	if rep.DryRun {
		return out
	}
	for _, s := range rep.Steps {
		if s.Action == FixAction && s.Changed {
			out = append(out, FixResult{ID: s.Target, Change: s.After})
		}
	}
	var fe *FixError
	if errors.As(err, &fe) {
		out = append(out, FixResult{ID: fe.ID, Error: fe.Err.Error()})
	}
	return out
}
