package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/compose"
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

On a live host with no such units (or with --backend compose) it asks the
Docker engine for running compose projects that use a rustdesk-server image
or run hbbs/hbbr, and records the one found (--project NAME when several run;
exit 2 otherwise): backend and origin compose, working directory the host
directory mounted over hbbs's working directory, the project's directory,
image, network, name and mount target. A stack whose keys are in the container
layer (no mount covers hbbs's working directory, as with the guides'
./data:/data on the classic image, which works in /root) is reported as an
error and not recorded unless --force.

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
bin_dir, service_user, hbbs_unit, hbbr_unit, hbbr_enforces_key}. For a compose
stack, compose {stack (as compose.Detected), findings[], refused} instead of
install, and recorded.compose {dir, image, network, project, mount_target}.

Examples:
  rdctl adopt
  rdctl adopt --id-host rd.example.com
  rdctl adopt --backend compose --project rustdesk
  rdctl --dry-run --json adopt
  rdctl --root ./old-server adopt --relay rd.example.com`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` clients are configured with"},
			&cli.StringFlag{Name: "relay", Usage: "relay `HOST[:PORT]` to record instead of what hbbs advertises"},
			&cli.StringFlag{Name: "origin", Usage: "adopt this one when several are found: `NAME` debian, installer-script or rdctl"},
			&cli.StringFlag{Name: "backend", Usage: "look only for a `KIND` of install: systemd or compose (default: systemd units, then compose stacks on a live host)"},
			&cli.StringFlag{Name: "project", Usage: "adopt this compose project when several run (implies --backend compose)", Value: ""},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing deployment record; record a compose stack whose keys are not on the host"},
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
	// Compose is set for an adopted compose stack.
	Compose *adoptComposeRecordJSON `json:"compose,omitempty"`
}

