package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
)

func adoptCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "adopt",
		Usage:       "record an existing hbbs/hbbr install so rdctl can operate it",
		Description: helpText("adopt"),
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

// adoptInput is adopt's validated flags.
type adoptInput struct {
	idHost                 deploy.HostPort
	relay, origin, project string
	backend                string // "" (systemd units, then compose stacks), systemd or compose
	force                  bool
}

func adoptFlags(e *env, cmd *cli.Command) (adoptInput, error) {
	in := adoptInput{relay: cmd.String("relay"), origin: cmd.String("origin"), backend: cmd.String("backend"),
		project: cmd.String("project"), force: cmd.Bool("force")}
	if s := cmd.String("id-host"); s != "" {
		hp, err := deploy.ParseHostPort("--id-host", s)
		if err != nil {
			return in, err
		}
		in.idHost = hp
	}
	if in.relay != "" {
		if _, err := deploy.ParseHostPort("--relay", in.relay); err != nil {
			return in, err
		}
	}
	switch in.origin {
	case "", adopt.OriginDebian, adopt.OriginInstallerScript, adopt.OriginRdctl:
	default:
		return in, &deploy.InputError{Field: "--origin", Value: in.origin, Reason: "not debian, installer-script or rdctl"}
	}
	switch in.backend {
	case "", deploy.BackendSystemd, deploy.BackendCompose:
	default:
		return in, &deploy.InputError{Field: "--backend", Value: in.backend, Reason: "not systemd or compose"}
	}
	if in.project != "" {
		if in.backend == deploy.BackendSystemd {
			return in, usageErrorf("--project names a compose project; it cannot be used with --backend systemd")
		}
		in.backend = deploy.BackendCompose
	}
	if in.backend == deploy.BackendCompose && in.origin != "" {
		return in, usageErrorf("--origin chooses among systemd installs; it cannot be used with --backend compose")
	}
	if in.backend == deploy.BackendCompose && e.root != "" {
		return in, usageErrorf("--backend compose asks the live Docker engine; it cannot be used with --root")
	}
	return in, nil
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

type adoptComposeRecordJSON struct {
	Dir         string `json:"dir"`
	Image       string `json:"image"`
	Network     string `json:"network"`
	Project     string `json:"project"`
	MountTarget string `json:"mount_target"`
}

// adoptJSON is adopt's output: the plan's report (dry_run, changed, steps:
// the record's write) and what was found and recorded.
type adoptJSON struct {
	plan.Report
	Record       string            `json:"record"`
	Written      bool              `json:"written"`
	IDHostSource string            `json:"id_host_source"`
	Install      *adopt.Install    `json:"install,omitempty"`
	Compose      *adoptComposeJSON `json:"compose,omitempty"`
	Recorded     *adoptRecordJSON  `json:"recorded"`
}

// adoptComposeJSON is the compose part of adopt's JSON: the stack as the
// engine shows it, what is unsafe about it, and whether adopt refused it.
type adoptComposeJSON struct {
	Stack    *compose.Detected `json:"stack"`
	Findings []adopt.Finding   `json:"findings"`
	// Refused is true when a finding with severity error stopped the
	// record from being written (--force records it anyway).
	Refused bool `json:"refused"`
}

func newAdoptJSON(e *env, rec *deploy.Record, source string) adoptJSON {
	out := adoptJSON{Report: plan.NewReport(nil, e.dryRun), Record: e.recordPath(), IDHostSource: source, Recorded: &adoptRecordJSON{
		Backend: rec.Backend, Origin: rec.Origin, IDHost: rec.IDHost, Relay: rec.Relay, WorkingDir: rec.WorkingDir, BinDir: rec.BinDir,
		ServiceUser: rec.ServiceUser, HBBSUnit: rec.HBBSUnit, HBBRUnit: rec.HBBRUnit, HBBREnforcesKey: rec.HBBREnforcesKey}}
	if c := rec.Compose; c != nil {
		out.Recorded.Compose = &adoptComposeRecordJSON{Dir: c.Dir, Image: c.Image, Network: c.Network, Project: c.Project, MountTarget: c.MountTarget}
	}
	return out
}

func runAdopt(ctx context.Context, e *env, cmd *cli.Command) error {
	in, err := adoptFlags(e, cmd)
	if err != nil {
		return err
	}
	recPath := e.recordPath()
	if _, err := deploy.LoadRecord(recPath); !errors.Is(err, deploy.ErrNoRecord) && !in.force {
		return withHints(fmt.Errorf("a deployment record already exists at %s", recPath),
			"see what it says: rdctl status", "replace it with: rdctl adopt --force")
	}
	if in.backend == deploy.BackendCompose {
		_, err := adoptCompose(ctx, e, in, true)
		return err
	}
	inst, err := adopt.Find(e.root, in.origin)
	// Nothing installed as systemd units on a live host: a compose stack
	// is the other kind of install the guides describe.
	fallback := e.root == "" && in.backend == "" && in.origin == ""
	if errors.Is(err, adopt.ErrNoInstall) && fallback {
		if done, err := adoptCompose(ctx, e, in, false); done || err != nil {
			return err
		}
	}
	var several *adopt.SeveralInstallsError
	switch {
	case errors.Is(err, adopt.ErrNoInstall):
		where, looked := "this host", "rustdesk-hbbs.service, rustdesksignal.service and hbbs.service"
		if e.root != "" {
			where = e.root
		}
		if fallback {
			looked += ", and compose projects running a rustdesk image"
		}
		return withHints(fmt.Errorf("%w in %s (looked for %s)", err, where, looked), "install one: rdctl install systemd --relay HOST")
	case errors.As(err, &several):
		return withHints(&usageError{msg: err.Error()}, "choose one: rdctl adopt --origin "+several.Installs[0].Origin)
	case err != nil:
		return err
	}
	idHost, source, err := e.adoptIDHost(ctx, in.idHost, firstNonEmpty(in.relay, inst.Relay))
	if err != nil {
		return err
	}
	rec, err := inst.Record(adopt.RecordOptions{IDHost: idHost.String(), Relay: in.relay})
	if err != nil {
		return err
	}
	out := newAdoptJSON(e, rec, source)
	out.Install = inst
	if inst.Findings == nil {
		inst.Findings = []adopt.Finding{}
	}
	if err := e.recordAdopted(ctx, &out, rec); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	printAdopt(e, &out, rec)
	return nil
}

// adoptIDHost is adopt.IDHost with this host's name asked only when
// needed; no usable name is a usage error (--id-host names it).
func (e *env) adoptIDHost(ctx context.Context, given deploy.HostPort, relay string) (deploy.HostPort, string, error) {
	hp, source, err := adopt.IDHost(given, relay, func() (string, string) { return adopt.Hostname(ctx, e.root) })
	if errors.Is(err, adopt.ErrNoIDHost) {
		return hp, source, withHints(&usageError{msg: err.Error()}, "name it: rdctl adopt --id-host HOST (or --relay HOST)")
	}
	return hp, source, err
}

// recordAdopted runs adopt's plan, the record's write (a dry run only
// says it would), and puts its report in out.
func (e *env) recordAdopted(ctx context.Context, out *adoptJSON, rec *deploy.Record) error {
	step, err := deploy.RecordStep(out.Record, rec)
	if err != nil {
		return err
	}
	// No recovery step: adopt changes nothing but the record, and no
	// record named the working directory before.
	p := e.newPlan(ctx, nil)
	p.Add(step)
	out.Report, err = e.execute(p)
	out.Written = err == nil && !out.DryRun
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

// printFindings prints findings as adopt reports them: errors UNSAFE,
// warnings unsafe, the rest notes.
func printFindings(e *env, fs []adopt.Finding) {
	for _, f := range fs {
		label := map[adopt.Severity]string{adopt.SeverityError: "UNSAFE", adopt.SeverityWarning: "unsafe", adopt.SeverityInfo: "note"}[f.Severity]
		e.printf("%s: %s\n", label, f.Message)
	}
}

// printRecorded says what became of the record: written, or in a dry run
// that it would be.
func printRecorded(e *env, out *adoptJSON) {
	switch {
	case out.Written:
		e.printf("recorded it in %s\n", out.Record)
	case out.DryRun && len(out.Steps) > 0: // a refused stack has no plan
		e.printf("dry run: would record it in %s\n", out.Record)
	}
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
	printFindings(e, in.Findings)
	printRecorded(e, out)
	if in.Problems() > 0 {
		e.hintf("see them again and repair modes and owners: rdctl doctor, rdctl doctor --fix")
	}
}

// adoptCompose looks for running compose projects that use a RustDesk
// image and records the one found (the --project one when several run).
// With explicit unset (the fallback after finding no systemd units) an
// unreachable engine or no stack is not an error: it returns false and
// the caller reports that nothing was found.
func adoptCompose(ctx context.Context, e *env, in adoptInput, explicit bool) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := compose.FindStack(cctx, in.project)
	var several *compose.SeveralStacksError
	switch {
	case !explicit && (errors.Is(err, compose.ErrNoEngine) || errors.Is(err, compose.ErrNoStack)):
		return false, nil
	case errors.Is(err, compose.ErrNoEngine):
		return true, withHints(err, "is Docker running? systemctl status docker")
	case errors.Is(err, compose.ErrNoStack) && in.project != "":
		return true, withHints(fmt.Errorf("no running compose project %q uses a rustdesk image or runs hbbs/hbbr", in.project),
			"list the projects: docker compose ls")
	case errors.Is(err, compose.ErrNoStack):
		return true, withHints(err, "start it first: docker compose up -d", "install one: rdctl install compose --relay HOST")
	case errors.As(err, &several):
		return true, withHints(&usageError{msg: err.Error()}, "choose one: rdctl adopt --project "+several.Stacks[0].Project)
	case err != nil:
		return true, err
	}
	return true, recordCompose(ctx, e, in, d)
}

// recordCompose records the stack d unless its findings refuse it.
func recordCompose(ctx context.Context, e *env, in adoptInput, d *compose.Detected) error {
	findings := d.Findings()
	rec, err := d.Record(in.relay)
	if err != nil {
		return err
	}
	hp, source, err := e.adoptIDHost(ctx, in.idHost, rec.Relay)
	if err != nil {
		return err
	}
	rec.IDHost = hp.String()
	if err := rec.Validate(); err != nil {
		return fmt.Errorf("cannot record compose project %s: %w", d.Project, err)
	}
	out := newAdoptJSON(e, rec, source)
	out.Compose = &adoptComposeJSON{Stack: d, Findings: findings, Refused: adopt.HasError(findings) && !in.force}
	if !out.Compose.Refused {
		if err := e.recordAdopted(ctx, &out, rec); err != nil {
			return err
		}
	}
	if e.json {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printAdoptCompose(e, &out)
	}
	if out.Compose.Refused {
		mt := compose.MountTargetFor(d.Image)
		err := fmt.Errorf("not recording compose project %s: its keys are not on the host, so a recreated container serves a new key", d.Project)
		return withHints(err,
			fmt.Sprintf("mount the data directory at %s (e.g. ./data:%s) in %s, copy the keys out of the running container first (docker compose cp hbbs:%s/id_ed25519 ./data/), then recreate it and run rdctl adopt",
				mt, mt, orNone(strings.Join(d.ConfigFiles, ", ")), d.WorkingDir),
			"record it as it is: rdctl adopt --force")
	}
	return nil
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
	printFindings(e, c.Findings)
	printRecorded(e, out)
}
