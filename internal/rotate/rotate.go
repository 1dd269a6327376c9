// Package rotate is the key rotation transaction: stage, commit, restore,
// resume, and the backups it keeps.
//
// # The transaction
//
// Everything that can be prepared happens while the services still run:
// the new pair is generated and validated, the journal is written, the old
// pair is backed up (backups/<stamp>/ in the state directory, dir 0700,
// files 0600, never overwritten), and the new files are written next to the live ones as
// id_ed25519.rdctl-new and id_ed25519.pub.rdctl-new with their final mode
// and owner, fsynced. Then the services stop, the two files are renamed into
// place (secret first: it is the key hbbs serves), the directory is fsynced,
// and the services start. rdctl's own part of the outage is those renames
// and fsyncs; a runtime that is a deploy.Preparer is prepared before the
// stop, so connecting and resetting start limits fall outside it.
// Verification follows; on any failure the backup is put back the same way
// and the services start again.
//
// # Crash safety
//
// A journal (rotation-journal.json in the state directory, public keys
// only) exists from before the backup until the end. [Resume] reads it and the live secret: if the live
// key is the new one the rotation is finished (the .pub completed, services
// started, verified); if it is the old one the rotation is rolled back (the
// backup completed, the new files removed, services started). Either way
// the result is a valid, consistent pair, a backup of the old key, running
// services and no temporary files. Callers hold rdctl's lock throughout.
package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// Step boundaries, in order, passed to [Options.Hook]. Tests kill the
// process at each to prove recovery.
const (
	PointJournal       = "journal"        // journal written
	PointBackup        = "backup"         // old pair backed up
	PointNewFiles      = "new-files"      // new files written next to the live ones
	PointStopped       = "stopped"        // services stopped
	PointRenamedSecret = "renamed-secret" // between the two renames
	PointRenamed       = "renamed"        // both renamed, directory synced
	PointStarted       = "started"        // services started
	PointVerified      = "verified"       // verified, before the journal is removed
)

// Points lists the step boundaries in order.
var Points = []string{PointJournal, PointBackup, PointNewFiles, PointStopped, PointRenamedSecret, PointRenamed, PointStarted, PointVerified}

// Options configure a transaction.
type Options struct {
	// WorkingDir holds the live key files (already resolved under --root).
	WorkingDir string
	// StateDir is rdctl's own state for this deployment: backups/,
	// staged/ and the journal (already resolved under --root; see
	// deploy.StateDirFor). Root's, not the service user's, so nothing the
	// service user writes steers a rotation. Created 0700 where missing.
	StateDir string
	// Runtime stops and starts the services; deploy.NoRuntime for an image.
	Runtime deploy.Runtime
	// Verify, if set, is called after the services start; it must return
	// nil only if the server now serves newKey (and no longer oldKey).
	Verify func(ctx context.Context, newKey, oldKey string) error
	// BackupOwner owns the state directory, backups/ and staged/ (root on
	// a live host, so the service user cannot read old keys). Zero value:
	// root.
	BackupOwner keys.Owner
	// Hook, if set, is called at each step boundary (fault injection).
	Hook func(point string)
	// Now is the clock for backup stamps; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for new pairs; nil means crypto/rand.
	Rand io.Reader
}

