package main

import (
	"context"
	"fmt"
	"os"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
)

// newPlan starts the plan of a mutating command. Where rec's working
// directory holds an interrupted rotation, the first step finishes or rolls
// it back, so that the command's own steps act on the key that stays; a dry
// run shows that step. (A rotation can only be interrupted by a crash, and a
// crashed rdctl holds no lock: the state this sees is the one the real run
// finds under the lock, unless another rdctl crashes in between, and then
// the next run recovers.)
func (e *env) newPlan(ctx context.Context, rec *deploy.Record) *plan.Plan {
	p := &plan.Plan{}
	if rec != nil && rec.WorkingDir != "" {
		if pending, err := rotate.NeedsResume(e.under(rec.WorkingDir)); pending || err != nil {
			// An unreadable journal is added too: its step fails, in a dry
			// run as in the real one.
			p.Add(e.recoveryStep(ctx, rec))
		}
	}
	return p
}

// recoveryStep is rotate.Resume as a plan step.
func (e *env) recoveryStep(ctx context.Context, rec *deploy.Record) plan.Step {
	wd := e.under(rec.WorkingDir)
	return &plan.Func{
		Verb: "finish or roll back the interrupted rotation in", Object: wd,
		Check: func() (bool, error) { return rotate.NeedsResume(wd) },
		Do: func() (bool, error) {
			if _, err := os.Lstat(wd); err != nil {
				return false, nil
			}
			o, err := e.rotateOptions(ctx, rec, true)
			if err != nil {
				return false, err
			}
			r, err := rotate.Resume(ctx, o)
			if err != nil {
				return false, withHints(fmt.Errorf("an interrupted rotation could not be finished or rolled back: %w", err), "rdctl rotate --resume")
			}
			e.reportRecovery(r)
			e.recovered = r
			return r != nil, nil
		},
	}
}

// execute runs p: with --dry-run it only asks each step what it would do;
// otherwise it applies the steps under rdctl's lock. In an image tree built
// without root it says, once, who owns what it wrote. Both end in the same
// report, which is what every mutating command prints.
func (e *env) execute(p *plan.Plan) (plan.Report, error) {
	if !e.dryRun {
		unlock, err := e.lock()
		if err != nil {
			return plan.NewReport(nil, false), err
		}
		defer unlock()
	}
	rs, err := p.Run(e.dryRun)
	rep := plan.NewReport(rs, e.dryRun)
	if e.root != "" && !e.dryRun && rep.Changed && os.Geteuid() != 0 {
		e.hintf("the files written into %s belong to you (uid %d), not root: on the target, systemd-sysusers and StateDirectory= settle ownership at boot, and rdctl doctor --fix repairs it on a live host", e.root, os.Geteuid())
	}
	return rep, err
}

// executeLocal runs p like execute, for a plan that writes only where the
// caller said (key gen --dir, export --out): no root and no lock, since
// nothing of the server's is touched.
func (e *env) executeLocal(p *plan.Plan) (plan.Report, error) {
	rs, err := p.Run(e.dryRun)
	return plan.NewReport(rs, e.dryRun), err
}

// printReport prints one line per step: what changed, what would, and
// (with -v) what was already right.
func (e *env) printReport(r plan.Report) {
	for _, s := range r.Steps {
		detail := ""
		switch {
		case s.Before != "" && s.After != "":
			detail = fmt.Sprintf(" (%s -> %s)", s.Before, s.After)
		case s.After != "":
			detail = " to " + s.After
		}
		switch {
		case s.Changed && r.DryRun:
			e.printf("would %s %s%s\n", s.Action, s.Target, detail)
		case s.Changed:
			e.printf("%s %s%s\n", pastTense(s.Action), s.Target, detail)
		default:
			if e.verbose {
				e.printf("unchanged %s\n", s.Target)
			}
		}
	}
	if r.DryRun {
		e.printf("dry run: %d of %d steps would change something; nothing was written\n", r.ChangedCount(), len(r.Steps))
	}
}
