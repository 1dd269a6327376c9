package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
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
		Name:  "rotate",
		Usage: "replace the server's key safely: backup, switch, verify, roll back on failure",
		Description: `Rotates the Ed25519 key hbbs and hbbr serve, as one crash-safe transaction:
the new pair is generated and validated, the old one backed up to
<working dir>/backups/<UTC stamp>/ and the new files written next to the live
ones before anything stops; the outage holds only two renames and an fsync;
then the services start and the new key is verified. On any failure the backup
is put back and the services start again. A journal lets the next rdctl run
finish or roll back a rotation that was killed half-way (--resume does it
explicitly; every mutating command does it first).

Clients keep the old key until they get the new configuration: RustDesk has no
overlap window, so they see "Key mismatch" until then. Export it with
'rdctl export', or build media before the switch with --stage and --export.

  --stage            generate the next pair into <working dir>/staged/ (root only)
  --commit           switch to the staged pair
  --restore STAMP    put the backup STAMP back (see rdctl backups list)
  --resume           only finish or roll back an interrupted rotation
  --export DIR       then write the new key's client configuration tree to DIR

JSON (--json): old_public_key, new_public_key, backup, verified, outage_ms.

Examples:
  rdctl rotate
  rdctl rotate --stage && rdctl export --staged --format all --out /media/usb && rdctl rotate --commit
  rdctl rotate --restore 20261122T015501Z
  rdctl --root ./image --json rotate`,
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
	o := rotate.Options{WorkingDir: e.under(rec.WorkingDir), Runtime: rt, BackupOwner: e.backupOwner()}
	if verify {
		o.Verify = e.verifier(rec, rt)
	}
	o.Hook = rotateFaultHook
	return o, nil
}

type rotateJSON struct {
	*rotate.Result
	Exported  []exportFile `json:"exported,omitempty"`
	Staged    bool         `json:"staged,omitempty"`
	Resumed   string       `json:"resumed,omitempty"`
	PublicKey string       `json:"public_key,omitempty"`
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
	if exportDir != "" {
		// Checked before anything changes: bad input is exit 2 with nothing done.
		if err := checkExportTarget(exportDir, true); err != nil {
			return err
		}
	}
	if e.dryRun {
		return e.rotateDryRun(o, cmd)
	}
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()

	switch {
	case cmd.Bool("resume"):
		recov, err := rotate.Resume(ctx, o)
		if err != nil {
			return err
		}
		e.reportRecovery(recov)
		if e.json {
			out := rotateJSON{Result: &rotate.Result{Op: "resume", Recovered: recov}}
			if recov != nil {
				out.Resumed = recov.Action
			}
			return writeJSON(e.stdout, out)
		}
		if recov == nil {
			e.printf("unchanged: no interrupted rotation in %s\n", o.WorkingDir)
		}
		return nil
	case cmd.Bool("stage"):
		recov, err := rotate.Resume(ctx, o)
		if err != nil {
			return err
		}
		e.reportRecovery(recov)
		p, created, err := rotate.Stage(o)
		if err != nil {
			return err
		}
		var exported []exportFile
		if exportDir != "" {
			if exported, err = e.exportRecordTree(rec, exportDir, true); err != nil {
				return withHints(err, "the key is staged; export it again with: rdctl export --staged --format all --out "+exportDir)
			}
		}
		if e.json {
			return writeJSON(e.stdout, rotateJSON{Result: &rotate.Result{Op: "stage", NewPublicKey: p.PublicBase64()}, Staged: true, Exported: exported})
		}
		if exportDir != "" {
			e.printf("exported the staged key's client configuration to %s (%d files)\n", exportDir, len(exported))
		}
		if created {
			e.printf("staged the next key in %s/staged\n", o.WorkingDir)
		} else {
			e.printf("unchanged: a key is already staged in %s/staged\n", o.WorkingDir)
		}
		e.printf("next public key: %s\nfingerprint:     %s\n", p.PublicBase64(), p.Fingerprint())
		e.hintf("build client media for it, then switch: rdctl rotate --commit")
		return nil
	}

	var res *rotate.Result
	switch {
	case cmd.Bool("commit"):
		res, err = rotate.Commit(ctx, o)
	case cmd.String("restore") != "":
		res, err = rotate.Restore(ctx, o, cmd.String("restore"))
	default:
		res, err = rotate.Rotate(ctx, o)
	}
	if res != nil {
		e.reportRecovery(res.Recovered)
	}
	var rb *rotate.RolledBackError
	if errors.As(err, &rb) {
		return withHints(err, "the backup stays at "+rb.Backup, "see why with: rdctl status; retry with: rdctl rotate")
	}
	if errors.Is(err, rotate.ErrNothingStaged) {
		return withHints(err, "rdctl rotate --stage")
	}
	if err != nil {
		return err
	}
	var exported []exportFile
	if exportDir != "" {
		if exported, err = e.exportRecordTree(rec, exportDir, false); err != nil {
			return withHints(fmt.Errorf("the rotation succeeded, but exporting the client configuration failed: %w", err),
				"export it again: rdctl export --format all --out "+exportDir)
		}
	}
	if e.json {
		return writeJSON(e.stdout, rotateJSON{Result: res, Exported: exported})
	}
	if res.Unchanged {
		e.printf("unchanged: that key is already live in %s\n", o.WorkingDir)
		return nil
	}
	e.printf("rotated the key in %s\n", o.WorkingDir)
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
		e.printf("exported the new key's client configuration to %s (%d files)\n", exportDir, len(exported))
	} else {
		e.hintf("export it for clients: rdctl export --format all --out DIR")
	}
	return nil
}

func (e *env) rotateDryRun(o rotate.Options, cmd *cli.Command) error {
	switch {
	case cmd.Bool("resume"):
		e.printf("would finish or roll back an interrupted rotation in %s, if there is one\n", o.WorkingDir)
	case cmd.Bool("stage"):
		e.printf("would generate the next key pair into %s/staged\n", o.WorkingDir)
	default:
		e.printf("would back up the key in %s to %s/backups/<stamp>/\n", o.WorkingDir, o.WorkingDir)
		e.printf("would write the new key next to the live one, stop %s, rename it into place, start, verify\n", o.Runtime.Name())
	}
	e.printf("dry run: nothing was changed\n")
	return nil
}

// beginMutation takes the lock every mutating command holds, then finishes
// or rolls back a rotation killed half-way, so that the command sees the
// key that stays. The caller must call unlock.
func (e *env) beginMutation(ctx context.Context, rec *deploy.Record) (unlock func(), err error) {
	unlock, err = e.lock()
	if err != nil {
		return nil, err
	}
	if err := e.resumeIfPresent(ctx, rec); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// resumeIfPresent runs rotate.Resume where a working directory exists, as
// every mutating command does before its own work.
func (e *env) resumeIfPresent(ctx context.Context, rec *deploy.Record) error {
	if _, err := os.Lstat(e.under(rec.WorkingDir)); err != nil {
		return nil
	}
	o, err := e.rotateOptions(ctx, rec, true)
	if err != nil {
		return err
	}
	r, err := rotate.Resume(ctx, o)
	if err != nil {
		return withHints(fmt.Errorf("an interrupted rotation could not be finished or rolled back: %w", err), "rdctl rotate --resume")
	}
	e.reportRecovery(r)
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
