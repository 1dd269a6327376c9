package main

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

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

func uninstallCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "stop and remove the units; keep the keys and database",
		Description: `Backs the key up first (/var/lib/rdctl/<deployment>/backups/<stamp>-uninstall/),
then stops and disables hbbs and hbbr, removes the unit files rdctl wrote, their
enablement links and the sysusers entry, reloads systemd, and removes the
deployment record last. The working directory with the key pair and the
database stays, and so do the backups: reinstalling or adopting later serves
the same key.

--purge-keys --yes also deletes id_ed25519 (overwritten with zeros, fsynced,
then unlinked) and id_ed25519.pub, after checking the fresh backup holds them.
Both flags are needed; the backups are kept either way and still hold the key.

Unit files rdctl did not write (an adopted Debian package's, an installer
script's) are stopped and disabled but left in place. The service user and the
binaries stay. With --root the same files are removed from the image tree and
nothing live is touched. --dry-run says what would go.

JSON (--json): root, dry_run, backup, stopped[], disabled[], removed[],
kept[], purged_keys, record_removed.

Examples:
  rdctl uninstall
  rdctl --dry-run uninstall
  rdctl uninstall --purge-keys --yes
  rdctl --root ./image uninstall`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "purge-keys", Usage: "also delete the live key files (needs --yes; backups stay)"},
			&cli.BoolFlag{Name: "yes", Usage: "confirm --purge-keys"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runUninstall(ctx, e, cmd) },
	}
}

type uninstallJSON struct {
	plan.Report
	Root          string   `json:"root"`
	Backup        string   `json:"backup,omitempty"`
	Stopped       []string `json:"stopped"`
	Disabled      []string `json:"disabled"`
	Removed       []string `json:"removed"`
	Kept          []string `json:"kept"`
	PurgedKeys    bool     `json:"purged_keys"`
	RecordRemoved bool     `json:"record_removed"`
}

// uninstallFile is a file uninstall removes: a unit file rdctl wrote, an
// enablement link to one, the sysusers entry.
type uninstallFile struct {
	path string // under --root
	sys  string // as on the system
	link bool
}

func runUninstall(ctx context.Context, e *env, cmd *cli.Command) error {
	purge, yes := cmd.Bool("purge-keys"), cmd.Bool("yes")
	if purge != yes {
		return usageErrorf("--purge-keys deletes the server's secret key and needs both flags: --purge-keys --yes")
	}
	out := uninstallJSON{Root: e.root, Stopped: []string{}, Disabled: []string{}, Removed: []string{}, Kept: []string{}}
	rec, err := e.loadRecord()
	if errors.Is(err, deploy.ErrNoRecord) {
		if e.json {
			out.Report = plan.NewReport(nil, e.dryRun)
			return writeJSON(e.stdout, out)
		}
		e.printf("unchanged: nothing to uninstall (no deployment record at %s)\n", e.recordPath())
		return nil
	}
	if err != nil {
		return err
	}
	if rec.Backend != deploy.BackendSystemd {
		return withHints(fmt.Errorf("uninstalling a %s deployment is not available in this version of rdctl", rec.Backend),
			"stop it with docker compose down in "+composeDirOf(rec)+"; the data directory holds the keys")
	}
	if err := e.requireRoot(); err != nil {
		return err
	}
	units := []string{rec.HBBSUnit, rec.HBBRUnit}
	files, leftUnits := uninstallFiles(e, units)
	wd := e.under(rec.WorkingDir)

	p := e.newPlan(ctx, rec)
	// 1. The backup, before anything stops.
	var stamp string
	sd := e.stateDir(rec)
	backup := &plan.Func{Verb: "back up the key in", Object: wd, To: sd + "/backups/<stamp>-uninstall/"}
	backup.Check = func() (bool, error) {
		st, err := inspectDir(wd)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			return false, err
		case !st.Valid && purge:
			return false, fmt.Errorf("backing up the key before uninstalling: %w in %q", rotate.ErrNoLiveKey, wd)
		}
		return st.Valid, nil
	}
	backup.Do = func() (bool, error) {
		switch b, _, err := rotate.BackupNow(wd, sd, e.backupOwner(), "uninstall"); {
		case err == nil:
			out.Backup, stamp = b, filepath.Base(b)
			backup.To = b
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			e.warnf("the working directory %s does not exist: no key to back up", wd)
		case errors.Is(err, rotate.ErrNoLiveKey) && !purge:
			e.warnf("%v; the key files stay as they are", err)
		default:
			return false, withHints(fmt.Errorf("backing up the key before uninstalling: %w", err), "nothing was changed")
		}
		return false, nil
	}
	p.Add(backup)
	// 2. Live: stop and disable.
	if e.root == "" {
		p.Add(&plan.Func{Verb: "stop and disable", Object: strings.Join(units, " and "),
			Do: func() (bool, error) { return true, uninstallStop(ctx, e, units, &out) }})
	}
	// 3. The files rdctl wrote.
	for _, f := range files {
		p.Add(removeStep(f.path, &out.Removed))
	}
	if e.root == "" {
		p.Add(&plan.Func{Verb: "reload", Object: "systemd", Do: func() (bool, error) { return true, uninstallReload(ctx) }})
	}
	// 4. The keys stay, or go after the verified backup.
	if purge {
		p.Add(&plan.Func{Verb: "delete the key pair in", Object: wd,
			Do: func() (bool, error) {
				if stamp == "" {
					return false, nil
				}
				removed, err := rotate.PurgeKeys(wd, sd, stamp)
				out.Removed = append(out.Removed, removed...)
				if err != nil {
					return len(removed) > 0, withHints(err, "the units are gone; the record stays so you can run rdctl uninstall --purge-keys --yes again")
				}
				out.PurgedKeys = true
				return true, nil
			}})
	}
	// 5. The record, last: until here a failed run can be run again.
	p.Add(removeStep(e.recordPath(), &out.Removed))
	rep, err := e.execute(p)
	out.Report = rep
	if err != nil {
		e.printReport(rep)
		return err
	}
	out.Kept = append(out.Kept, leftUnits...)
	keptWD := false
	if out.PurgedKeys {
		out.Kept = append(out.Kept, path.Join(sd, "backups"))
	} else if d, err := safefs.OpenDir(wd); err == nil {
		d.Close()
		out.Kept = append(out.Kept, wd)
		keptWD = true
	}
	out.RecordRemoved = !e.dryRun
	if e.json {
		return writeJSON(e.stdout, out)
	}
	e.printReport(rep)
	switch {
	case e.dryRun && !purge:
		e.printf("would keep %s with the key pair and the database, and the backups in %s/backups\n", wd, sd)
	case e.dryRun:
	case out.PurgedKeys:
		e.printf("deleted the key pair; the backups in %s/backups still hold it and every earlier key\n", sd)
		e.warnf("on SSDs and copy-on-write filesystems the overwrite before unlinking is not a guarantee that the old key bytes are gone")
	case keptWD:
		e.printf("kept %s: the key pair and the database (a reinstall serves the same key); the backups stay in %s/backups\n", wd, sd)
	}
	if e.dryRun {
		return nil
	}
	for _, u := range leftUnits {
		e.printf("left %s in place: rdctl did not write it\n", u)
	}
	switch rec.Origin {
	case adopt.OriginDebian:
		e.hintf("remove the packages with: apt remove rustdesk-server-hbbs rustdesk-server-hbbr (not purge: purge deletes %s)", adopt.DebianWorkingDir)
	case adopt.OriginInstallerScript:
		e.hintf("the installer script's units and binaries stay in /etc/systemd/system and /opt/rustdesk")
	}
	return nil
}

