package main

import (
	"context"
	"errors"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/firewall"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/systemd"
)

func uninstallCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "uninstall",
		Usage:       "stop and remove the units; keep the keys and database",
		Description: helpText("uninstall"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "purge-keys", Usage: "also delete the live key files (needs --yes; backups stay)"},
			&cli.BoolFlag{Name: "purge", Usage: "also remove the binaries, service user and firewall rules rdctl added (keys stay)"},
			&cli.BoolFlag{Name: "yes", Usage: "confirm --purge-keys"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runUninstall(ctx, e, cmd) },
	}
}

type uninstallJSON struct {
	plan.Report
	Root          string            `json:"root"`
	Backup        string            `json:"backup,omitempty"`
	Stopped       []string          `json:"stopped"`
	Disabled      []string          `json:"disabled"`
	Removed       []string          `json:"removed"`
	Kept          []string          `json:"kept"`
	PurgedKeys    bool              `json:"purged_keys"`
	DeletedUser   string            `json:"deleted_user,omitempty"`
	Firewall      []firewall.Result `json:"firewall,omitempty"`
	RecordRemoved bool              `json:"record_removed"`
}

func runUninstall(ctx context.Context, e *env, cmd *cli.Command) error {
	purge, yes := cmd.Bool("purge-keys"), cmd.Bool("yes")
	if purge != yes {
		return usageErrorf("--purge-keys deletes the server's secret key and needs both flags: --purge-keys --yes")
	}
	rec, err := e.loadRecord()
	if errors.Is(err, deploy.ErrNoRecord) {
		if e.json {
			return writeJSON(e.stdout, uninstallJSON{Report: plan.NewReport(nil, e.dryRun), Root: e.root,
				Stopped: []string{}, Disabled: []string{}, Removed: []string{}, Kept: []string{}})
		}
		e.printf("unchanged: nothing to uninstall (no deployment record at %s)\n", e.recordPath())
		return nil
	}
	if err != nil {
		return err
	}
	opts := systemd.UninstallOptions{Root: e.root, Record: rec, RecordPath: e.recordPath(),
		Purge: purge, BackupOwner: e.backupOwner(), StateDir: e.stateDir(rec), Live: e.root == "", LookupUnit: adopt.LookupUnit,
		PurgeInstall: cmd.Bool("purge")}
	if opts.PurgeInstall && opts.Live {
		opts.Firewall = firewall.ExecRunner{}
	}
	steps, res, err := systemd.UninstallPlan(ctx, opts)
	var notSystemd *systemd.NotSystemdError
	if errors.As(err, &notSystemd) {
		return withHints(err, "stop it with docker compose down in "+composeDirOf(rec)+"; the data directory holds the keys")
	}
	if err != nil {
		return err
	}
	if err := e.requireRoot(); err != nil {
		return err
	}
	p := e.newPlan(ctx, rec)
	p.Add(steps...)
	rep, err := e.execute(p)
	printUninstallProgress(e, res)
	if err != nil {
		e.printReport(rep)
		return uninstallHints(err)
	}
	res.Finish()
	out := uninstallJSON{Report: rep, Root: e.root, Backup: res.Backup, Stopped: res.Stopped, Disabled: res.Disabled,
		Removed: res.Removed, Kept: res.Kept, PurgedKeys: res.PurgedKeys, RecordRemoved: !e.dryRun,
		DeletedUser: res.DeletedUser, Firewall: res.Firewall}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	e.printReport(rep)
	wd, sd := res.WorkingDir, res.StateDir
	switch {
	case e.dryRun && !purge:
		e.printf("would keep %s with the key pair and the database, and the backups in %s/backups\n", wd, sd)
	case e.dryRun:
	case res.PurgedKeys:
		e.printf("deleted the key pair; the backups in %s/backups still hold it and every earlier key\n", sd)
		e.warnf("on SSDs and copy-on-write filesystems the overwrite before unlinking is not a guarantee that the old key bytes are gone")
	case res.KeptWorkingDir:
		e.printf("kept %s: the key pair and the database (a reinstall serves the same key); the backups stay in %s/backups\n", wd, sd)
	}
	if e.dryRun {
		return nil
	}
	if res.DeletedUser != "" {
		e.printf("deleted the system user %s\n", res.DeletedUser)
	}
	for _, r := range res.Firewall {
		e.printf("ran %s\n", r.Command)
	}
	for _, u := range res.LeftUnits {
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

// printUninstallProgress says what the steps did to the live units and
// warns of what they left alone, before the report: the units are
// stopped before the files go.
func printUninstallProgress(e *env, res *systemd.UninstallResult) {
	for _, n := range res.Notes {
		switch n.Kind {
		case systemd.NoteNoWorkingDir:
			e.warnf("the working directory %s does not exist: no key to back up", n.Dir)
		case systemd.NoteKeyNotBackedUp:
			e.warnf("%v; the key files stay as they are", n.Err)
		case systemd.NoteBinaryChanged:
			e.warnf("%s is not the binary rdctl installed (its sha256 differs): left in place", n.Path)
		case systemd.NoteExporterKept:
			// After this run the record is gone, so a later uninstall
			// cannot remove it: say how, by hand.
			e.hintf("%s stays, since it may watch other servers (uninstall --purge removes it too); to remove it now: systemctl disable --now %s && rm %s %s",
				n.Path, systemd.ExporterUnitName, n.Path, e.under(systemd.ExporterScrapeConfigPath))
		case systemd.NoteFirewallPortRulesKept:
			portRulesHint(e, "rdctl's ports", n.PortRules)
		case systemd.NoteUserNotOurs:
			e.warnf("the user %s stays: rdctl did not make it (%v)", n.User, n.Err)
		}
	}
	if e.json {
		return
	}
	for _, u := range res.Stopped {
		e.printf("stopped %s\n", u)
	}
	if len(res.Disabled) > 0 {
		e.printf("disabled %s\n", strings.Join(res.Disabled, " and "))
	}
}

// uninstallHints says in what state a failed uninstall left the host.
func uninstallHints(err error) error {
	var ue *systemd.UninstallError
	switch {
	case errors.Is(err, systemd.ErrNoSystemd):
		return withHints(err, "is this host booted with systemd? use --root DIR for an image tree")
	case !errors.As(err, &ue):
		return err
	case ue.Stage == systemd.StageBackup:
		return withHints(err, "nothing was changed")
	case ue.Stage == systemd.StageStop:
		return withHints(err, "nothing was removed yet; see journalctl -u "+ue.Unit)
	case ue.Stage == systemd.StagePurge:
		return withHints(err, "the units are gone; the record stays so you can run rdctl uninstall --purge-keys --yes again")
	}
	return err
}

// composeDirOf names a compose deployment's project directory for hints.
func composeDirOf(rec *deploy.Record) string {
	if rec.Compose != nil && rec.Compose.Dir != "" {
		return rec.Compose.Dir
	}
	return "its project directory"
}