func (o *Options) hook(p string) {
	if o.Hook != nil {
		o.Hook(p)
	}
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Result is what a transaction did.
type Result struct {
	Op           string  `json:"op"`
	OldPublicKey string  `json:"old_public_key"`
	NewPublicKey string  `json:"new_public_key"`
	Backup       string  `json:"backup"`
	Verified     bool    `json:"verified"`
	OutageMS     float64 `json:"outage_ms"`
	// Unchanged is set when the requested key was already live.
	Unchanged bool `json:"unchanged,omitempty"`
	// Recovered reports an interrupted run that was handled first.
	Recovered *Recovery `json:"recovered,omitempty"`
}

// RolledBackError reports a rotation that failed after the switch and was
// undone: the old key is live again (unless RestoreErr says otherwise).
type RolledBackError struct {
	Cause      error
	Backup     string
	RestoreErr error
}

func (e *RolledBackError) Error() string {
	if e.RestoreErr != nil {
		return fmt.Sprintf("rotation failed (%v) and putting back the backup from %q failed too: %v", e.Cause, e.Backup, e.RestoreErr)
	}
	return fmt.Sprintf("rotation failed (%v); the old key from %q is back in place and the services were started again", e.Cause, e.Backup)
}
func (e *RolledBackError) Unwrap() error { return e.Cause }

// NotRotatableError reports a working directory whose current key is not a
// valid pair: there is nothing safe to back up and replace.
type NotRotatableError struct {
	Dir string
	Err error
}

func (e *NotRotatableError) Error() string {
	return fmt.Sprintf("the key in %q cannot be rotated: %v", e.Dir, e.Err)
}
func (e *NotRotatableError) Unwrap() error { return e.Err }

// Rotate replaces the live key with a newly generated one.
func Rotate(ctx context.Context, o Options) (*Result, error) {
	return run(ctx, o, "rotate", func(*safefs.Dir) (keys.Pair, error) { return keys.Generate(o.Rand) })
}

// Commit replaces the live key with the staged one (see [Stage]) and
// removes the staged copy on success.
func Commit(ctx context.Context, o Options) (*Result, error) {
	res, err := run(ctx, o, "commit", func(sd *safefs.Dir) (keys.Pair, error) {
		if sd == nil {
			return keys.Pair{}, ErrNothingStaged
		}
		p, err := readStaged(sd)
		if err != nil {
			return keys.Pair{}, err
		}
		if p.IsZero() {
			return keys.Pair{}, ErrNothingStaged
		}
		return p, nil
	})
	if err == nil {
		err = removeStaged(o.StateDir)
	}
	return res, err
}

// Restore puts the pair from backups/<stamp> back through the same
// transaction (the current key is backed up first).
func Restore(ctx context.Context, o Options, stamp string) (*Result, error) {
	return run(ctx, o, "restore", func(sd *safefs.Dir) (keys.Pair, error) {
		if sd == nil {
			if err := checkStamp(stamp); err != nil {
				return keys.Pair{}, err
			}
			return keys.Pair{}, &NoBackupError{Stamp: stamp}
		}
		p, err := readBackup(sd, stamp)
		return p, noBackup(stamp, err)
	})
}

func run(ctx context.Context, o Options, op string, next func(*safefs.Dir) (keys.Pair, error)) (*Result, error) {
	rec, err := Resume(ctx, o)
	if err != nil {
		return nil, err
	}
	d, err := safefs.OpenDir(o.WorkingDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		return nil, err
	}
	if !st.SecretPresent {
		return nil, &NotRotatableError{Dir: o.WorkingDir, Err: errors.New("there is no id_ed25519")}
	}
	if !st.Valid {
		return nil, &NotRotatableError{Dir: o.WorkingDir, Err: st.SecretErr}
	}
	if err := pubReplaceable(d); err != nil {
		return nil, &NotRotatableError{Dir: o.WorkingDir, Err: err}
	}
	// Read only until the transaction is sure to run: a refused one
	// leaves no state directory behind.
	sd, err := openState(o.StateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sd = nil
	case err != nil:
		return nil, err
	default:
		defer sd.Close()
	}
	newPair, err := next(sd)
	if err != nil {
		return nil, err
	}
	if err := newPair.Validate(); err != nil {
		return nil, fmt.Errorf("the new key pair failed validation: %w", err)
	}
	res := &Result{Op: op, OldPublicKey: st.Pair.PublicBase64(), NewPublicKey: newPair.PublicBase64(), Recovered: rec}
	if newPair.Equal(st.Pair) {
		res.Unchanged = true
		return res, nil
	}
	if sd == nil {
		if sd, err = createState(o.StateDir, o.BackupOwner); err != nil {
			return nil, err
		}
		defer sd.Close()
	}
	return res, switchTo(ctx, &o, d, sd, st, newPair, res)
}

// switchTo is the transaction proper (see the package doc): d is the
// working directory, sd the state directory.
func switchTo(ctx context.Context, o *Options, d, sd *safefs.Dir, cur keys.State, next keys.Pair, res *Result) error {
	live := keys.Owner{UID: cur.SecretInfo.UID, GID: cur.SecretInfo.GID}
	stamp, err := newStamp(sd, o)
	if err != nil {
		return err
	}
	j := &Journal{Format: 1, Op: res.Op, Stamp: stamp, OldPublicKey: res.OldPublicKey, NewPublicKey: res.NewPublicKey, PID: os.Getpid()}
	if err := writeJournal(sd, j); err != nil {
		return err
	}
	o.hook(PointJournal)
	backup, err := writeBackup(sd, stamp, cur.Pair, o.BackupOwner)
	if err != nil {
		return abandon(d, sd, err)
	}
	res.Backup = backup
	o.hook(PointBackup)
	if err := writeNext(d, next, live); err != nil {
		return abandon(d, sd, err)
	}
	o.hook(PointNewFiles)

	// Whatever can be done before the services stop is done now, so the
	// outage clients see holds only the stop, the switch and the start.
	// Best effort: without it Stop and Start do the same work themselves.
	if p, ok := o.Runtime.(deploy.Preparer); ok {
		if release, err := p.Prepare(ctx); err == nil {
			defer release()
		}
	}
	if err := o.Runtime.Stop(ctx); err != nil {
		// Nothing was switched; bring back whatever stopped.
		startErr := o.Runtime.Start(context.WithoutCancel(ctx))
		return abandon(d, sd, errors.Join(fmt.Errorf("stopping the services: %w", err), startErr))
	}
	o.hook(PointStopped)
	// The outage: renames and one directory fsync, nothing else.
	t0 := time.Now()
	err = swapIn(d, o)
	res.OutageMS = float64(time.Since(t0).Microseconds()) / 1000
	if err != nil {
		return rollback(ctx, o, d, sd, cur.Pair, live, backup, fmt.Errorf("switching the key files: %w", err))
	}
	o.hook(PointRenamed)
	if err := o.Runtime.Start(ctx); err != nil {
		return rollback(ctx, o, d, sd, cur.Pair, live, backup, fmt.Errorf("starting the services: %w", err))
	}
	o.hook(PointStarted)
	if o.Verify != nil {
		if err := o.Verify(ctx, res.NewPublicKey, res.OldPublicKey); err != nil {
			return rollback(ctx, o, d, sd, cur.Pair, live, backup, fmt.Errorf("verification: %w", err))
		}
		res.Verified = true
	}
	o.hook(PointVerified)
	return finish(d, sd)
}

// swapIn renames the new files over the live ones, secret first.
func swapIn(d *safefs.Dir, o *Options) error {
	if err := d.Rename(newSecret, keys.SecretFile); err != nil {
		return err
	}
	o.hook(PointRenamedSecret)
	if err := d.Rename(newPublic, keys.PublicFile); err != nil {
		return err
	}
	return d.Sync()
}

func writeNext(d *safefs.Dir, p keys.Pair, owner keys.Owner) error {
	if _, err := d.WriteFile(newSecret, p.SecretFileBytes(), safefs.FileOptions{Mode: keys.SecretMode, UID: owner.UID, GID: owner.GID}); err != nil {
		return err
	}
	_, err := d.WriteFile(newPublic, p.PublicFileBytes(), safefs.FileOptions{Mode: keys.PublicMode, UID: owner.UID, GID: owner.GID})
	return err
}

// abandon undoes a transaction that failed before the switch: the live
// files were never touched; the backup stays.
func abandon(d, sd *safefs.Dir, cause error) error {
	errs := []error{cause, d.Remove(newSecret), d.Remove(newPublic), d.Sync(), sd.Remove(JournalFile), sd.Sync()}
	d.RemoveStaleTemps()
	return errors.Join(errs...)
}

// rollback puts the old pair back after a failed switch.
func rollback(ctx context.Context, o *Options, d, sd *safefs.Dir, old keys.Pair, owner keys.Owner, backup string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	_ = o.Runtime.Stop(ctx) // best effort: it may be half up
	err := writeNext(d, old, owner)
	if err == nil {
		err = swapIn(d, &Options{})
	}
	startErr := o.Runtime.Start(ctx)
	if err == nil && startErr != nil {
		err = fmt.Errorf("starting the services with the old key: %w", startErr)
	}
	if err == nil {
		err = finish(d, sd)
	}
	return &RolledBackError{Cause: cause, Backup: backup, RestoreErr: err}
}

// finish ends a transaction: the temporaries go first, the journal last,
// so the journal outlives everything a crash could leave.
func finish(d, sd *safefs.Dir) error {
	if _, err := d.RemoveStaleTemps(); err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		return err
	}
	if err := sd.Remove(JournalFile); err != nil {
		return err
	}
	return sd.Sync()
}

