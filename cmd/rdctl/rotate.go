package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
)

// rotateFaultHook, when set, is called at every step boundary of a
// rotation (rotate.Points). Production never sets it: only this package's
// tests and binaries built with -tags rdctlfault (fault_rdctlfault.go) do,
// to kill rdctl at a named step and prove that the next run recovers. The
// shipped binary therefore reads no fault-injection environment variable.
var rotateFaultHook func(point string)

func rotateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "rotate",
		Usage:       "replace the server's key safely: backup, switch, verify, roll back on failure",
		Description: helpText("rotate"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-verify", Usage: "skip the probe that the server serves the new key"},
			&cli.StringFlag{Name: "export", Usage: "after the switch (or --stage), lay out the client configuration for the new key in `DIR` (as export --format all)"},
		},
		MutuallyExclusiveFlags: []cli.MutuallyExclusiveFlags{{Flags: [][]cli.Flag{
			{&cli.BoolFlag{Name: "stage", Usage: "generate and store the next pair without switching"}},
			{&cli.BoolFlag{Name: "commit", Usage: "switch to the staged pair"}},
			{&cli.StringFlag{Name: "restore", Usage: "put back the backup `STAMP`"}},
			{&cli.BoolFlag{Name: "resume", Usage: "finish or roll back an interrupted rotation, nothing else"}},
		}}},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runRotate(ctx, e, cmd) },
	}
}

func (e *env) rotateOptions(ctx context.Context, rec *deploy.Record, verify bool) (rotate.Options, error) {
	rt, err := e.runtime(ctx, rec)
	if err != nil {
		return rotate.Options{}, err
	}
	o := rotate.Options{WorkingDir: e.under(rec.WorkingDir), StateDir: e.stateDir(rec), Runtime: rt, BackupOwner: e.backupOwner()}
	if verify {
		o.Verify = e.verifier(rec, rt)
	}
	o.Hook = rotateFaultHook
	return o, nil
}

type rotateJSON struct {
	plan.Report
	*rotate.Result
	Exported  []exportFile `json:"exported,omitempty"`
	Staged    bool         `json:"staged,omitempty"`
	Resumed   string       `json:"resumed,omitempty"`
	PublicKey string       `json:"public_key,omitempty"`
}

// rotateRun is what the steps of a rotate plan did, for the report.
type rotateRun struct {
	op       string // rotate.OpRotate, OpCommit, OpRestore; "stage", "resume"
	res      *rotate.Result
	staged   keys.Pair
	created  bool // --stage made a new pair
	exported []exportFile
}

func runRotate(ctx context.Context, e *env, cmd *cli.Command) error {
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	o, err := e.rotateOptions(ctx, rec, !cmd.Bool("no-verify"))
	if err != nil {
		return err
	}
	exportDir := cmd.String("export")
	if err := refuseKeyPath("--export", exportDir); err != nil {
		return err
	}
	if exportDir != "" {
		// Checked before anything changes: bad input is exit 2 with nothing done.
		if err := checkExportTarget(exportDir, true); err != nil {
			return err
		}
	}
	if e.root == "" {
		if err := e.requireRoot(); err != nil {
			return err
		}
	}
	run := &rotateRun{op: rotate.OpRotate}
	switch {
	case cmd.Bool("resume"):
		run.op = "resume"
	case cmd.Bool("stage"):
		run.op = "stage"
	case cmd.Bool("commit"):
		run.op = rotate.OpCommit
	case cmd.String("restore") != "":
		run.op = rotate.OpRestore
	}
	p := e.newPlan(ctx, rec)
	switch run.op {
	case "resume":
		if len(p.Steps()) == 0 {
			// --resume reports the recovery step even when there is
			// nothing to recover: it is the whole command.
			p.Add(e.recoveryStep(ctx, rec))
		}
	case "stage":
		p.Add(stageStep(o, run))
	default:
		p.Add(switchStep(ctx, o, run, cmd.String("restore")))
	}
	if exportDir != "" && run.op != "resume" {
		p.Add(&plan.Func{Verb: "export the client configuration to", Object: exportDir,
			Check: func() (bool, error) { return true, checkExportTarget(exportDir, true) },
			Do: func() (bool, error) {
				var err error
				run.exported, err = e.exportRecordTree(rec, exportDir, run.op == "stage")
				return true, err
			}})
	}
	rep, err := e.execute(p)
	var rb *rotate.RolledBackError
	switch {
	case errors.As(err, &rb):
		return withHints(err, "the backup stays at "+rb.Backup, "see why with: rdctl status; retry with: rdctl rotate")
	case errors.Is(err, rotate.ErrNothingStaged):
		return withHints(err, "rdctl rotate --stage")
	case err != nil && exportDir != "" && run.op == "stage" && run.staged.PublicBase64() != "":
		return withHints(err, "the key is staged; export it again with: rdctl export --staged --format all --out "+exportDir)
	case err != nil && exportDir != "" && run.res != nil:
		return withHints(fmt.Errorf("the rotation succeeded, but exporting the client configuration failed: %w", err),
			"export it again: rdctl export --format all --out "+exportDir)
	case err != nil:
		return err
	}
	return printRotate(e, o, rep, run, exportDir)
}

