package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/safefs"
)

func adoptCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "adopt",
		Usage: "record an existing hbbs/hbbr install so rdctl can operate it",
		Description: `Looks for a server rdctl did not install, from its unit files (searched in
/etc, /run, /usr/local/lib, /usr/lib and /lib systemd/system, drop-ins applied;
under --root in the image tree):
  debian            rustdesk-hbbs.service and rustdesk-hbbr.service from the
                    rustdesk-server-hbbs/-hbbr packages, in /var/lib/rustdesk-server
  installer-script  rustdesksignal.service and rustdeskrelay.service, in /opt/rustdesk
  rdctl             rdctl's own hbbs.service and hbbr.service (a lost record)
and writes the deployment record (backend systemd, its working directory,
units, service user, relay), so rotate, export, check, status and doctor work
on it. Nothing else is changed.

The relay is hbbs's -r, else relay-servers= in its environment or the working
directory's .env; --relay overrides it. The ID server clients are given is
--id-host, else the relay's host, else this host's name (hostname -f; the
image's /etc/hostname with --root).

It reports what is unsafe: hbbs or hbbr running as root, a secret key readable
by others, hbbr not enforcing the key (no -k, no KEY), a secret key passed on
the command line or in a unit file, keys where 'apt purge' deletes them
(/var/lib/rustdesk-server). Those are reported, not changed: rdctl doctor shows
them again and repairs modes and owners.

Refuses when a record exists, unless --force. Takes the lock; --dry-run reports
and writes nothing.

JSON (--json): record, written, dry_run, id_host_source, install {origin,
hbbs and hbbr {unit {name, path, drop_ins, masked, written_by_rdctl}, program,
user, working_dir, key, key_source}, relay, relay_source, bind, tailnet_only,
secret_present, secret_mode, public_key, fingerprint, findings[] {id,
severity, message}}, recorded {backend, origin, id_host, relay, working_dir,
bin_dir, service_user, hbbs_unit, hbbr_unit, hbbr_enforces_key}.

Examples:
  rdctl adopt
  rdctl adopt --id-host rd.example.com
  rdctl --dry-run --json adopt
  rdctl --root ./old-server adopt --relay rd.example.com`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` clients are configured with"},
			&cli.StringFlag{Name: "relay", Usage: "relay `HOST[:PORT]` to record instead of what hbbs advertises"},
			&cli.StringFlag{Name: "origin", Usage: "adopt this one when several are found: `NAME` debian, installer-script or rdctl"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing deployment record"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runAdopt(ctx, e, cmd) },
	}
}

type adoptRecordJSON struct {
	Backend         string `json:"backend"`
	Origin          string `json:"origin"`
	IDHost          string `json:"id_host"`
	Relay           string `json:"relay"`
	WorkingDir      string `json:"working_dir"`
	BinDir          string `json:"bin_dir"`
	ServiceUser     string `json:"service_user"`
	HBBSUnit        string `json:"hbbs_unit"`
	HBBRUnit        string `json:"hbbr_unit"`
	HBBREnforcesKey bool   `json:"hbbr_enforces_key"`
}

type adoptJSON struct {
	Record       string           `json:"record"`
	Written      bool             `json:"written"`
	DryRun       bool             `json:"dry_run"`
	IDHostSource string           `json:"id_host_source"`
	Install      *adopt.Install   `json:"install"`
	Recorded     *adoptRecordJSON `json:"recorded"`
}

func runAdopt(ctx context.Context, e *env, cmd *cli.Command) error {
	// Validate the flags before looking at anything.
	var idHost deploy.HostPort
	if s := cmd.String("id-host"); s != "" {
		hp, err := deploy.ParseHostPort("--id-host", s)
		if err != nil {
			return err
		}
		idHost = hp
	}
	relayFlag := cmd.String("relay")
	if relayFlag != "" {
		if _, err := deploy.ParseHostPort("--relay", relayFlag); err != nil {
			return err
		}
	}
	origin := cmd.String("origin")
	if origin != "" && origin != adopt.OriginDebian && origin != adopt.OriginInstallerScript && origin != adopt.OriginRdctl {
		return &deploy.InputError{Field: "--origin", Value: origin, Reason: "not debian, installer-script or rdctl"}
	}

	recPath := e.recordPath()
	if _, err := deploy.LoadRecord(recPath); !errors.Is(err, deploy.ErrNoRecord) && !cmd.Bool("force") {
		return withHints(fmt.Errorf("a deployment record already exists at %s", recPath),
			"see what it says: rdctl status", "replace it with: rdctl adopt --force")
	}

	found, err := adopt.Detect(e.root)
	if err != nil {
		return err
	}
	if origin != "" {
		var keep []*adopt.Install
		for _, in := range found {
			if in.Origin == origin || (origin == adopt.OriginRdctl && in.Origin == adopt.OriginCustom) {
				keep = append(keep, in)
			}
		}
		found = keep
	}
	switch {
	case len(found) == 0:
		where := "this host"
		if e.root != "" {
			where = e.root
		}
		return withHints(fmt.Errorf("found no hbbs/hbbr install in %s (looked for rustdesk-hbbs.service, rustdesksignal.service and hbbs.service)", where),
			"install one: rdctl install systemd --relay HOST")
	case len(found) > 1:
		var names []string
		for _, in := range found {
			names = append(names, fmt.Sprintf("%s (%s)", in.Origin, in.HBBS.Unit.Path))
		}
		return withHints(usageErrorf("found %d installs: %s", len(found), strings.Join(names, ", ")),
			"choose one: rdctl adopt --origin "+found[0].Origin)
	}
	in := found[0]

	source := "--id-host"
	if idHost.Host == "" {
		switch relay := firstNonEmpty(relayFlag, in.Relay); {
		case relay != "":
			hp, _ := deploy.ParseHostPort("relay", relay)
			idHost, source = deploy.HostPort{Host: hp.Host}, "relay"
		default:
			name, src := adoptHostname(ctx, e)
			if hp, err := deploy.ParseHostPort("hostname", name); err == nil && name != "localhost" {
				idHost, source = hp, src
			}
		}
	}
	if idHost.Host == "" {
		return withHints(usageErrorf("cannot tell which host clients should use: hbbs advertises no relay and this host's name is unusable"),
			"name it: rdctl adopt --id-host HOST (or --relay HOST)")
	}
	rec, err := in.Record(adopt.RecordOptions{IDHost: idHost.String(), Relay: relayFlag})
	if err != nil {
		return err
	}
	out := adoptJSON{Record: recPath, DryRun: e.dryRun, IDHostSource: source, Install: in, Recorded: &adoptRecordJSON{
		Backend: rec.Backend, Origin: rec.Origin, IDHost: rec.IDHost, Relay: rec.Relay, WorkingDir: rec.WorkingDir, BinDir: rec.BinDir,
		ServiceUser: rec.ServiceUser, HBBSUnit: rec.HBBSUnit, HBBRUnit: rec.HBBRUnit, HBBREnforcesKey: rec.HBBREnforcesKey}}
	if in.Findings == nil {
		in.Findings = []adopt.Finding{}
	}

	if !e.dryRun {
		unlock, err := e.lock()
		if err != nil {
			return err
		}
		defer unlock()
		data, err := rec.Encode()
		if err != nil {
			return err
		}
		d, err := safefs.MkdirAll(filepath.Dir(recPath), 0o755)
		if err != nil {
			return err
		}
		_, err = d.WriteFile(filepath.Base(recPath), data, safefs.FileOptions{Mode: 0o644, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
		d.Close()
		if err != nil {
			return err
		}
		out.Written = true
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	printAdopt(e, &out, rec)
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// adoptHostname is this host's name: `hostname -f` live, the image's
// /etc/hostname under --root (nothing live is asked then).
func adoptHostname(ctx context.Context, e *env) (name, source string) {
	if e.root != "" {
		data, err := os.ReadFile(e.under("/etc/hostname"))
		if err != nil {
			return "", ""
		}
		return strings.TrimSpace(string(data)), "/etc/hostname"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "hostname", "-f").Output(); err == nil {
		return strings.TrimSpace(string(out)), "hostname -f"
	}
	n, _ := os.Hostname()
	return n, "hostname"
}

func printAdopt(e *env, out *adoptJSON, rec *deploy.Record) {
	in := out.Install
	e.printf("found %s: %s and %s\n", in.Origin, in.HBBS.Unit.Path, in.HBBR.Unit.Path)
	e.printf("working dir: %s (hbbs runs as %s, hbbr as %s)\n", rec.WorkingDir, in.HBBS.User, in.HBBR.User)
	if in.PublicKey != "" {
		e.printf("public key:  %s\nfingerprint: %s\n", in.PublicKey, in.Fingerprint)
	}
	relay := rec.Relay
	if relay == "" {
		relay = "none"
	} else if in.RelaySource != "" && rec.Relay == in.Relay {
		relay += " (from " + in.RelaySource + ")"
	}
	e.printf("relay:       %s\nID server:   %s (from %s)\n", relay, rec.IDHost, out.IDHostSource)
	for _, f := range in.Findings {
		label := map[adopt.Severity]string{adopt.SeverityError: "UNSAFE", adopt.SeverityWarning: "unsafe", adopt.SeverityInfo: "note"}[f.Severity]
		e.printf("%s: %s\n", label, f.Message)
	}
	switch {
	case out.Written:
		e.printf("recorded it in %s\n", out.Record)
	default:
		e.printf("dry run: would record it in %s\n", out.Record)
	}
	if in.Problems() > 0 {
		e.hintf("see them again and repair modes and owners: rdctl doctor, rdctl doctor --fix")
	}
}
