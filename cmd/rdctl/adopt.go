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
	"github.com/rdctl/rdctl/internal/textsafe"
)

func adoptCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "adopt",
		Usage:       "record an existing hbbs/hbbr install so rdctl can operate it",
		Description: helpText("adopt"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` clients are configured with"},
			&cli.StringFlag{Name: "relay", Usage: "relay `HOST[:PORT]` (or a comma list) to record instead of what hbbs advertises"},
			&cli.StringFlag{Name: "tailnet-host", Usage: "the ID server `HOST[:PORT]` tailnet clients are configured with, beside the public --id-host (rdctl export --profile tailnet)"},
			&cli.StringFlag{Name: "origin", Usage: "adopt this one when several are found: `NAME` debian, installer-script or rdctl"},
			&cli.StringFlag{Name: "backend", Usage: "look only for a `KIND` of install: systemd or compose (default: systemd units, then compose stacks on a live host)"},
			&cli.StringFlag{Name: "project", Usage: "adopt this compose project when several run (implies --backend compose)", Value: ""},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing deployment record; record a compose stack whose keys are not on the host"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runAdopt(ctx, e, cmd) },
	}
}

// adoptFlags turns adopt's flags into a checked request.
func adoptFlags(e *env, cmd *cli.Command) (adopt.Request, error) {
	r := adopt.Request{Relay: cmd.String("relay"), Origin: cmd.String("origin"), Backend: cmd.String("backend"),
		Project: cmd.String("project"), Force: cmd.Bool("force"), Live: e.root == ""}
	if s := cmd.String("id-host"); s != "" {
		hp, err := parseIDHost("--id-host", s)
		if err != nil {
			return r, err
		}
		r.IDHost = hp
	}
	var err error
	if r.TailnetHost, err = tailnetHostFlag(cmd); err != nil {
		return r, err
	}
	if r.Relay != "" {
		if _, err := deploy.ParseRelays("--relay", r.Relay); err != nil {
			return r, err
		}
	}
	r, err = r.Check()
	var conflict *adopt.FlagConflictError
	if errors.As(err, &conflict) {
		return r, &usageError{msg: err.Error()}
	}
	return r, err
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
	if _, err := deploy.LoadRecord(recPath); !errors.Is(err, deploy.ErrNoRecord) && !in.Force {
		return withHints(fmt.Errorf("a deployment record already exists at %s", recPath),
			"see what it says: rdctl status", "replace it with: rdctl adopt --force")
	}
	if in.Backend == deploy.BackendCompose {
		_, err := adoptCompose(ctx, e, in, true)
		return err
	}
	inst, err := adopt.Find(e.root, in.Origin)
	if errors.Is(err, adopt.ErrNoInstall) && in.ComposeFallback() {
		if done, err := adoptCompose(ctx, e, in, false); done || err != nil {
			return err
		}
	}
	var several *adopt.SeveralInstallsError
	switch {
	case errors.Is(err, adopt.ErrNoInstall):
		return withHints(&adopt.NotFoundError{Root: e.root, Compose: in.ComposeFallback()}, "install one: rdctl install systemd --relay HOST")
	case errors.As(err, &several):
		return withHints(&usageError{msg: err.Error()}, "choose one: rdctl adopt --origin "+several.Installs[0].Origin)
	case err != nil:
		return err
	}
	rec, source, err := inst.Adopt(in, e.hostname(ctx))
	if err != nil {
		return idHostHint(err)
	}
	out := newAdoptJSON(e, rec, source)
	out.Install = inst
	if err := e.recordAdopted(ctx, &out, rec); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	printAdopt(e, &out, rec)
	return nil
}

// hostname asks this host's name (the image's with --root), for the ID
// server when nothing else names it.
func (e *env) hostname(ctx context.Context) func() (string, string) {
	return func() (string, string) { return adopt.Hostname(ctx, e.root) }
}

// idHostHint makes no usable ID server a usage error: --id-host names it.
func idHostHint(err error) error {
	if errors.Is(err, adopt.ErrNoIDHost) {
		return withHints(&usageError{msg: err.Error()}, "name it: rdctl adopt --id-host HOST (or --relay HOST)")
	}
	return err
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
func adoptCompose(ctx context.Context, e *env, in adopt.Request, explicit bool) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := compose.FindStack(cctx, in.Project)
	var several *compose.SeveralStacksError
	switch {
	case !explicit && (errors.Is(err, compose.ErrNoEngine) || errors.Is(err, compose.ErrNoStack)):
		return false, nil
	case errors.Is(err, compose.ErrNoEngine):
		return true, withHints(err, "is Docker running? systemctl status docker")
	case errors.Is(err, compose.ErrNoStack) && in.Project != "":
		return true, withHints(fmt.Errorf("no running compose project %s uses a rustdesk image or runs hbbs/hbbr", textsafe.Echo(in.Project)),
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
func recordCompose(ctx context.Context, e *env, in adopt.Request, d *compose.Detected) error {
	a, err := compose.Adopt(d, in, e.hostname(ctx))
	if err != nil {
		return idHostHint(err)
	}
	out := newAdoptJSON(e, a.Record, a.IDHostSource)
	out.Compose = &adoptComposeJSON{Stack: d, Findings: a.Findings, Refused: a.Refused}
	if !a.Refused {
		if err := e.recordAdopted(ctx, &out, a.Record); err != nil {
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
	var refused *compose.RefusedError
	if err := a.Refusal(); errors.As(err, &refused) {
		mt := refused.MountTarget
		return withHints(err,
			fmt.Sprintf("mount the data directory at %s (e.g. ./data:%s) in %s, copy the keys out of the running container first (docker compose cp hbbs:%s/id_ed25519 ./data/), then recreate it and run rdctl adopt",
				mt, mt, orNone(strings.Join(refused.ConfigFiles, ", ")), refused.WorkingDir),
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
