package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/firewall"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
)

// UninstallOptions says what to uninstall.
type UninstallOptions struct {
	// Root is the image tree ("" or "/" for the live system).
	Root string
	// Record is the deployment record of a systemd install.
	Record *deploy.Record
	// RecordPath is where the record is (absolute, under Root); it is
	// removed last.
	RecordPath string
	// Purge deletes the live key files after the backup holds them.
	Purge bool
	// PurgeInstall (--purge) also removes what install put on the host
	// besides the units: the binaries the record lists (only while their
	// sha256 matches), the service user (live, only when rdctl's
	// sysusers.d entry names it and its comment is rdctl's), and the
	// firewall rules of every backend Firewall finds (live). Keys stay
	// unless Purge too.
	PurgeInstall bool
	// Firewall runs the firewall tools for PurgeInstall; nil leaves the
	// firewall alone.
	Firewall firewall.Runner
	// Accounts looks up and deletes the service user; nil means the
	// system's (os/user, userdel).
	Accounts Accounts
	// BackupOwner owns the backup rdctl makes first.
	BackupOwner keys.Owner
	// StateDir is rdctl's own state for this deployment (under Root), where
	// the backups are.
	StateDir string
	// Live stops, disables and reloads through Connect; an image tree has
	// nothing running, so only its files go.
	Live bool
	// Connect reaches systemd; nil means the system manager over D-Bus.
	Connect ConnectFunc
	// LookupUnit finds the file systemd loads for a unit; required. It is
	// adopt.LookupUnit, passed in because adopt's tests import this
	// package.
	LookupUnit UnitLookup
}

// UnitLookup finds the file systemd loads for the unit name under root:
// its path on the system and whether it carries rdctl's header.
type UnitLookup func(root, name string) (sysPath string, writtenByRdctl bool, err error)

// UninstallResult is what an uninstall did, filled in as its steps run
// (in a dry run, only what the steps can say without acting).
type UninstallResult struct {
	// WorkingDir is the record's working directory, under Root.
	WorkingDir string
	// StateDir is rdctl's state for the deployment, where backups are.
	StateDir string
	// Backup is the backup made before anything stopped, if one was.
	Backup string
	// Stopped and Disabled are the units stopped and disabled, in order.
	Stopped, Disabled []string
	// Removed are the files removed, in order.
	Removed []string
	// PurgedKeys is true once the live key files are deleted.
	PurgedKeys bool
	// DeletedUser is the service user deleted (PurgeInstall), if one was.
	DeletedUser string
	// Firewall is what the firewall removals ran (PurgeInstall; set by
	// Finish).
	Firewall []firewall.Result
	firewall *firewall.ApplyPlan
	// LeftUnits are the record's unit files rdctl did not write (system
	// paths): stopped and disabled, but left in place.
	LeftUnits []string
	// Kept is what stays (set by Finish): LeftUnits, then the working
	// directory, or only its backups after a purge.
	Kept []string
	// KeptWorkingDir is true when the working directory stays with the
	// key pair, the database and the backups (set by Finish).
	KeptWorkingDir bool
	// Notes are what the steps decided not to do, for the caller to warn
	// about.
	Notes []UninstallNote
}

// UninstallNoteKind says what an [UninstallNote] is about.
type UninstallNoteKind int

const (
	// NoteNoWorkingDir: the working directory does not exist, so there
	// was no key to back up.
	NoteNoWorkingDir UninstallNoteKind = iota + 1
	// NoteKeyNotBackedUp: the working directory holds no valid key pair
	// (Err says why), so nothing was backed up and the key files stay as
	// they are.
	NoteKeyNotBackedUp
	// NoteBinaryChanged: a binary the record lists differs from what
	// rdctl installed (Path), so it stays.
	NoteBinaryChanged
	// NoteUserNotOurs: the service user (User) is not one rdctl made, so
	// it stays.
	NoteUserNotOurs
	// NoteExporterKept: rdctl's exporter unit (Path) stays, since it may
	// watch other servers too; PurgeInstall removes it.
	NoteExporterKept
	// NoteFirewallPortRulesKept: firewalld port rules that admit rdctl's
	// ports (PortRules) stay: rdctl's own rules are its firewalld service,
	// and a port rule may be a guide's or an admin's.
	NoteFirewallPortRulesKept
)