// stageStep is rotate.Stage as a plan step: a new pair in staged/, or
// nothing where one is staged already.
func stageStep(o rotate.Options, run *rotateRun) plan.Step {
	return &plan.Func{Verb: "stage the next key in", Object: o.StateDir + "/staged",
		Check: func() (bool, error) {
			if _, err := rotate.Check(o.WorkingDir, o.StateDir, rotate.OpRotate, ""); err != nil {
				return false, err
			}
			p, err := rotate.Staged(o.StateDir)
			var untrusted *rotate.UntrustedStagedError
			if errors.As(err, &untrusted) {
				// Stage replaces it.
				return true, nil
			}
			return p.IsZero(), err
		},
		Do: func() (bool, error) {
			var err error
			run.staged, run.created, err = rotate.Stage(o)
			return run.created, err
		}}
}

// switchStep is the rotation transaction (rotate, commit or restore) as a
// plan step. Its check is rotate.Check, so a dry run refuses what the
// transaction would refuse.
func switchStep(ctx context.Context, o rotate.Options, run *rotateRun, stamp string) plan.Step {
	verb, target := "rotate the key in", o.WorkingDir
	switch run.op {
	case rotate.OpCommit:
		verb = "switch to the staged key in"
	case rotate.OpRestore:
		verb, target = "restore the key from", o.StateDir+"/backups/"+stamp
	}
	step := &plan.Func{Verb: verb, Object: target}
	step.Check = func() (bool, error) {
		pv, err := rotate.Check(o.WorkingDir, o.StateDir, run.op, stamp)
		step.From, step.To = fingerprintOf(pv.Old), fingerprintOf(pv.Next)
		if step.To == "" && err == nil {
			step.To = "a new key"
		}
		return !pv.Unchanged, err
	}
	step.Do = func() (bool, error) {
		var err error
		switch run.op {
		case rotate.OpCommit:
			run.res, err = rotate.Commit(ctx, o)
		case rotate.OpRestore:
			run.res, err = rotate.Restore(ctx, o, stamp)
		default:
			run.res, err = rotate.Rotate(ctx, o)
		}
		if run.res == nil {
			return false, err
		}
		step.From, step.To = fingerprintOf(run.res.OldPublicKey), fingerprintOf(run.res.NewPublicKey)
		return !run.res.Unchanged, err
	}
	return step
}

func printRotate(e *env, o rotate.Options, rep plan.Report, run *rotateRun, exportDir string) error {
	if run.res != nil {
		e.reportRecovery(run.res.Recovered)
	}
	if e.json {
		out := rotateJSON{Report: rep, Result: run.res, Exported: run.exported}
		switch run.op {
		case "resume":
			out.Result = &rotate.Result{Op: "resume", Recovered: e.recovered}
			if e.recovered != nil {
				out.Resumed = e.recovered.Action
			}
		case "stage":
			out.Staged = true
			if !e.dryRun {
				out.Result = &rotate.Result{Op: "stage", NewPublicKey: run.staged.PublicBase64()}
			}
		}
		return writeJSON(e.stdout, out)
	}
	e.printReport(rep)
	if e.dryRun {
		return nil
	}
	switch run.op {
	case "resume":
		if !rep.Changed {
			e.printf("unchanged: no interrupted rotation in %s\n", o.WorkingDir)
		}
		return nil
	case "stage":
		if exportDir != "" {
			e.printf("exported the staged key's client configuration to %s (%d files)\n", exportDir, len(run.exported))
		}
		if !run.created {
			e.printf("unchanged: a key is already staged in %s/staged\n", o.StateDir)
		}
		e.printf("next public key: %s\nfingerprint:     %s\n", run.staged.PublicBase64(), run.staged.Fingerprint())
		e.hintf("build client media for it, then switch: rdctl rotate --commit")
		return nil
	}
	res := run.res
	if res.Unchanged {
		e.printf("unchanged: that key is already live in %s\n", o.WorkingDir)
		return nil
	}
	e.printf("old public key: %s\nnew public key: %s\nfingerprint:    %s\nbackup:         %s\n", res.OldPublicKey, res.NewPublicKey, fingerprintOf(res.NewPublicKey), res.Backup)
	switch {
	case res.Verified:
		e.printf("verified: the server serves the new key and rejects the old one\n")
	case o.Verify == nil:
		e.printf("not verified: %s\n", map[bool]string{true: "no services run in an image tree", false: "--no-verify"}[e.root != ""])
	}
	e.printf("outage: %.1f ms of renames and fsync\n", res.OutageMS)
	e.warnf("clients keep the old key and see \"Key mismatch\" until they get the new configuration")
	if exportDir != "" {
		e.printf("exported the new key's client configuration to %s (%d files)\n", exportDir, len(run.exported))
	} else {
		e.hintf("export it for clients: rdctl export --format all --out DIR")
	}
	return nil
}

// reportRecovery says what a journal found at the start of a command made
// rdctl do.
func (e *env) reportRecovery(r *rotate.Recovery) {
	if r == nil {
		return
	}
	if r.Journal != nil {
		fmt.Fprintf(e.stderr, "rdctl: warning: found an interrupted %s (backup %s) and %s it: the %s key is live\n",
			r.Journal.Op, r.Journal.Stamp, r.Action, map[string]string{"finished": "new", "rolled back": "old"}[r.Action])
	}
	if len(r.RemovedTemps) > 0 {
		e.warnf("removed %d temporary file(s) a crashed run left", len(r.RemovedTemps))
	}
}