// removeStep removes one file (a symlink itself, never its target) and
// syncs its directory, noting it in removed. A missing file is no change.
func removeStep(p string, removed *[]string) plan.Step {
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
			*removed = append(*removed, p)
			return true, nil
		}}
}

// uninstallFiles lists what uninstall removes under the root: the record's
// unit files that carry rdctl's header, links in *.wants/ to them, and
// rdctl's sysusers entry. units rdctl did not write are returned apart.
func uninstallFiles(e *env, units []string) (files []uninstallFile, left []string) {
	for _, u := range units {
		sys := path.Join(systemd.UnitDir, u)
		if uf, err := adopt.LoadUnit(e.root, u); err == nil && uf.Path == sys && uf.WrittenByRdctl {
			files = append(files, uninstallFile{path: e.under(sys), sys: sys})
		} else if err == nil {
			left = append(left, uf.Path)
		}
		link := path.Join(systemd.WantsDir, u)
		if d, err := safefs.OpenDir(e.under(systemd.WantsDir)); err == nil {
			if target, err := d.Readlink(u); err == nil && (target == sys || strings.HasSuffix(target, "/"+u)) {
				files = append(files, uninstallFile{path: e.under(link), sys: link, link: true})
			}
			d.Close()
		}
	}
	if d, err := safefs.OpenDir(e.under(path.Dir(systemd.SysusersPath))); err == nil {
		data, _, err := d.ReadFile(path.Base(systemd.SysusersPath), 1<<16)
		if err == nil && bytes.HasPrefix(data, []byte("# Written by rdctl")) {
			files = append(files, uninstallFile{path: e.under(systemd.SysusersPath), sys: systemd.SysusersPath})
		}
		d.Close()
	}
	return files, left
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

// uninstallStop stops hbbs then hbbr and disables both; units systemd does
// not know are skipped.
func uninstallStop(ctx context.Context, e *env, units []string, out *uninstallJSON) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return withHints(err, "is this host booted with systemd? use --root DIR for an image tree")
	}
	defer m.Close()
	var known []string
	for _, u := range units {
		st, err := m.State(ctx, u)
		if err != nil {
			return err
		}
		if st.LoadState == "not-found" {
			continue
		}
		known = append(known, u)
		if st.ActiveState != "inactive" {
			if err := m.Stop(ctx, u); err != nil {
				return withHints(err, "nothing was removed yet; see journalctl -u "+u)
			}
			out.Stopped = append(out.Stopped, u)
			e.printf("stopped %s\n", u)
		}
	}
	if len(known) > 0 {
		if err := m.Disable(ctx, known); err != nil {
			return fmt.Errorf("disabling %s: %w", strings.Join(known, ", "), err)
		}
		out.Disabled = append(out.Disabled, known...)
		e.printf("disabled %s\n", strings.Join(known, " and "))
	}
	return nil
}

func uninstallReload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Reload(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// composeDirOf names a compose deployment's project directory for hints.
func composeDirOf(rec *deploy.Record) string {
	if rec.Compose != nil && rec.Compose.Dir != "" {
		return rec.Compose.Dir
	}
	return "its project directory"
}