// UninstallNote is something an uninstall step left alone on purpose.
type UninstallNote struct {
	Kind UninstallNoteKind
	Dir  string
	Err  error
	Path string // NoteBinaryChanged
	User string // NoteUserNotOurs
	// PortRules: NoteFirewallPortRulesKept
	PortRules []firewall.Rule
}

// UninstallStage names the step of an uninstall that failed, so the
// caller can say in what state the host was left.
type UninstallStage int

const (
	// StageBackup: the backup failed; nothing was changed.
	StageBackup UninstallStage = iota + 1
	// StageStop: a unit did not stop; nothing was removed yet.
	StageStop
	// StagePurge: deleting the key files failed after the units were
	// removed; the record stays, so the same uninstall can run again.
	StagePurge
)

// UninstallError is a failed uninstall step.
type UninstallError struct {
	Stage UninstallStage
	Unit  string // StageStop: the unit that did not stop
	Err   error
}

func (e *UninstallError) Error() string {
	if e.Stage == StageBackup {
		return "backing up the key before uninstalling: " + e.Err.Error()
	}
	return e.Err.Error()
}
func (e *UninstallError) Unwrap() error { return e.Err }

// NotSystemdError is an uninstall asked of a deployment on another backend.
type NotSystemdError struct{ Backend string }

func (e *NotSystemdError) Error() string {
	return fmt.Sprintf("uninstalling a %s deployment is not available in this version of rdctl", e.Backend)
}

// UninstallPlan builds the steps of an uninstall, in the order that keeps
// every failure safe to run again: back the key up before anything stops,
// stop and disable the units (live), remove the files rdctl wrote, reload
// (live), delete the key pair (Purge, only after a backup this run made),
// and remove the record last. res fills in as the steps run; call
// [UninstallResult.Finish] after they all ran.
func UninstallPlan(ctx context.Context, o UninstallOptions) ([]plan.Step, *UninstallResult, error) {
	rec := o.Record
	if rec.Backend != deploy.BackendSystemd {
		return nil, nil, &NotSystemdError{Backend: rec.Backend}
	}
	u := &uninstall{o: o, connect: o.Connect.orDefault(), res: &UninstallResult{
		WorkingDir: Under(o.Root, rec.WorkingDir), StateDir: o.StateDir,
		Stopped: []string{}, Disabled: []string{}, Removed: []string{}, Kept: []string{},
	}}
	units := []string{rec.HBBSUnit, rec.HBBRUnit}
	files, left := uninstallFiles(o.Root, units, o.LookupUnit)
	u.res.LeftUnits = left
	// rdctl's exporter goes only with PurgeInstall, since it may watch
	// other servers besides this one; a unit of that name rdctl did not
	// write is not rdctl's exporter.
	if ef, _, ours := unitFiles(o.Root, ExporterUnitName, o.LookupUnit); ours {
		if o.PurgeInstall {
			units = append(units, ExporterUnitName)
			files = append(files, ef...)
			if headed(o.Root, ExporterScrapeConfigPath) {
				files = append(files, Under(o.Root, ExporterScrapeConfigPath))
			}
		} else {
			u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteExporterKept, Path: ef[0]})
		}
	}
	if u.o.Accounts == nil {
		u.o.Accounts = SystemAccounts{}
	}

	steps := []plan.Step{u.backupStep()}
	if o.Live {
		steps = append(steps, &plan.Func{Verb: "stop and disable", Object: strings.Join(units, " and "),
			Do: func() (bool, error) { return true, u.stop(ctx, units) }})
	}
	if o.PurgeInstall && o.Live {
		if o.Firewall != nil {
			u.res.firewall = firewall.NewPurgePlan(ctx, o.Firewall)
			steps = append(steps, u.res.firewall.Steps()...)
			if left := u.res.firewall.PortRulesLeft(); len(left) > 0 {
				u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteFirewallPortRulesKept, PortRules: left})
			}
		}
		// Before its sysusers.d entry goes: that entry is what says
		// rdctl made the user, so a failed run can run again.
		if s := u.userStep(ctx); s != nil {
			steps = append(steps, s)
		}
	}
	for _, f := range files {
		steps = append(steps, u.removeStep(f))
	}
	if o.PurgeInstall {
		for _, b := range rec.InstalledBinaries {
			steps = append(steps, u.binaryStep(b))
		}
	}
	if o.Live {
		steps = append(steps, &plan.Func{Verb: "reload", Object: "systemd", Do: func() (bool, error) { return true, u.reload(ctx) }})
	}
	if o.Purge {
		steps = append(steps, u.purgeStep())
	}
	// The record, last: until here a failed run can be run again.
	steps = append(steps, u.removeStep(o.RecordPath))
	return steps, u.res, nil
}

