package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
	"golang.org/x/sys/unix"
)

// Directories under the working directory.
const (
	backupsDir = "backups"
	stagedDir  = "staged"
)

// stampLayout names backup directories: UTC, sortable.
const stampLayout = "20060102T150405Z"

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

// newStamp reserves a fresh backups/<stamp> directory.
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

// writeBackup makes backups/<stamp> hold p, writing only what is missing
// and never overwriting a file. Each file is written to a temporary name
// and renamed without replace, so a crash leaves whole files or temps.
func writeBackup(d *safefs.Dir, stamp string, p keys.Pair, owner keys.Owner) (string, error) {
	b, err := ensureSub(d, backupsDir, owner)
	if err != nil {
		return "", err
	}
	defer b.Close()
	s, err := ensureSub(b, stamp, owner)
	if err != nil {
		return "", err
	}
	defer s.Close()
	path := d.Join(backupsDir + "/" + stamp)
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
	got, err := readBackup(d, stamp)
	if err != nil {
		return path, fmt.Errorf("backup %q does not read back: %w", path, err)
	}
	if !got.Equal(p) {
		return path, fmt.Errorf("backup %q does not hold the key it was given", path)
	}
	return path, nil
}

func checkStamp(stamp string) error {
	if stamp == "" || stamp == "." || stamp == ".." || strings.ContainsAny(stamp, "/\x00") {
		return fmt.Errorf("invalid backup name %q", stamp)
	}
	return nil
}

// readBackup reads and validates the pair in backups/<stamp>.
func readBackup(d *safefs.Dir, stamp string) (keys.Pair, error) {
	if err := checkStamp(stamp); err != nil {
		return keys.Pair{}, err
	}
	b, err := d.Sub(backupsDir)
	if err != nil {
		return keys.Pair{}, err
	}
	defer b.Close()
	s, err := b.Sub(stamp)
	if err != nil {
		return keys.Pair{}, err
	}
	defer s.Close()
	data, _, err := s.ReadFile(keys.SecretFile, keys.MaxFileSize)
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

// ListBackups lists the backups in workingDir, oldest first.
func ListBackups(workingDir string) ([]Backup, error) {
	d, err := safefs.OpenDir(workingDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, _ := keys.Inspect(d)
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
		if info, err := b.Lstat(n); err != nil || !info.Mode.IsDir() {
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
func Prune(workingDir string, keep int) ([]string, error) {
	if keep < 0 {
		return nil, errors.New("keep must be 0 or more")
	}
	all, err := ListBackups(workingDir)
	if err != nil || len(all) <= keep {
		return nil, err
	}
	d, err := safefs.OpenDir(workingDir)
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
		if err := shredFile(s, n); err != nil {
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

func shredFile(d *safefs.Dir, name string) error {
	info, err := d.Lstat(name)
	if err != nil {
		return err
	}
	if info.IsRegular() && info.Size > 0 {
		fd, err := unix.Openat(d.FD(), name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		zeros := make([]byte, info.Size)
		_, werr := unix.Pwrite(fd, zeros, 0)
		serr := unix.Fsync(fd)
		unix.Close(fd)
		if werr != nil || serr != nil {
			return errors.Join(werr, serr)
		}
	}
	return d.Remove(name)
}

// Stage generates the next pair into staged/ (root-only, 0700/0600) so
// client media can be built before the switch. An already staged valid
// pair is kept and returned with created=false.
func Stage(o Options) (p keys.Pair, created bool, err error) {
	d, err := safefs.OpenDir(o.WorkingDir)
	if err != nil {
		return keys.Pair{}, false, err
	}
	defer d.Close()
	if p, err := readStaged(d); err != nil || !p.IsZero() {
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
	if _, err := s.WriteFile(keys.SecretFile, p.SecretFileBytes(), opts); err != nil {
		return keys.Pair{}, false, err
	}
	if _, err := s.WriteFile(keys.PublicFile, p.PublicFileBytes(), opts); err != nil {
		return keys.Pair{}, false, err
	}
	return p, true, nil
}

// Staged returns the staged pair, or a zero pair when none is staged.
func Staged(workingDir string) (keys.Pair, error) {
	d, err := safefs.OpenDir(workingDir)
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
	data, _, err := s.ReadFile(keys.SecretFile, keys.MaxFileSize)
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
	return p, p.Validate()
}

func removeStaged(workingDir string) error {
	d, err := safefs.OpenDir(workingDir)
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
