package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
//
// Before that, state an older rdctl kept in the working directory
// (backups/, staged/, the journal) is moved into rdctl's state directory
// (see migrationStep), so that recovery and the command see one layout.
func (e *env) newPlan(ctx context.Context, rec *deploy.Record) *plan.Plan {
	p := &plan.Plan{}
	if rec != nil && rec.WorkingDir != "" {
		if l, err := rotate.FindLegacy(e.under(rec.WorkingDir)); !l.Empty() || err != nil {
			p.Add(e.migrationStep(rec))
		}
		if pending, err := rotate.NeedsResume(e.under(rec.WorkingDir), e.stateDir(rec)); pending || err != nil {
			// An unreadable journal is added too: its step fails, in a dry
			// run as in the real one.
			p.Add(e.recoveryStep(ctx, rec))
		}
	}
	return p
}

// stateDir is rdctl's own state directory for rec's deployment (backups,
// the staged key, the journal), resolved under --root.
func (e *env) stateDir(rec *deploy.Record) string {
	return e.under(deploy.StateDirFor(rec.WorkingDir))
}

// migrationStep is rotate.Migrate as a plan step: the state an older rdctl
// kept in the working directory moves to the state directory, and each
// thing it did is a warning line.
func (e *env) migrationStep(rec *deploy.Record) plan.Step {
	wd, sd := e.under(rec.WorkingDir), e.stateDir(rec)
	return &plan.Func{
		Verb: "move rdctl's state out of the working directory", Object: wd, To: sd,
		Check: func() (bool, error) {
			l, err := rotate.FindLegacy(wd)
			return !l.Empty(), err
		},
		Do: func() (bool, error) {
			m, err := rotate.Migrate(rotate.Options{WorkingDir: wd, StateDir: sd, BackupOwner: e.backupOwner(), Hook: rotateFaultHook})
			e.reportMigration(m)
			if err != nil {
				return m.Changed(), fmt.Errorf("moving rdctl's state out of %s: %w", wd, err)
			}
			return m.Changed(), nil
		},
	}
}

// reportMigration says what the migration did, one warning line each.
func (e *env) reportMigration(m *rotate.Migration) {
	if m == nil {
		return
	}
	for _, b := range m.Migrated {
		e.warnf("moved the backup %s out of the working directory to %s", filepath.Base(b), b)
	}
	if m.Quarantined != "" {
		e.warnf("a staged key was in the working directory, where the service user can write: it is not trusted and will not be committed; put aside in %s (stage a new one with rdctl rotate --stage)", m.Quarantined)
	}
	if m.StagedErr != "" {
		e.warnf("removed staged/ from the working directory: it held no valid key pair (%s)", m.StagedErr)
	}
	if m.Journal != nil {
		e.warnf("removed a rotation journal an older rdctl left in the working directory (%s, backup %s); it is not resumed: check the live key with rdctl status", m.Journal.Op, m.Journal.Stamp)
	}
	if m.JournalErr != "" {
		e.warnf("removed an invalid rotation journal from the working directory: %s", m.JournalErr)
	}
	for _, l := range m.Left {
		e.warnf("left %s in the working directory: %s; inspect and remove it by hand", l.Path, l.Reason)
	}
}

// recoveryStep is rotate.Resume as a plan step.
func (e *env) recoveryStep(ctx context.Context, rec *deploy.Record) plan.Step {
	wd, sd := e.under(rec.WorkingDir), e.stateDir(rec)
	return &plan.Func{
		Verb: "finish or roll back the interrupted rotation in", Object: wd,
		Check: func() (bool, error) { return rotate.NeedsResume(wd, sd) },
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