type adoptJSON struct {
	Record       string            `json:"record"`
	Written      bool              `json:"written"`
	DryRun       bool              `json:"dry_run"`
	IDHostSource string            `json:"id_host_source"`
	Install      *adopt.Install    `json:"install,omitempty"`
	Compose      *adoptComposeJSON `json:"compose,omitempty"`
	Recorded     *adoptRecordJSON  `json:"recorded"`
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

	backend, project := cmd.String("backend"), cmd.String("project")
	switch backend {
	case "", deploy.BackendSystemd, deploy.BackendCompose:
	default:
		return &deploy.InputError{Field: "--backend", Value: backend, Reason: "not systemd or compose"}
	}
	if project != "" {
		if backend == deploy.BackendSystemd {
			return usageErrorf("--project names a compose project; it cannot be used with --backend systemd")
		}
		backend = deploy.BackendCompose
	}
	if backend == deploy.BackendCompose && origin != "" {
		return usageErrorf("--origin chooses among systemd installs; it cannot be used with --backend compose")
	}
	if backend == deploy.BackendCompose && e.root != "" {
		return usageErrorf("--backend compose asks the live Docker engine; it cannot be used with --root")
	}

	recPath := e.recordPath()
	if _, err := deploy.LoadRecord(recPath); !errors.Is(err, deploy.ErrNoRecord) && !cmd.Bool("force") {
		return withHints(fmt.Errorf("a deployment record already exists at %s", recPath),
			"see what it says: rdctl status", "replace it with: rdctl adopt --force")
	}

	if backend == deploy.BackendCompose {
		_, err := adoptCompose(ctx, e, cmd, idHost, relayFlag, true)
		return err
	}
	found, err := adopt.Detect(e.root)
	if err != nil {
		return err
	}
	// Nothing installed as systemd units on a live host: a compose stack
	// is the other kind of install the guides describe.
	if len(found) == 0 && e.root == "" && backend == "" && origin == "" {
		if done, err := adoptCompose(ctx, e, cmd, idHost, relayFlag, false); done || err != nil {
			return err
		}
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
		looked := "rustdesk-hbbs.service, rustdesksignal.service and hbbs.service"
		if e.root == "" && backend == "" && origin == "" {
			looked += ", and compose projects running a rustdesk image"
		}
		return withHints(fmt.Errorf("found no hbbs/hbbr install in %s (looked for %s)", where, looked),
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

	idHost, source, err := adoptIDHost(ctx, e, idHost, firstNonEmpty(relayFlag, in.Relay))
	if err != nil {
		return err
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
		if err := writeAdoptedRecord(e, rec); err != nil {
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

// adoptIDHost picks the ID server clients are given: --id-host, else the
// relay's host, else this host's name (not "localhost"). source says which.
func adoptIDHost(ctx context.Context, e *env, idHost deploy.HostPort, relay string) (deploy.HostPort, string, error) {
	source := "--id-host"
	if idHost.Host == "" {
		switch {
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
		return idHost, "", withHints(usageErrorf("cannot tell which host clients should use: hbbs advertises no relay and this host's name is unusable"),
			"name it: rdctl adopt --id-host HOST (or --relay HOST)")
	}
	return idHost, source, nil
}

// writeAdoptedRecord writes rec to the record path (0644, its directory
// made 0755 if missing) under rdctl's lock.
func writeAdoptedRecord(e *env, rec *deploy.Record) error {
	unlock, err := e.lock()
	if err != nil {
		return err
	}
	defer unlock()
	data, err := rec.Encode()
	if err != nil {
		return err
	}
	recPath := e.recordPath()
	d, err := safefs.MkdirAll(filepath.Dir(recPath), 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.WriteFile(filepath.Base(recPath), data, safefs.FileOptions{Mode: 0o644, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
	return err
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

// originCompose is the record's origin for an adopted compose stack.
const originCompose = "compose"

// adoptComposeJSON is the compose part of adopt's JSON: the stack as the
// engine shows it, what is unsafe about it, and whether adopt refused it.
type adoptComposeJSON struct {
	Stack    *compose.Detected `json:"stack"`
	Findings []adopt.Finding   `json:"findings"`
	// Refused is true when a finding with severity error stopped the
	// record from being written (--force records it anyway).
	Refused bool `json:"refused"`
}

type adoptComposeRecordJSON struct {
	Dir         string `json:"dir"`
	Image       string `json:"image"`
	Network     string `json:"network"`
	Project     string `json:"project"`
	MountTarget string `json:"mount_target"`
}

// adoptCompose looks for running compose projects that use a RustDesk
// image and records the one found (the --project one when several run).
// With explicit unset (the fallback after finding no systemd units) an
// unreachable engine or no stack is not an error: it returns false and
// the caller reports that nothing was found.
func adoptCompose(ctx context.Context, e *env, cmd *cli.Command, idHost deploy.HostPort, relayFlag string, explicit bool) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eng, err := compose.Connect(cctx)
	if err != nil {
		if !explicit && errors.Is(err, compose.ErrNoEngine) {
			return false, nil
		}
		return true, withHints(err, "is Docker running? systemctl status docker")
	}
	defer eng.Close()
	stacks, err := eng.Detect(cctx)
	if err != nil {
		return true, err
	}
	project := cmd.String("project")
	if project != "" {
		var keep []compose.Detected
		for _, d := range stacks {
			if d.Project == project {
				keep = append(keep, d)
			}
		}
		stacks = keep
	}
	switch {
	case len(stacks) == 0 && !explicit:
		return false, nil
	case len(stacks) == 0 && project != "":
		return true, withHints(fmt.Errorf("no running compose project %q uses a rustdesk image or runs hbbs/hbbr", project),
			"list the projects: docker compose ls")
	case len(stacks) == 0:
		return true, withHints(errors.New("found no running compose project that uses a rustdesk image or runs hbbs/hbbr"),
			"start it first: docker compose up -d", "install one: rdctl install compose --relay HOST")
	case len(stacks) > 1:
		var names []string
		for _, d := range stacks {
			names = append(names, fmt.Sprintf("%s (%s)", d.Project, orNone(d.ProjectDir)))
		}
		return true, withHints(usageErrorf("found %d compose projects running RustDesk: %s", len(stacks), strings.Join(names, ", ")),
			"choose one: rdctl adopt --project "+stacks[0].Project)
	}
	d := &stacks[0]

	findings := composeFindings(d)
	refused := false
	for _, f := range findings {
		refused = refused || f.Severity == adopt.SeverityError
	}
	rec, err := composeAdoptRecord(d, relayFlag)
	if err != nil {
		return true, err
	}
	hp, source, err := adoptIDHost(ctx, e, idHost, rec.Relay)
	if err != nil {
		return true, err
	}
	rec.IDHost = hp.String()
	if err := rec.Validate(); err != nil {
		return true, fmt.Errorf("cannot record compose project %s: %w", d.Project, err)
	}
	out := adoptJSON{Record: e.recordPath(), DryRun: e.dryRun, IDHostSource: source,
		Compose: &adoptComposeJSON{Stack: d, Findings: findings, Refused: refused && !cmd.Bool("force")},
		Recorded: &adoptRecordJSON{Backend: rec.Backend, Origin: rec.Origin, IDHost: rec.IDHost, Relay: rec.Relay, WorkingDir: rec.WorkingDir,
			HBBREnforcesKey: rec.HBBREnforcesKey, Compose: &adoptComposeRecordJSON{Dir: rec.Compose.Dir, Image: rec.Compose.Image,
				Network: rec.Compose.Network, Project: rec.Compose.Project, MountTarget: rec.Compose.MountTarget}}}
	if !out.Compose.Refused && !e.dryRun {
		if err := writeAdoptedRecord(e, rec); err != nil {
			return true, err
		}
		out.Written = true
	}
	if e.json {
		if err := writeJSON(e.stdout, out); err != nil {
			return true, err
		}
	} else {
		printAdoptCompose(e, &out)
	}
	if out.Compose.Refused {
		mt := compose.MountTargetFor(d.Image)
		err := fmt.Errorf("not recording compose project %s: its keys are not on the host, so a recreated container serves a new key", d.Project)
		return true, withHints(err,
			fmt.Sprintf("mount the data directory at %s (e.g. ./data:%s) in %s, copy the keys out of the running container first (docker compose cp hbbs:%s/id_ed25519 ./data/), then recreate it and run rdctl adopt",
				mt, mt, orNone(strings.Join(d.ConfigFiles, ", ")), d.WorkingDir),
			"record it as it is: rdctl adopt --force")
	}
	return true, nil
}

// composeFindings turns the stack's warnings into findings: keys in the
// container layer (no mount covers hbbs's working directory) is an error,
// the rest are warnings; hbbr without -k is a warning, as for units.
func composeFindings(d *compose.Detected) []adopt.Finding {
	out := []adopt.Finding{}
	for i, w := range d.Warnings {
		f := adopt.Finding{ID: "compose-stack", Severity: adopt.SeverityWarning, Message: w}
		switch {
		case i == 0 && d.DataDir == "":
			// compose's warnings list the container-layer one first.
			f.ID, f.Severity = "keys-in-container-layer", adopt.SeverityError
		case strings.Contains(w, "after a rotation they disagree"):
			f.ID = "split-working-dirs"
		case d.DataDir != "" && !d.KeysPresent && strings.HasPrefix(w, "no "):
			f.ID = "no-secret-key"
		}
		out = append(out, f)
	}
	hasHBBR := false
	for _, s := range d.Services {
		hasHBBR = hasHBBR || s.Service == compose.ServiceHBBR || (len(s.Command) > 0 && path.Base(s.Command[0]) == "hbbr")
	}
	if hasHBBR && d.HBBRKey == "" {
		out = append(out, adopt.Finding{ID: "hbbr-enforces-key", Severity: adopt.SeverityWarning,
			Message: "hbbr checks no key (no -k): anyone can relay through it; rdctl install compose runs it with -k _"})
	}
	return out
}

// composeAdoptRecord is the deployment record of a detected stack. Its
// working directory is the host directory mounted over hbbs's working
// directory; when there is none (keys in the container layer, recorded
// only with --force) it is the source of hbbs's first mount, the directory
// the stack meant to keep its data in. IDHost is left for the caller.
func composeAdoptRecord(d *compose.Detected, relayFlag string) (*deploy.Record, error) {
	wd, target := d.DataDir, d.MountTarget
	if wd == "" {
		for _, s := range d.Services {
			if len(s.Mounts) > 0 && (s.Service == compose.ServiceHBBS || target == "") {
				wd, target = s.Mounts[0].Source, s.Mounts[0].Destination
			}
		}
	}
	if wd == "" {
		return nil, fmt.Errorf("compose project %s mounts no host directory: its keys live only in the container layer; rdctl has nothing to record", d.Project)
	}
	if d.ProjectDir == "" {
		return nil, fmt.Errorf("compose project %s has no %s label: its directory is unknown", d.Project, compose.LabelWorkingDir)
	}
	// rdctl's record knows host and bridge networking; a project network
	// ("<project>_default") is a bridge network.
	network := compose.NetworkBridge
	if d.Network == compose.NetworkHost {
		network = compose.NetworkHost
	}
	return &deploy.Record{
		Format: 1, Backend: deploy.BackendCompose, Origin: originCompose,
		Relay: firstNonEmpty(relayFlag, d.Relay), WorkingDir: wd, HBBREnforcesKey: d.HBBRKey != "",
		Compose: &deploy.ComposeRecord{Dir: d.ProjectDir, Image: d.Image, Network: network, Project: d.Project, MountTarget: target},
	}, nil
}

func printAdoptCompose(e *env, out *adoptJSON) {
	c, rec := out.Compose, out.Recorded
	d := c.Stack
	e.printf("found compose project %s in %s (%s, %s network)\n", d.Project, orNone(d.ProjectDir), d.Image, d.Network)
	for _, s := range d.Services {
		e.printf("  %s\t%s, restarts %d\n", s.Service, s.State, s.Restarts)
	}
	switch {
	case d.DataDir != "":
		e.printf("data:        %s mounted at %s (hbbs works in %s)\n", d.DataDir, d.MountTarget, d.WorkingDir)
	default:
		e.printf("data:        hbbs works in %s, which no mount covers\n", d.WorkingDir)
	}
	e.printf("relay:       %s\nID server:   %s", orNone(rec.Relay), rec.IDHost)
	if out.IDHostSource != "" {
		e.printf(" (from %s)", out.IDHostSource)
	}
	e.printf("\n")
	for _, f := range c.Findings {
		label := map[adopt.Severity]string{adopt.SeverityError: "UNSAFE", adopt.SeverityWarning: "unsafe", adopt.SeverityInfo: "note"}[f.Severity]
		e.printf("%s: %s\n", label, f.Message)
	}
	switch {
	case out.Written:
		e.printf("recorded it in %s\n", out.Record)
	case c.Refused:
	default:
		e.printf("dry run: would record it in %s\n", out.Record)
	}
}
