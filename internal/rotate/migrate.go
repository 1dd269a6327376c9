package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// Migration fault points, passed to [Options.Hook] (see [Migrate]).
const (
	PointMigrateCopied  = "migrate-copied"  // a legacy backup copied into the state directory and read back
	PointMigrateRemoved = "migrate-removed" // that legacy backup removed from the working directory
	PointMigrateStaged  = "migrate-staged"  // a legacy staged pair quarantined, before it is removed
	PointMigrateJournal = "migrate-journal" // a legacy journal read, before it is removed
)

// The most entries Migrate reads in a legacy directory, which the service
// user can write: one backup per rotation, two files per backup. More is
// not rdctl's doing and is left alone, named in Migration.Left.
const (
	maxLegacyBackups = 1024
	maxLegacyFiles   = 16
)

// MigratePoints lists the migration fault points in order.
var MigratePoints = []string{PointMigrateCopied, PointMigrateRemoved, PointMigrateStaged, PointMigrateJournal}

// Legacy is what an rdctl before the state directory left in the working
// directory: backups/, staged/ and the journal.
type Legacy struct {
	Backups bool
	Staged  bool
	Journal bool
}

// Empty reports whether there is nothing to migrate.
func (l Legacy) Empty() bool { return !l.Backups && !l.Staged && !l.Journal }

// FindLegacy reports, without changing anything, what [Migrate] would act
// on in workingDir. A missing working directory holds nothing.
func FindLegacy(workingDir string) (Legacy, error) {
	d, err := safefs.OpenDir(workingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return Legacy{}, nil
	}
	if err != nil {
		return Legacy{}, err
	}
	defer d.Close()
	var l Legacy
	for _, x := range []struct {
		name string
		flag *bool
	}{{backupsDir, &l.Backups}, {stagedDir, &l.Staged}, {LegacyJournalFile, &l.Journal}} {
		if *x.flag, err = d.Exists(x.name); err != nil {
			return Legacy{}, err
		}
	}
	return l, nil
}

// Left is something Migrate found in the working directory and did not
// take. Path is safe to print: a name that is not a backup name is quoted.
type Left struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Migration is what [Migrate] did.
type Migration struct {
	// Migrated are the backups now in the state directory (their paths
	// there), whose copies in the working directory were removed.
	Migrated []string `json:"migrated,omitempty"`
	// Quarantined is where a staged pair found in the working directory
	// was put aside: it is never committed.
	Quarantined string `json:"quarantined,omitempty"`
	// StagedErr says why a staged/ found in the working directory held no
	// valid pair; it was removed.
	StagedErr string `json:"staged_error,omitempty"`
	// Journal is a rotation journal found in the working directory, if it
	// validated; it was removed and not resumed. JournalErr says why one
	// did not validate.
	Journal    *Journal `json:"journal,omitempty"`
	JournalErr string   `json:"journal_error,omitempty"`
	// Left lists what stays in the working directory, and why.
	Left []Left `json:"left,omitempty"`
}

// Changed reports whether Migrate changed anything.
func (m *Migration) Changed() bool {
	return m != nil && (len(m.Migrated) > 0 || m.Quarantined != "" || m.StagedErr != "" || m.Journal != nil || m.JournalErr != "")
}

// printable is name as it may be printed: as it is when it is a backup
// name, quoted (control characters escaped) otherwise.
func printable(name string) string {
	if checkStamp(name) == nil {
		return name
	}
	return strconv.QuoteToASCII(name)
}

