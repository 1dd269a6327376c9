package rotate

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/rdctl/rdctl/internal/keys"

	"github.com/rdctl/rdctl/internal/safefs"
)

// NeedsResume reports, without changing anything, whether [Resume] would
// finish or roll back something: a journal in stateDir, or new-key files a
// crash left in workingDir. A dry run uses it to show the recovery the real run would
// do first. (Resume also removes safefs temporaries, which this does not
// count: removing them changes no key.)
func NeedsResume(workingDir, stateDir string) (bool, error) {
	d, err := safefs.OpenDir(workingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	sd, err := openState(stateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, err
	default:
		j, err := readJournal(sd)
		sd.Close()
		if err != nil || j != nil {
			return j != nil, err
		}
	}
	for _, n := range []string{newSecret, newPublic} {
		if ok, err := d.Exists(n); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Preview is what a transaction would do, read without changing anything.
type Preview struct {
	// Old is the live public key.
	Old string
	// Next is the public key it would switch to; "" for a key that is
	// generated only when the transaction runs.
	Next string
	// Unchanged: Next is already live; the transaction would change
	// nothing.
	Unchanged bool
}

// Ops of [Check], as [Result.Op] names them.
const (
	OpRotate  = "rotate"
	OpCommit  = "commit"
	OpRestore = "restore"
)

// Check reads what op (with stamp, for a restore) would do in workingDir,
// with the staged pair and the backups of stateDir.
// It fails where the transaction would fail before changing anything: no
// valid live key ([NotRotatableError]), nothing staged ([ErrNothingStaged]),
// a missing or unreadable backup. A dry run builds on it, so it refuses
// exactly what the real run refuses.
func Check(workingDir, stateDir, op, stamp string) (Preview, error) {
	d, err := safefs.OpenDir(workingDir)
	if err != nil {
		return Preview{}, err
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		return Preview{}, err
	}
	if !st.SecretPresent {
		return Preview{}, &NotRotatableError{Dir: workingDir, Err: errors.New("there is no id_ed25519")}
	}
	if !st.Valid {
		return Preview{}, &NotRotatableError{Dir: workingDir, Err: st.SecretErr}
	}
	pv := Preview{Old: st.Pair.PublicBase64()}
	var next keys.Pair
	switch op {
	case OpRotate:
		return pv, nil
	case OpCommit:
		if next, err = Staged(stateDir); err == nil && next.IsZero() {
			err = ErrNothingStaged
		}
	case OpRestore:
		if err = checkStamp(stamp); err == nil {
			var sd *safefs.Dir
			if sd, err = openState(stateDir); err == nil {
				next, err = readBackup(sd, stamp)
				sd.Close()
			}
			err = noBackup(stamp, err)
		}
	default:
		return Preview{}, fmt.Errorf("unknown transaction %q", op)
	}
	if err != nil {
		return Preview{}, err
	}
	pv.Next, pv.Unchanged = next.PublicBase64(), next.Equal(st.Pair)
	return pv, nil
}

// RemoveBackup shreds one backup in stateDir (see [Prune]) and syncs
// backups/. A backup that is gone already is no change.
func RemoveBackup(stateDir, stamp string) (removed bool, err error) {
	if err := checkStamp(stamp); err != nil {
		return false, err
	}
	d, err := openState(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	b, err := d.Sub(backupsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer b.Close()
	if ok, err := b.Exists(stamp); err != nil || !ok {
		return false, err
	}
	if err := shredDir(b, stamp); err != nil {
		return false, err
	}
	return true, b.Sync()
}
