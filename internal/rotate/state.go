package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// rdctl keeps its own state — backups, the staged pair and the rotation
// journal — in a state directory of its own (deploy.StateDirFor), not in
// hbbs's working directory: the service user owns that directory, and hbbs,
// which parses network input, runs as that user. Whatever it can write
// (rename backups/ aside, plant a staged pair or a journal) must not steer
// root's rdctl. Only the live id_ed25519 and id_ed25519.pub stay where hbbs
// reads them, and the new-key files of a rotation are written next to
// them, as a rename into place needs the same filesystem.

// UnsafeStateDirError reports a state directory others can write: its
// contents could have been planted, so rdctl does not use it.
type UnsafeStateDirError struct {
	Dir  string
	Mode fs.FileMode
}

func (e *UnsafeStateDirError) Error() string {
	return fmt.Sprintf("rdctl's state directory %q has mode %04o: others can write to it, so rdctl does not trust what is in it", e.Dir, e.Mode.Perm())
}

// NoBackupError is a restore of a backup that does not exist.
type NoBackupError struct{ Stamp string }

func (e *NoBackupError) Error() string {
	return fmt.Sprintf("there is no backup %q (see rdctl backups list)", e.Stamp)
}
func (e *NoBackupError) Unwrap() error { return fs.ErrNotExist }

// noBackup turns a missing state directory or backup into NoBackupError,
// so a dry run (Check) and the transaction (Restore) refuse alike.
func noBackup(stamp string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &NoBackupError{Stamp: stamp}
	}
	return err
}

// openState opens an existing state directory, refusing a symlink and a
// directory group or others can write. A missing one gives an error
// matching fs.ErrNotExist.
func openState(stateDir string) (*safefs.Dir, error) {
	if stateDir == "" {
		return nil, errors.New("no state directory given")
	}
	d, err := safefs.OpenDir(stateDir)
	if err != nil {
		return nil, err
	}
	info, err := d.Stat()
	if err == nil && info.Mode.Perm()&0o022 != 0 {
		err = &UnsafeStateDirError{Dir: stateDir, Mode: info.Mode}
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// createState opens the state directory, creating it and its parent (both
// 0700) where missing, and makes it 0700 and owner's.
func createState(stateDir string, owner keys.Owner) (*safefs.Dir, error) {
	if stateDir == "" {
		return nil, errors.New("no state directory given")
	}
	parent, err := safefs.MkdirAll(filepath.Dir(stateDir), 0o700)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	d, err := ensureSub(parent, filepath.Base(stateDir), owner)
	if err != nil {
		return nil, err
	}
	d.Close()
	return openState(stateDir)
}