// Migrate moves the state an older rdctl kept in the working directory into
// the state directory ([Options.StateDir]). What it finds there is
// untrusted input: the service user can write that directory, so anything
// in it may have been planted.
//
//   - Backups are copied only if they parse as valid pairs under a backup
//     name, owned by [Options.BackupOwner] as rdctl made them. Each copy is
//     read back before the original is shredded and removed, so a kill at
//     any point leaves at least one verified copy. They are taken although
//     they could be planted, because refusing them would lose real old
//     keys, and keeping a planted one is harmless: a backup becomes live
//     only through an explicit rotate --restore STAMP by root. Anything
//     else stays where it is and is listed in [Migration.Left].
//   - A staged pair is never migrated as staged: a planted one would let
//     the service user choose the server's next key. A valid one is put
//     aside in quarantine/<stamp>-staged/ of the state directory (root can
//     read it, rdctl never commits it) and removed from the working
//     directory.
//   - A journal is validated and removed, never resumed: a planted journal
//     could make Resume put a planted backup live. The rotation it
//     describes, if real, left a valid key (old or new) live.
//
// It is idempotent: a run after a kill finishes what the killed one began.
func Migrate(o Options) (*Migration, error) {
	m := &Migration{}
	l, err := FindLegacy(o.WorkingDir)
	if err != nil || l.Empty() {
		return m, err
	}
	d, err := safefs.OpenDir(o.WorkingDir)
	if err != nil {
		return m, err
	}
	defer d.Close()
	sd, err := createState(o.StateDir, o.BackupOwner)
	if err != nil {
		return m, err
	}
	defer sd.Close()
	if l.Backups {
		if err := migrateBackups(&o, d, sd, m); err != nil {
			return m, err
		}
	}
	if l.Staged {
		if err := quarantineStaged(&o, d, sd, m); err != nil {
			return m, err
		}
	}
	if l.Journal {
		data, _, err := d.ReadUntrusted(LegacyJournalFile, maxJournalSize)
		if err == nil {
			m.Journal, err = parseJournal(d.Join(LegacyJournalFile), data)
		}
		if err != nil {
			m.Journal, m.JournalErr = nil, err.Error()
		}
		o.hook(PointMigrateJournal)
		if err := d.Remove(LegacyJournalFile); err != nil {
			return m, err
		}
	}
	return m, d.Sync()
}

func migrateBackups(o *Options, d, sd *safefs.Dir, m *Migration) error {
	info, err := d.Lstat(backupsDir)
	if err != nil {
		return err
	}
	if !info.Mode.IsDir() {
		m.Left = append(m.Left, Left{Path: d.Join(backupsDir), Reason: "not a directory"})
		return nil
	}
	b, err := d.Sub(backupsDir)
	if err != nil {
		return err
	}
	defer b.Close()
	names, err := b.NamesAtMost(maxLegacyBackups)
	if errors.Is(err, safefs.ErrTooManyEntries) {
		m.Left = append(m.Left, Left{Path: b.Path(), Reason: fmt.Sprintf("more than %d entries: none migrated", maxLegacyBackups)})
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		path := b.Path() + "/" + printable(n)
		if info, err := b.Lstat(n); err != nil || !info.Mode.IsDir() || checkStamp(n) != nil {
			m.Left = append(m.Left, Left{Path: path, Reason: "not a backup"})
			continue
		}
		p, err := readLegacyPair(b, n, &o.BackupOwner)
		if err != nil {
			// A kill while the original was being removed leaves it
			// partly shredded; its verified copy is in the state
			// directory already.
			if _, serr := readBackup(sd, n); serr == nil {
				if err := removeLegacy(b, n); err != nil {
					m.Left = append(m.Left, Left{Path: path, Reason: err.Error()})
				}
				continue
			}
			m.Left = append(m.Left, Left{Path: path, Reason: err.Error()})
			continue
		}
		dst, err := copyBackup(sd, n, p, o.BackupOwner)
		if err != nil {
			return fmt.Errorf("migrating backup %s: %w", path, err)
		}
		o.hook(PointMigrateCopied)
		if err := removeLegacy(b, n); err != nil {
			m.Left = append(m.Left, Left{Path: path, Reason: "copied to " + dst + ", but removing it failed: " + err.Error()})
			continue
		}
		m.Migrated = append(m.Migrated, dst)
		o.hook(PointMigrateRemoved)
	}
	if err := b.Sync(); err != nil {
		return err
	}
	if rest, err := b.NamesAtMost(0); err == nil && len(rest) == 0 {
		return d.RemoveDir(backupsDir)
	}
	return nil
}