// Recovery is what Resume found and did.
type Recovery struct {
	// Action is "finished" (the new key stays), "rolled back" (the old key
	// stays) or "" when there was no interrupted rotation.
	Action  string   `json:"action"`
	Journal *Journal `json:"journal,omitempty"`
	// RemovedTemps lists temporary files a crash left and Resume removed.
	RemovedTemps []string `json:"removed_temps,omitempty"`
	Verified     bool     `json:"verified"`
}

// Resume finishes or rolls back an interrupted rotation, and removes
// temporary files a crashed write left. Every mutating command runs it
// first. It returns nil when there was nothing to do.
func Resume(ctx context.Context, o Options) (*Recovery, error) {
	d, err := safefs.OpenDir(o.WorkingDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	sd, err := openState(o.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		// No state yet: no journal, no backups; only the working
		// directory can hold leftovers.
		removed, err := removeLeftovers(d, nil)
		if err != nil || len(removed) == 0 {
			return nil, err
		}
		return &Recovery{RemovedTemps: removed}, nil
	}
	if err != nil {
		return nil, err
	}
	defer sd.Close()
	j, err := readJournal(sd)
	if err != nil {
		return nil, err
	}
	if j == nil {
		// No rotation in flight: only leftovers of a crashed plain write.
		removed, err := removeLeftovers(d, sd)
		if err != nil || len(removed) == 0 {
			return nil, err
		}
		return &Recovery{RemovedTemps: removed}, nil
	}
	rec := &Recovery{Journal: j}
	st, err := keys.Inspect(d)
	if err != nil {
		return nil, err
	}
	live := ""
	if st.Valid {
		live = st.Pair.PublicBase64()
	}
	owner, err := liveOwner(d, st)
	if err != nil {
		return nil, err
	}
	switch live {
	case j.NewPublicKey:
		// The secret was switched: complete the .pub from the secret, then
		// run the tail. (Not by renaming id_ed25519.pub.rdctl-new into
		// place: the service user could have planted that one.)
		if _, err := d.WriteFile(keys.PublicFile, st.Pair.PublicFileBytes(), safefs.FileOptions{Mode: keys.PublicMode, UID: owner.UID, GID: owner.GID}); err != nil {
			return nil, err
		}
		if err := d.Sync(); err != nil {
			return nil, err
		}
		if err := o.Runtime.Start(ctx); err != nil {
			return nil, fmt.Errorf("finishing the interrupted rotation: starting the services: %w", err)
		}
		if o.Verify != nil {
			if err := o.Verify(ctx, j.NewPublicKey, j.OldPublicKey); err != nil {
				old, berr := readBackup(sd, j.Stamp)
				if berr != nil {
					return nil, fmt.Errorf("the interrupted rotation's new key failed verification (%v), and its backup is unreadable: %w", err, berr)
				}
				return nil, rollback(ctx, &o, d, sd, old, owner, sd.Join(backupsDir+"/"+j.Stamp), err)
			}
			rec.Verified = true
		}
		rec.Action = "finished"
	case j.OldPublicKey:
		// The switch never happened: make sure the backup is whole, drop
		// the new files, and start what may have been stopped.
		if _, err := writeBackup(sd, j.Stamp, st.Pair, o.BackupOwner); err != nil && !errors.Is(err, errBackupExists) {
			return nil, err
		}
		if _, err := d.WriteFile(keys.PublicFile, st.Pair.PublicFileBytes(), safefs.FileOptions{Mode: keys.PublicMode, UID: owner.UID, GID: owner.GID}); err != nil {
			return nil, err
		}
		if err := o.Runtime.Start(ctx); err != nil {
			return nil, fmt.Errorf("rolling back the interrupted rotation: starting the services: %w", err)
		}
		rec.Action = "rolled back"
	default:
		// Neither key is live (the secret is missing or foreign): put the
		// backup of the old key back, if it is whole.
		old, err := readBackup(sd, j.Stamp)
		if err != nil || old.PublicBase64() != j.OldPublicKey {
			return nil, fmt.Errorf("the live key is neither the old nor the new one of the interrupted rotation and backup %q cannot restore it (%v); inspect %q by hand", j.Stamp, err, o.WorkingDir)
		}
		if err := writeNext(d, old, owner); err != nil {
			return nil, err
		}
		if err := swapIn(d, &Options{}); err != nil {
			return nil, err
		}
		if err := o.Runtime.Start(ctx); err != nil {
			return nil, err
		}
		rec.Action = "rolled back"
	}
	removed, err := removeLeftovers(d, sd)
	if err != nil {
		return nil, err
	}
	rec.RemovedTemps = removed
	if err := finish(d, sd); err != nil {
		return nil, err
	}
	return rec, nil
}

// liveOwner is who the live key files belong to: the secret's owner, else
// (the secret is gone or unreadable) the .pub's, as both are written with
// one owner, else the directory's. Taking the zero Owner instead would put
// a key back owned by root, which hbbs, running as the service user, could
// not read.
func liveOwner(d *safefs.Dir, st keys.State) (keys.Owner, error) {
	// Inspect fills an Info only for a file it read; a zero Info (which
	// IsRegular would accept) means there was none.
	for _, i := range []safefs.Info{st.SecretInfo, st.PubInfo} {
		if i != (safefs.Info{}) {
			return keys.Owner{UID: i.UID, GID: i.GID}, nil
		}
	}
	i, err := d.Stat()
	return keys.Owner{UID: i.UID, GID: i.GID}, err
}

// removeLeftovers removes the new-key files and safefs temporaries, in the
// working directory d and in the backup and staged directories of the
// state directory sd (nil: none).
func removeLeftovers(d, sd *safefs.Dir) ([]string, error) {
	var removed []string
	for _, n := range []string{newSecret, newPublic} {
		if ok, _ := d.Exists(n); ok {
			if err := d.Remove(n); err != nil {
				return removed, err
			}
			removed = append(removed, n)
		}
	}
	r, err := d.RemoveStaleTemps()
	removed = append(removed, r...)
	if err != nil {
		return removed, err
	}
	if len(removed) > 0 {
		if err := d.Sync(); err != nil {
			return removed, err
		}
	}
	if sd == nil {
		return removed, nil
	}
	for _, sub := range []string{backupsDir, stagedDir} {
		b, err := sd.Sub(sub)
		if err != nil {
			continue
		}
		if r, err := b.RemoveStaleTemps(); err == nil {
			for _, n := range r {
				removed = append(removed, sub+"/"+n)
			}
		}
		if sub == backupsDir {
			names, _ := b.Names()
			for _, n := range names {
				if s, err := b.Sub(n); err == nil {
					if r, err := s.RemoveStaleTemps(); err == nil {
						for _, x := range r {
							removed = append(removed, sub+"/"+n+"/"+x)
						}
					}
					s.Close()
				}
			}
		}
		b.Close()
	}
	return removed, nil
}

// pubReplaceable refuses, before anything changes, an id_ed25519.pub that
// the switch could not replace: a symlink, a named pipe or a directory the
// service user put there. Found at the switch, it failed the rotation after
// the services had stopped and left a journal that blocked every later
// command until root removed it.
func pubReplaceable(d *safefs.Dir) error {
	info, err := d.Lstat(keys.PublicFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case info.Mode.IsRegular():
		return nil
	}
	what := "not a regular file"
	switch {
	case info.Mode&fs.ModeSymlink != 0:
		what = "a symbolic link"
	case info.Mode&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case info.Mode.IsDir():
		what = "a directory"
	}
	return fmt.Errorf("%s is %s, which rdctl will not replace; remove it (it only ever holds the public key, which rdctl writes again)", d.Join(keys.PublicFile), what)
}
