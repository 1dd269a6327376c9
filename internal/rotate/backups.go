package rotate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"sync"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// Directories under the state directory ([Options.StateDir]).
const (
	backupsDir    = "backups"
	stagedDir     = "staged"
	quarantineDir = "quarantine"
)

// stampLayout names backup directories: UTC, sortable.
const stampLayout = "20060102T150405Z"

// stampRE is every name rdctl gives a backup: the UTC stamp, then an
// optional label (-uninstall) and collision counter (-1). A journal's stamp
// and a backup migrated from an older layout must match it: such a name
// becomes a directory name and is printed, so it carries no separators,
// control characters or escapes.
var stampRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[a-z0-9][a-z0-9-]{0,40})?$`) })

// ErrNothingStaged means --commit found no staged key.
var ErrNothingStaged = errors.New("no staged key (stage one first: rdctl rotate --stage)")

var errBackupExists = errors.New("a different backup already exists under this stamp")

// ensureSub opens (creating if needed) a 0700 subdirectory owned by owner.
func ensureSub(d *safefs.Dir, name string, owner keys.Owner) (*safefs.Dir, error) {
	s, _, err := d.MkdirSub(name, 0o700)
	if err != nil {
		return nil, err
	}
	info, err := s.Stat()
	if err == nil && (info.UID != owner.UID || info.GID != owner.GID) {
		err = s.Chown(owner.UID, owner.GID)
	}
	if err == nil && info.Mode.Perm() != 0o700 {
		err = s.Chmod(0o700)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newStamp reserves a fresh backups/<stamp> directory in the state
// directory d.
func newStamp(d *safefs.Dir, o *Options) (string, error) {
	b, err := ensureSub(d, backupsDir, o.BackupOwner)
	if err != nil {
		return "", err
	}
	defer b.Close()
	base := o.now().UTC().Format(stampLayout)
	for i := 0; i < 1000; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		s, created, err := b.MkdirSub(name, 0o700)
		if err != nil {
			return "", err
		}
		if created {
			err = s.Chown(o.BackupOwner.UID, o.BackupOwner.GID)
			s.Close()
			return name, err
		}
		s.Close()
	}
	return "", errors.New("no free backup name")
}

// writeBackup makes backups/<stamp> in the state directory d hold p,
// writing only what is missing and never overwriting a file. Each file is
// written to a temporary name and renamed without replace, so a crash
// leaves whole files or temps.
func writeBackup(d *safefs.Dir, stamp string, p keys.Pair, owner keys.Owner) (string, error) {
	return writePairDir(d, backupsDir, stamp, p, owner)
}

// writePairDir is writeBackup into <sub>/<stamp>.
func writePairDir(d *safefs.Dir, sub, stamp string, p keys.Pair, owner keys.Owner) (string, error) {
	if err := checkStamp(stamp); err != nil {
		return "", err
	}
	b, err := ensureSub(d, sub, owner)
	if err != nil {
		return "", err
	}
	defer b.Close()
	s, err := ensureSub(b, stamp, owner)
	if err != nil {
		return "", err
	}
	defer s.Close()
	path := d.Join(sub + "/" + stamp)
	opts := safefs.FileOptions{Mode: 0o600, UID: owner.UID, GID: owner.GID}
	// The secret as it was on disk, byte for byte: hbbs also loads forms
	// rdctl does not write (no padding, a newline), and a backup holds
	// exactly what ran.
	for name, data := range map[string][]byte{keys.SecretFile: p.OriginalFileBytes(), keys.PublicFile: p.PublicFileBytes()} {
		cur, _, err := s.ReadFile(name, keys.MaxFileSize)
		if err == nil {
			if !bytes.Equal(cur, data) {
				return path, fmt.Errorf("%s/%s: %w", path, name, errBackupExists)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return path, err
		}
		tmp, err := s.WriteTemp(name, data, opts)
		if err != nil {
			return path, err
		}
		if err := s.RenameNoReplace(tmp, name); err != nil {
			s.Remove(tmp)
			return path, err
		}
	}
	if err := s.Sync(); err != nil {
		return path, err
	}
	// Read it back: a backup is only a backup once it verifiably holds the key.
	got, err := readPairDir(d, sub, stamp)
	if err != nil {
		return path, fmt.Errorf("backup %q does not read back: %w", path, err)
	}
	if !got.Equal(p) {
		return path, fmt.Errorf("backup %q does not hold the key it was given", path)
	}
	return path, nil
}

// InvalidStampError reports a backup name that is not one rdctl gives. The
// name itself is not kept: it may hold control characters.
type InvalidStampError struct{ Len int }

func (e *InvalidStampError) Error() string {
	return fmt.Sprintf("invalid backup name (%d bytes): backup names look like 20261122T015501Z or 20261122T015501Z-uninstall", e.Len)
}

func checkStamp(stamp string) error {
	if !stampRE().MatchString(stamp) {
		return &InvalidStampError{Len: len(stamp)}
	}
	return nil
}

// readBackup reads and validates the pair in backups/<stamp> of the state
// directory d.
func readBackup(d *safefs.Dir, stamp string) (keys.Pair, error) {
	return readPairDir(d, backupsDir, stamp)
}

func readPairDir(d *safefs.Dir, sub, stamp string) (keys.Pair, error) {
	if err := checkStamp(stamp); err != nil {
		return keys.Pair{}, err
	}
	b, err := d.Sub(sub)
	if err != nil {
		return keys.Pair{}, err
	}
	defer b.Close()
	s, err := b.Sub(stamp)
	if err != nil {
		return keys.Pair{}, err
	}
	defer s.Close()
	return readPairFiles(s)
}

// readPairFiles reads and validates the secret in s. It reads as from an
// untrusted directory (one link, bounded, no FIFO), which costs nothing for
// rdctl's own files and is what the legacy directories need.
func readPairFiles(s *safefs.Dir) (keys.Pair, error) {
	data, _, err := s.ReadUntrusted(keys.SecretFile, keys.MaxFileSize)
	if err != nil {
		return keys.Pair{}, err
	}
	p, err := keys.ParseSecret(data)
	if err != nil {
		return keys.Pair{}, err
	}
	return p, p.Validate()
}

// Backup describes one backup.
type Backup struct {
	Stamp       string `json:"stamp"`
	Path        string `json:"path"`
	PublicKey   string `json:"public_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Valid       bool   `json:"valid"`
	Live        bool   `json:"live"`
	Error       string `json:"error,omitempty"`
}