// copyBackup writes p to backups/<stamp> in the state directory, or, where
// a different backup has that name, to <stamp>-migrated; either way read
// back.
func copyBackup(sd *safefs.Dir, stamp string, p keys.Pair, owner keys.Owner) (string, error) {
	dst, err := writeBackup(sd, stamp, p, owner)
	if errors.Is(err, errBackupExists) {
		dst, err = writeBackup(sd, stamp+"-migrated", p, owner)
	}
	return dst, err
}

// readLegacyPair reads the pair in <name> of an untrusted directory: a real
// directory, its secret a regular file with one link, owned by owner (when
// owner is not nil), at most a key's size, and a valid pair.
func readLegacyPair(parent *safefs.Dir, name string, owner *keys.Owner) (keys.Pair, error) {
	s, err := parent.Sub(name)
	if err != nil {
		return keys.Pair{}, err
	}
	defer s.Close()
	data, info, err := s.ReadUntrusted(keys.SecretFile, keys.MaxFileSize)
	if err != nil {
		return keys.Pair{}, err
	}
	if owner != nil && (info.UID != owner.UID || info.GID != owner.GID) {
		return keys.Pair{}, fmt.Errorf("%s is owned by %d:%d, not %d:%d as rdctl's backups are", keys.SecretFile, info.UID, info.GID, owner.UID, owner.GID)
	}
	p, err := keys.ParseSecret(data)
	if err == nil {
		err = p.Validate()
	}
	return p, err
}

// removeLegacy shreds the regular files in <name> and removes it. A file
// rdctl would not shred (a FIFO, a hard link, a huge file) is only
// unlinked: that removes a name in the working directory and touches no
// file's contents. A subdirectory makes the removal fail.
func removeLegacy(parent *safefs.Dir, name string) error {
	s, err := parent.Sub(name)
	if err != nil {
		return err
	}
	names, err := s.NamesAtMost(maxLegacyFiles)
	if err != nil {
		s.Close()
		return err
	}
	for _, n := range names {
		err := s.Shred(n, keys.MaxFileSize)
		if errors.Is(err, safefs.ErrNotRegular) || errors.Is(err, safefs.ErrHardLink) || errors.Is(err, safefs.ErrTooLarge) || errors.Is(err, safefs.ErrSymlink) {
			err = s.Remove(n)
		}
		if err != nil {
			s.Close()
			return err
		}
	}
	err = s.Sync()
	s.Close()
	if err != nil {
		return err
	}
	return parent.RemoveDir(name)
}

func quarantineStaged(o *Options, d, sd *safefs.Dir, m *Migration) error {
	path := d.Join(stagedDir)
	info, err := d.Lstat(stagedDir)
	if err != nil {
		return err
	}
	if !info.Mode.IsDir() {
		m.Left = append(m.Left, Left{Path: path, Reason: "not a directory"})
		return nil
	}
	// No owner check: a valid pair is put aside whoever owns it.
	p, err := readLegacyPair(d, stagedDir, nil)
	if err != nil {
		m.StagedErr = err.Error()
	} else {
		name := o.now().UTC().Format(stampLayout) + "-staged"
		for i := 1; ; i++ {
			var dst string
			dst, err = writePairDir(sd, quarantineDir, name, p, o.BackupOwner)
			if !errors.Is(err, errBackupExists) || i >= 100 {
				m.Quarantined = dst
				break
			}
			name = fmt.Sprintf("%s-staged-%d", o.now().UTC().Format(stampLayout), i)
		}
		if err != nil {
			return fmt.Errorf("putting aside the staged key in %s: %w", path, err)
		}
		o.hook(PointMigrateStaged)
	}
	if err := removeLegacy(d, stagedDir); err != nil {
		m.Left = append(m.Left, Left{Path: path, Reason: err.Error()})
	}
	return nil
}