// Finish records what stays, once every step ran without error.
func (r *UninstallResult) Finish() {
	if r.firewall != nil {
		r.Firewall = r.firewall.Results()
	}
	r.Kept = append(r.Kept, r.LeftUnits...)
	if r.PurgedKeys {
		r.Kept = append(r.Kept, path.Join(r.StateDir, "backups"))
	} else if d, err := safefs.OpenDir(r.WorkingDir); err == nil {
		d.Close()
		r.Kept = append(r.Kept, r.WorkingDir)
		r.KeptWorkingDir = true
	}
}

type uninstall struct {
	o       UninstallOptions
	connect ConnectFunc
	res     *UninstallResult
	stamp   string // of the backup this run made; the purge needs it
}

// backupStep backs the key up. Without a valid key there is nothing to
// back up: the key files stay as they are (a note), unless Purge would
// delete them, which it refuses, in a dry run too.
func (u *uninstall) backupStep() plan.Step {
	wd := u.res.WorkingDir
	backup := &plan.Func{Verb: "back up the key in", Object: wd, To: u.o.StateDir + "/backups/<stamp>-uninstall/"}
	backup.Check = func() (bool, error) {
		st, err := keys.InspectDir(wd)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			return false, err
		case !st.Valid && u.o.Purge:
			return false, fmt.Errorf("backing up the key before uninstalling: %w in %q", rotate.ErrNoLiveKey, wd)
		}
		return st.Valid, nil
	}
	backup.Do = func() (bool, error) {
		switch b, _, err := rotate.BackupNow(wd, u.o.StateDir, u.o.BackupOwner, "uninstall"); {
		case err == nil:
			u.res.Backup, u.stamp = b, filepath.Base(b)
			backup.To = b
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteNoWorkingDir, Dir: wd})
		case errors.Is(err, rotate.ErrNoLiveKey) && !u.o.Purge:
			u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteKeyNotBackedUp, Dir: wd, Err: err})
		default:
			return false, &UninstallError{Stage: StageBackup, Err: err}
		}
		return false, nil
	}
	return backup
}

// purgeStep deletes the key pair, only when this run's backup holds it.
func (u *uninstall) purgeStep() plan.Step {
	wd := u.res.WorkingDir
	return &plan.Func{Verb: "delete the key pair in", Object: wd,
		Do: func() (bool, error) {
			if u.stamp == "" {
				return false, nil
			}
			removed, err := rotate.PurgeKeys(wd, u.o.StateDir, u.stamp)
			u.res.Removed = append(u.res.Removed, removed...)
			if err != nil {
				return len(removed) > 0, &UninstallError{Stage: StagePurge, Err: err}
			}
			u.res.PurgedKeys = true
			return true, nil
		}}
}

