package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/plan"
)

func doctorCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "doctor",
		Usage:       "find what breaks or weakens the server, and repair what is safe to repair",
		Description: helpText("doctor"),
		Flags:       []cli.Flag{&cli.BoolFlag{Name: "fix", Usage: "repair what is safe to repair (modes, owners, .pub)"}},
		Action:      func(ctx context.Context, cmd *cli.Command) error { return runDoctor(ctx, e, cmd.Bool("fix")) },
	}
}

// doctorJSON is doctor's output. With --fix it carries the fixes' plan
// report (dry_run, changed, steps: one "fix" step per fixable problem,
// target the check's ID); without, doctor only reads and has no plan.
type doctorJSON struct {
	*plan.Report
	OK       bool               `json:"ok"`
	Problems int                `json:"problems"`
	Root     string             `json:"root,omitempty"`
	Fixed    []doctor.FixResult `json:"fixed"`
	Checks   []doctor.Check     `json:"checks"`
}

// doctorInput gathers what the checks look at: files always, unit states
// and sockets only on a live host.
func (e *env) doctorInput(ctx context.Context, rec *deploy.Record) doctor.Input {
	in := doctor.Input{Root: e.root, Record: rec, Accounts: doctor.Accounts{Root: e.root}, BackupOwner: e.backupOwner()}
	if e.root != "" {
		return in
	}
	switch rec.Backend {
	case deploy.BackendSystemd:
		in.Units, in.UnitsErr = liveUnitStates(ctx, []string{rec.HBBSUnit, rec.HBBRUnit})
	case deploy.BackendCompose:
		in.Containers, in.ContainersErr = inspectStack(ctx, rec)
	}
	in.Listeners, in.ListenersErr = doctor.ReadListeners("/proc")
	return in
}

func runDoctor(ctx context.Context, e *env, fix bool) error {
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	in := e.doctorInput(ctx, rec)
	checks := doctor.Run(ctx, in)
	out := doctorJSON{Root: e.root, Fixed: []doctor.FixResult{}}
	var fixErr *doctor.FixError
	if fix {
		p := e.newPlan(ctx, rec)
		p.Add(doctor.FixPlan(in, checks)...)
		rep, err := e.execute(p)
		// A fix that fails is reported with the checks (the problem
		// stays, so doctor exits 1); anything else stops here.
		if err != nil && !errors.As(err, &fixErr) {
			return err
		}
		out.Report, out.Fixed = &rep, doctor.Fixed(rep, err)
		if !rep.DryRun {
			checks = doctor.Run(ctx, e.doctorInput(ctx, rec))
		}
	}
	out.Checks, out.Problems = checks, doctor.Problems(checks)
	out.OK = out.Problems == 0
	if e.json {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
		if !out.OK {
			return &checkFailedError{}
		}
		return nil
	}
	if out.Report != nil {
		printFixes(e, *out.Report)
	}
	if fixErr != nil {
		fmt.Fprintf(e.stderr, "rdctl: error: %s\n", redact(fixErr.Error()))
	}
	printChecks(e, checks)
	if out.OK {
		e.printf("no problems\n")
		return nil
	}
	fmt.Fprintf(e.stderr, "rdctl: error: %d problem%s found\n", out.Problems, map[bool]string{true: "", false: "s"}[out.Problems == 1])
	if n := fixable(checks); n > 0 && !fix {
		e.hintf("%d of them can be repaired safely: rdctl doctor --fix", n)
	}
	return &checkFailedError{}
}

// printFixes prints the fix plan's report in doctor's words: the problem a
// dry run would fix, the change a real run made.
func printFixes(e *env, r plan.Report) {
	for _, s := range r.Steps {
		switch {
		case !s.Changed:
		case s.Action == doctor.FixAction && r.DryRun:
			e.printf("would fix %s: %s\n", s.Target, s.Before)
		case s.Action == doctor.FixAction:
			e.printf("fixed %s: %s\n", s.Target, s.After)
		case r.DryRun:
			e.printf("would %s %s\n", s.Action, s.Target)
		default:
			e.printf("%s %s\n", pastTense(s.Action), s.Target)
		}
	}
}

// printChecks prints the table (with -q only the problems).
func printChecks(e *env, checks []doctor.Check) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	for _, c := range checks {
		if e.quiet && !c.Problem() {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", doctorMark(c), c.ID, c.Message)
	}
	tw.Flush()
	for _, c := range checks {
		if c.Problem() && c.Hint != "" {
			e.hintf("%s: %s", c.ID, c.Hint)
		}
	}
}

func fixable(checks []doctor.Check) int {
	n := 0
	for _, c := range checks {
		if c.Problem() && c.Fixable {
			n++
		}
	}
	return n
}

// doctorMark is the first column of a check's line.
func doctorMark(c doctor.Check) string {
	switch {
	case c.Skipped:
		return "skip"
	case c.OK:
		return "ok"
	case c.Severity == doctor.SeverityError:
		return "FAIL"
	case c.Severity == doctor.SeverityWarning:
		return "WARN"
	default:
		return "info"
	}
}