// ListBackups lists the backups in stateDir, oldest first; Live compares
// each with the key in workingDir. A missing state directory has none.
func ListBackups(workingDir, stateDir string) ([]Backup, error) {
	var st keys.State
	if w, err := safefs.OpenDir(workingDir); err == nil {
		st, _ = keys.Inspect(w)
		w.Close()
	}
	d, err := openState(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	b, err := d.Sub(backupsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	names, err := b.Names()
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, n := range names {
		if info, err := b.Lstat(n); err != nil || !info.Mode.IsDir() || checkStamp(n) != nil {
			continue
		}
		bk := Backup{Stamp: n, Path: b.Join(n)}
		p, err := readBackup(d, n)
		if err != nil {
			bk.Error = err.Error()
		} else {
			bk.Valid, bk.PublicKey, bk.Fingerprint = true, p.PublicBase64(), p.Fingerprint()
			bk.Live = st.Valid && p.Equal(st.Pair)
		}
		out = append(out, bk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stamp < out[j].Stamp })
	return out, nil
}

// Prune removes all but the newest keep backups. Secret files are
// overwritten with zeros and fsynced before they are unlinked. On SSDs and
// copy-on-write filesystems (btrfs, ZFS) that overwrite may land in new
// blocks and leave the old bytes on the medium: it is a best effort, not a
// guarantee.
func Prune(workingDir, stateDir string, keep int) ([]string, error) {
	if keep < 0 {
		return nil, errors.New("keep must be 0 or more")
	}
	all, err := ListBackups(workingDir, stateDir)
	if err != nil || len(all) <= keep {
		return nil, err
	}
	d, err := openState(stateDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	b, err := d.Sub(backupsDir)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var removed []string
	for _, bk := range all[:len(all)-keep] {
		if err := shredDir(b, bk.Stamp); err != nil {
			return removed, err
		}
		removed = append(removed, bk.Path)
	}
	return removed, b.Sync()
}

// shredDir overwrites and removes the files in sub, then sub itself.
func shredDir(parent *safefs.Dir, sub string) error {
	s, err := parent.Sub(sub)
	if err != nil {
		return err
	}
	names, err := s.Names()
	if err != nil {
		s.Close()
		return err
	}
	for _, n := range names {
		if err := s.Shred(n, keys.MaxFileSize); err != nil {
			s.Close()
			return err
		}
	}
	if err := s.Sync(); err != nil {
		s.Close()
		return err
	}
	s.Close()
	return parent.RemoveDir(sub)
}

// stagedRecord is staged.json, which [Stage] writes next to the staged
// pair. A staged pair is trusted only if the record says it is the one
// Stage made: anything else in staged/ did not come from rdctl.
type stagedRecord struct {
	Format    int    `json:"format"`
	PublicKey string `json:"public_key"`
}

const stagedRecordFile = "staged.json"

// UntrustedStagedError reports a staged pair that [Stage] did not record:
// it is never committed.
type UntrustedStagedError struct {
	Dir    string
	Reason string
}

func (e *UntrustedStagedError) Error() string {
	return fmt.Sprintf("the staged key in %q is not the one rdctl rotate --stage recorded (%s); stage a new one", e.Dir, e.Reason)
}

// Stage generates the next pair into staged/ of the state directory
// (root-only, 0700/0600) so client media can be built before the switch,
// and records its public key in staged/staged.json. An already staged
// valid pair is kept and returned with created=false.
func Stage(o Options) (p keys.Pair, created bool, err error) {
	d, err := createState(o.StateDir, o.BackupOwner)
	if err != nil {
		return keys.Pair{}, false, err
	}
	defer d.Close()
	p, err = readStaged(d)
	var untrusted *UntrustedStagedError
	switch {
	case errors.As(err, &untrusted):
		// Not rdctl's (or a Stage that crashed before its record): it is
		// never committed, so replace it with a pair that is.
		if err := shredDir(d, stagedDir); err != nil {
			return keys.Pair{}, false, err
		}
	case err != nil || !p.IsZero():
		return p, false, err
	}
	s, err := ensureSub(d, stagedDir, o.BackupOwner)
	if err != nil {
		return keys.Pair{}, false, err
	}
	defer s.Close()
	p, err = keys.Generate(o.Rand)
	if err != nil {
		return keys.Pair{}, false, err
	}
	opts := safefs.FileOptions{Mode: 0o600, UID: o.BackupOwner.UID, GID: o.BackupOwner.GID}
	// The pair first, the record last: a crash in between leaves a pair
	// without a record, which readStaged refuses and Stage then replaces.
	if _, err := s.WriteFile(keys.SecretFile, p.SecretFileBytes(), opts); err != nil {
		return keys.Pair{}, false, err
	}
	if _, err := s.WriteFile(keys.PublicFile, p.PublicFileBytes(), opts); err != nil {
		return keys.Pair{}, false, err
	}
	rec, err := json.Marshal(stagedRecord{Format: 1, PublicKey: p.PublicBase64()})
	if err != nil {
		return keys.Pair{}, false, err
	}
	if _, err := s.WriteFile(stagedRecordFile, append(rec, '\n'), opts); err != nil {
		return keys.Pair{}, false, err
	}
	return p, true, nil
}

// Staged returns the staged pair in stateDir, or a zero pair when none is
// staged. A pair that staged.json does not vouch for is an
// [*UntrustedStagedError].
func Staged(stateDir string) (keys.Pair, error) {
	d, err := openState(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return keys.Pair{}, nil
	}
	if err != nil {
		return keys.Pair{}, err
	}
	defer d.Close()
	return readStaged(d)
}

func readStaged(d *safefs.Dir) (keys.Pair, error) {
	s, err := d.Sub(stagedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return keys.Pair{}, nil
	}
	if err != nil {
		return keys.Pair{}, err
	}
	defer s.Close()
	data, _, err := s.ReadUntrusted(keys.SecretFile, keys.MaxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return keys.Pair{}, nil
	}
	if err != nil {
		return keys.Pair{}, err
	}
	p, err := keys.ParseSecret(data)
	if err != nil {
		return keys.Pair{}, fmt.Errorf("staged key: %w", err)
	}
	if err := p.Validate(); err != nil {
		return keys.Pair{}, fmt.Errorf("staged key: %w", err)
	}
	raw, _, err := s.ReadUntrusted(stagedRecordFile, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return keys.Pair{}, &UntrustedStagedError{Dir: s.Path(), Reason: "there is no " + stagedRecordFile}
	}
	if err != nil {
		return keys.Pair{}, err
	}
	var rec stagedRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Format != 1 {
		return keys.Pair{}, &UntrustedStagedError{Dir: s.Path(), Reason: stagedRecordFile + " is unreadable"}
	}
	if rec.PublicKey != p.PublicBase64() {
		return keys.Pair{}, &UntrustedStagedError{Dir: s.Path(), Reason: stagedRecordFile + " names a different key"}
	}
	return p, nil
}

func removeStaged(stateDir string) error {
	d, err := openState(stateDir)
	if err != nil {
		return err
	}
	defer d.Close()
	if ok, _ := d.Exists(stagedDir); !ok {
		return nil
	}
	if err := shredDir(d, stagedDir); err != nil {
		return err
	}
	return d.Sync()
}
