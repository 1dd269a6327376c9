package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
)

func installComposeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "compose",
		Usage:       "install hbbs and hbbr as a docker compose stack",
		Description: helpText("install-compose"),
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "relay", Usage: "relay `HOST[:PORT]` hbbs advertises (-r); several as a comma list or repeated, handed to clients in turn", Required: true},
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` clients are configured with (default: the first relay's host); one name, not a list"},
			&cli.StringFlag{Name: "tailnet-host", Usage: "the ID server `HOST[:PORT]` tailnet clients are configured with, when the server also has a public name (--id-host): rdctl export --profile tailnet"},
			&cli.StringFlag{Name: "dir", Usage: "project `DIR` holding compose.yaml and data/", Value: compose.DefaultDir},
			&cli.StringFlag{Name: "image", Usage: "server image `REF`", Value: compose.DefaultImage},
			&cli.StringFlag{Name: "network", Usage: "`MODE`: host or bridge", Value: compose.NetworkHost},
			&cli.BoolFlag{Name: "no-start", Usage: "live install: write everything but do not start the stack"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			spec, rec, err := composeRecordFromFlags(cmd, e.recordedCompose())
			if err != nil {
				return err
			}
			return runInstallCompose(ctx, e, cmd, spec, rec)
		},
	}
}

// recordedCompose is the compose part of the existing deployment record,
// or nil.
func (e *env) recordedCompose() *deploy.ComposeRecord {
	if r, err := deploy.LoadRecord(e.recordPath()); err == nil && r.Backend == deploy.BackendCompose {
		return r.Compose
	}
	return nil
}

// composeRecordFromFlags validates every flag into a stack spec and its
// deployment record before anything is planned. --image and --network
// default to what an existing record of the same directory names, so that
// re-running an install after an upgrade does not move the stack back to
// the default image.
func composeRecordFromFlags(cmd *cli.Command, recorded *deploy.ComposeRecord) (compose.Spec, *deploy.Record, error) {
	image, network := cmd.String("image"), cmd.String("network")
	if recorded != nil && recorded.Dir == cmd.String("dir") {
		if !cmd.IsSet("image") {
			image = recorded.Image
		}
		if !cmd.IsSet("network") {
			network = recorded.Network
		}
	}
	relays, idHost, err := relaysAndIDHost(cmd)
	if err != nil {
		return compose.Spec{}, nil, err
	}
	if _, err := compose.ParseNetwork("--network", network); err != nil {
		return compose.Spec{}, nil, err
	}
	spec, err := compose.NewSpec(cmd.String("dir"), image, network, "", relays...)
	if err != nil {
		return compose.Spec{}, nil, err
	}
	rec := compose.RecordFor(spec, idHost.String())
	if rec.TailnetHost, err = tailnetHostFlag(cmd); err != nil {
		return compose.Spec{}, nil, err
	}
	return spec, rec, rec.Validate()
}

type installComposeJSON struct {
	installJSON
	ComposeFile string `json:"compose_file"`
	Project     string `json:"project"`
	Image       string `json:"image"`
	Network     string `json:"network"`
	MountTarget string `json:"mount_target"`
	APIVersion  string `json:"api_version,omitempty"`
}

func runInstallCompose(ctx context.Context, e *env, cmd *cli.Command, spec compose.Spec, rec *deploy.Record) error {
	start := time.Now()
	live := e.root == ""
	if live {
		if err := e.requireRoot(); err != nil {
			return err
		}
	}
	if err := e.checkRecordedStack(rec); err != nil {
		return err
	}
	// The classic image runs hbbs as root; the s6 image chowns the keys to
	// root. An image tree built without root is the caller's until the
	// target host takes it over.
	ip, ensure, err := compose.InstallPlan(ctx, compose.InstallOptions{
		Root: e.root, Spec: spec, Record: rec, RecordPath: e.recordPath(), KeyOwner: currentOwner(),
	})
	if err != nil {
		return err
	}
	p := e.newPlan(ctx, rec)
	p.Add(ip.Steps()...)
	upCmd := fmt.Sprintf("docker compose -f %s -p %s up -d", spec.File(), spec.Project)
	var up composeUp
	if live && !cmd.Bool("no-start") {
		p.Add(composeUpStep(ctx, e, spec, rec, p, ensure, &up))
	}
	rep, err := e.execute(p)
	out := installComposeJSON{
		installJSON: installJSON{Report: rep, Root: e.root, Record: e.recordPath()},
		ComposeFile: compose.Under(e.root, spec.File()), Project: spec.Project, Image: string(spec.Image),
		Network: spec.Network, MountTarget: spec.MountTarget(), APIVersion: up.api,
	}
	if err != nil {
		e.printReport(rep)
		return withHints(err, "nothing after the failing step was changed; fix it and run the same command again")
	}
	if up.ran {
		out.Started = true
		out.ServingMS = time.Since(start).Milliseconds()
	}
	if !e.dryRun {
		out.PublicKey, out.Fingerprint = publicKeyIn(ensure.Dir)
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	e.printReport(rep)
	filesChanged := rep.Changed
	if up.ran {
		filesChanged = up.filesChanged
	}
	switch {
	case e.dryRun:
	case !filesChanged && e.root != "":
		e.printf("unchanged: the image tree at %s is already as requested\n", e.root)
	case !filesChanged && !up.started:
		e.printf("unchanged: the compose stack %s is installed and running as requested\n", spec.Project)
	case !filesChanged:
		e.printf("unchanged: the files of the compose stack %s are as requested; started it\n", spec.Project)
	case e.root != "":
		e.printf("installed the compose stack into %s\n", e.root)
	default:
		e.printf("installed the compose stack %s (%s)\n", spec.Project, spec.File())
	}
	if out.Started {
		if up.started {
			e.printf("serving: both containers running and hbbs answering, %d ms after rdctl started\n", out.ServingMS)
		}
	} else if live && !e.dryRun {
		e.printf("not started (--no-start)\n")
		e.hintf("start it with: %s", upCmd)
	}
	if out.PublicKey != "" {
		e.printf("public key:  %s\nfingerprint: %s\n", out.PublicKey, out.Fingerprint)
		if ensure.Generated {
			e.hintf("give clients this key: %s", e.commandLine("export --format toml"))
		}
	}
	if e.root != "" && !e.dryRun {
		e.hintf("on the target, start it with: %s", upCmd)
	}
	return nil
}

// composeUp is what bringing the stack up did.
type composeUp struct {
	ran          bool   // the step ran (a real run)
	filesChanged bool   // the steps before it changed the stack's files
	started      bool   // it started or recreated containers
	api          string // the Engine API version in use
}

// composeUpStep is the last step of a live compose install: bring the stack
// up when the plan changed its files or it does not run, and wait until
// hbbs answers.
func composeUpStep(ctx context.Context, e *env, spec compose.Spec, rec *deploy.Record, p *plan.Plan, ensure *keys.EnsurePair, up *composeUp) plan.Step {
	step := &plan.Func{Verb: "bring up", Object: "the compose stack " + spec.Project}
	step.Check = func() (bool, error) {
		if p.ChangedSoFar() {
			return true, nil
		}
		rt, err := composeRuntime(rec)
		if err != nil {
			return false, err
		}
		running, err := rt.Running(ctx)
		return !running, err
	}
	step.Do = func() (bool, error) {
		changed := p.ChangedSoFar()
		api, started, err := bringUpCompose(ctx, e, spec, rec, changed, ensure.Generated)
		*up = composeUp{ran: true, filesChanged: changed, started: started, api: api}
		return started, err
	}
	return step
}

// checkRecordedStack refuses to replace a record of another deployment: a
// systemd install, or a compose stack in another directory or project,
// which would be left running unmanaged (and, with host networking, hold
// the ports).
func (e *env) checkRecordedStack(rec *deploy.Record) error {
	old, err := deploy.LoadRecord(e.recordPath())
	if errors.Is(err, deploy.ErrNoRecord) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case old.Backend != deploy.BackendCompose:
		return withHints(fmt.Errorf("%s records a %s deployment; installing a compose stack would orphan it", e.recordPath(), old.Backend),
			"remove that deployment first, or keep a separate record with --config FILE")
	case old.Compose == nil || old.Compose.Dir != rec.Compose.Dir || old.Compose.Project != rec.Compose.Project:
		dir := "?"
		if old.Compose != nil {
			dir = old.Compose.Dir
		}
		return withHints(fmt.Errorf("%s records the compose stack in %s; this install is for %s", e.recordPath(), dir, rec.Compose.Dir),
			"pass --dir "+dir+" to update the recorded stack, or keep a separate record with --config FILE")
	}
	return nil
}

// bringUpCompose makes sure the image is there, runs `docker compose up -d`
// unless the stack already runs as installed, and waits until both
// containers run and hbbs answers. It returns the Engine API version in use
// and whether it started or recreated anything.
func bringUpCompose(ctx context.Context, e *env, spec compose.Spec, rec *deploy.Record, changed, newKey bool) (api string, started bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	eng, err := compose.Connect(ctx)
	if err != nil {
		return "", false, withHints(err, "is dockerd running, and is this user allowed to use its socket? (rdctl uses DOCKER_HOST when set)")
	}
	defer eng.Close()
	api = eng.APIVersion()
	e.debugf("docker engine at %s, API %s", eng.Host(), api)
	_, pulled, err := eng.EnsureImage(ctx, string(spec.Image), true)
	if err != nil {
		return api, false, withHints(err, "load the image (docker load -i FILE) or pass another one with --image REF")
	}
	if pulled {
		e.printf("pulled %s\n", spec.Image)
	}
	rt, err := composeRuntime(rec)
	if err != nil {
		return api, false, err
	}
	running, err := rt.Running(ctx)
	if err != nil {
		return api, false, err
	}
	if changed || !running {
		// A new key under running containers takes effect only after a
		// restart: hbbs reads it once, at start.
		out, err := compose.CLI{}.Up(ctx, spec.File(), spec.Project, newKey && running)
		if err != nil {
			return api, false, withHints(err, "see the stack: docker compose -f "+spec.File()+" -p "+spec.Project+" ps -a")
		}
		e.debugf("%s", out)
		started = true
	}
	if err := rt.WaitServing(ctx); err != nil {
		return api, started, withHints(err, "see the whole log: docker compose -f "+spec.File()+" -p "+spec.Project+" logs")
	}
	return api, started, nil
}