// stop stops hbbs then hbbr and disables both; units systemd does not
// know are skipped.
func (u *uninstall) stop(ctx context.Context, units []string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := u.connect(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	var known []string
	for _, unit := range units {
		st, err := m.State(ctx, unit)
		if err != nil {
			return err
		}
		if st.LoadState == "not-found" {
			continue
		}
		known = append(known, unit)
		if st.ActiveState != "inactive" {
			if err := m.Stop(ctx, unit); err != nil {
				return &UninstallError{Stage: StageStop, Unit: unit, Err: err}
			}
			u.res.Stopped = append(u.res.Stopped, unit)
		}
	}
	if len(known) > 0 {
		if err := m.Disable(ctx, known); err != nil {
			return fmt.Errorf("disabling %s: %w", strings.Join(known, ", "), err)
		}
		u.res.Disabled = append(u.res.Disabled, known...)
	}
	return nil
}

func (u *uninstall) reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := u.connect(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Reload(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// removeStep removes one file (a symlink itself, never its target) and
// syncs its directory, noting it in Removed. A missing file is no change.
func (u *uninstall) removeStep(p string) plan.Step {
	exists := func() (bool, error) {
		_, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	return &plan.Func{Verb: "remove", Object: p, Check: exists,
		Do: func() (bool, error) {
			if ok, err := exists(); !ok || err != nil {
				return false, err
			}
			if err := removeFile(p); err != nil {
				return false, err
			}
			u.res.Removed = append(u.res.Removed, p)
			return true, nil
		}}
}

// uninstallFiles lists what uninstall removes under root: the unit files
// that carry rdctl's header, links in *.wants/ to them, and rdctl's
// sysusers entry. Unit files rdctl did not write are returned apart, as
// system paths: they stay.
func uninstallFiles(root string, units []string, lookup UnitLookup) (files, left []string) {
	for _, u := range units {
		f, l, _ := unitFiles(root, u, lookup)
		files = append(files, f...)
		if l != "" {
			left = append(left, l)
		}
	}
	if headed(root, SysusersPath) {
		files = append(files, Under(root, SysusersPath))
	}
	return files, left
}

// unitFiles are what removing unit u takes under root: its file in
// /etc/systemd/system when rdctl wrote it (ours), and its enablement link.
// A unit found elsewhere or not written by rdctl is left, by its path.
func unitFiles(root, u string, lookup UnitLookup) (files []string, left string, ours bool) {
	sys := path.Join(UnitDir, u)
	p, ours, err := lookup(root, u)
	ours = err == nil && p == sys && ours
	if ours {
		files = append(files, Under(root, sys))
	} else if err == nil {
		left = p
	}
	if d, err := safefs.OpenDir(Under(root, WantsDir)); err == nil {
		if target, err := d.Readlink(u); err == nil && (target == sys || strings.HasSuffix(target, "/"+u)) {
			files = append(files, Under(root, path.Join(WantsDir, u)))
		}
		d.Close()
	}
	return files, left, ours
}

// headed says whether the file at p (under root) starts with rdctl's
// header.
func headed(root, p string) bool {
	_, ok := readHeaded(root, p)
	return ok
}

// readHeaded reads the file at p (under root), at most 64 KiB, and says
// whether it starts with rdctl's header.
func readHeaded(root, p string) ([]byte, bool) {
	d, err := safefs.OpenDir(Under(root, path.Dir(p)))
	if err != nil {
		return nil, false
	}
	defer d.Close()
	data, _, err := d.ReadFile(path.Base(p), 1<<16)
	return data, err == nil && bytes.HasPrefix(data, []byte("# Written by rdctl"))
}

// removeFile removes one file (a symlink itself, never its target) and
// syncs its directory. A missing file is fine.
func removeFile(p string) error {
	d, err := safefs.OpenDir(filepath.Dir(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Remove(filepath.Base(p)); err != nil {
		return err
	}
	return d.Sync()
}
