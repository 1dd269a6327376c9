package rotate

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// labelRE is what a backup label may be: it becomes part of a directory
// name, so it is short, lower case and has no separators.
var labelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`) })

// ErrNoLiveKey means there is no valid live key pair to back up.
var ErrNoLiveKey = errors.New("no valid key pair to back up")

// BackupNow backs up the live pair in workingDir to
// backups/<UTC stamp>-<label>/ in stateDir (dir 0700, files 0600, owned by owner, never
// overwritten) and reads it back. It is the backup commands other than
// rotate take before they touch a server (uninstall). It returns the
// backup's path and the pair it holds; a missing or invalid secret gives an
// error matching ErrNoLiveKey.
func BackupNow(workingDir, stateDir string, owner keys.Owner, label string) (string, keys.Pair, error) {
	if !labelRE().MatchString(label) {
		return "", keys.Pair{}, fmt.Errorf("invalid backup label %q", label)
	}
	d, err := safefs.OpenDir(workingDir)
	if err != nil {
		return "", keys.Pair{}, err
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		return "", keys.Pair{}, err
	}
	if !st.Valid {
		cause := st.SecretErr
		if !st.SecretPresent {
			cause = errors.New("there is no " + keys.SecretFile)
		}
		return "", keys.Pair{}, fmt.Errorf("%w in %q: %v", ErrNoLiveKey, workingDir, cause)
	}
	sd, err := createState(stateDir, owner)
	if err != nil {
		return "", keys.Pair{}, err
	}
	defer sd.Close()
	b, err := ensureSub(sd, backupsDir, owner)
	if err != nil {
		return "", keys.Pair{}, err
	}
	base := time.Now().UTC().Format(stampLayout)
	var stamp string
	for i := 0; i < 1000 && stamp == ""; i++ {
		name := base + "-" + label
		if i > 0 {
			name = fmt.Sprintf("%s-%s-%d", base, label, i)
		}
		s, created, err := b.MkdirSub(name, 0o700)
		if err != nil {
			b.Close()
			return "", keys.Pair{}, err
		}
		s.Close()
		if created {
			stamp = name
		}
	}
	b.Close()
	if stamp == "" {
		return "", keys.Pair{}, errors.New("no free backup name")
	}
	path, err := writeBackup(sd, stamp, st.Pair, owner)
	return path, st.Pair, err
}

// PurgeKeys removes the live key files from workingDir — the secret
// overwritten with zeros and fsynced first, as [Prune] does — but only after
// checking that backups/<stamp> in stateDir holds exactly the live pair:
// rdctl never deletes a key it has no verified backup of. It returns the
// paths removed. Backups and a staged key are left alone. A key file that
// is not a regular file with one link, or is larger than a key, is refused
// and left untouched (see [safefs.Dir.Shred]).
func PurgeKeys(workingDir, stateDir, stamp string) ([]string, error) {
	d, err := safefs.OpenDir(workingDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		return nil, err
	}
	if st.SecretPresent {
		if !st.Valid {
			return nil, fmt.Errorf("%s in %q is not a valid key and cannot be backed up; left it in place", keys.SecretFile, workingDir)
		}
		sd, err := openState(stateDir)
		if err != nil {
			return nil, fmt.Errorf("backup %q: %w", stamp, err)
		}
		saved, err := readBackup(sd, stamp)
		sd.Close()
		if err != nil {
			return nil, fmt.Errorf("backup %q: %w", stamp, err)
		}
		if !saved.Equal(st.Pair) {
			return nil, fmt.Errorf("backup %q does not hold the live key; left the key in place", stamp)
		}
	}
	var removed []string
	for _, name := range []string{keys.SecretFile, keys.PublicFile} {
		ok, err := d.Exists(name)
		if err != nil {
			return removed, err
		}
		if !ok {
			continue
		}
		if err := d.Shred(name, keys.MaxFileSize); err != nil {
			return removed, err
		}
		removed = append(removed, d.Join(name))
	}
	return removed, d.Sync()
}
