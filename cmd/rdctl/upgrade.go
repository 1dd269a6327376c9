package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/safefs"
)

func upgradeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "upgrade",
		Usage:       "move the compose stack to another server image, keeping its keys",
		Description: helpText("upgrade"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "the server image `REF` to run", Required: true},
			&cli.BoolFlag{Name: "no-pull", Usage: "use only a local image; never pull"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runUpgrade(ctx, e, cmd) },
	}
}

type upgradeJSON struct {
	plan.Report
	*compose.UpgradeResult
	RolledBack bool  `json:"rolled_back"`
	MS         int64 `json:"ms"`
}

// upgradeFaultHook, when set, is called at each step of an upgrade
// ("written", "recreated", "verified"). Like rotateFaultHook, production
// never sets it; tests and -tags rdctlfault builds do, for crash tests.
var upgradeFaultHook func(point string)

func runUpgrade(ctx context.Context, e *env, cmd *cli.Command) error {
	start := time.Now()
	image, err := deploy.ParseImageRef("--image", cmd.String("image"))
	if err != nil {
		return err
	}
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	if rec.Backend != deploy.BackendCompose {
		return withHints(fmt.Errorf("upgrade moves a compose stack to another image; %s records a %s deployment", e.recordPath(), rec.Backend),
			"for systemd, install the new release: rdctl install systemd --relay HOST --binaries ZIP")
	}
	spec, err := compose.SpecFromRecord(rec)
	if err != nil {
		return err
	}
	if e.root == "" {
		if err := e.requireRoot(); err != nil {
			return err
		}
	}
	next := spec
	next.Image = image
	nextRec := *rec
	nextRec.Compose = next.Record()
	// The record names the new image only once it serves: its step comes
	// after the upgrade's.
	recStep, err := deploy.RecordStep(e.recordPath(), &nextRec)
	if err != nil {
		return err
	}
	p := e.newPlan(ctx, rec)
	res := &compose.UpgradeResult{OldImage: string(spec.Image), NewImage: string(image), MountTarget: next.MountTarget()}
	if e.root != "" {
		// An image tree: rewrite compose.yaml and the record.
		data, err := compose.Render(ctx, next)
		if err != nil {
			return err
		}
		p.Add(&plan.WriteFile{Path: e.under(next.File()), Data: data, Options: safefs.CallerOwned(0o644)})
	} else {
		p.Add(upgradeStep(ctx, e, rec, spec, image, !cmd.Bool("no-pull"), &res))
	}
	p.Add(recStep)
	rep, err := e.execute(p)
	if e.root != "" {
		res.Unchanged = !rep.Changed
	}
	out := upgradeJSON{Report: rep, UpgradeResult: res, MS: time.Since(start).Milliseconds()}
	var rb *compose.UpgradeRolledBackError
	if errors.As(err, &rb) {
		if e.json {
			out.RolledBack = true
			writeJSON(e.stdout, out)
		}
		if rb.RestoreErr != nil {
			return withHints(err, "see the stack: docker compose -f "+spec.File()+" -p "+spec.Project+" ps -a")
		}
		return withHints(err, "the stack runs "+rb.Image+" again; see why with: docker compose -f "+spec.File()+" -p "+spec.Project+" logs")
	}
	var missing *compose.ImageMissingError
	if errors.As(err, &missing) {
		return withHints(err, "load it first (docker load -i FILE), or check the name and tag")
	}
	if err != nil {
		e.printReport(rep)
		return err
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	if res.Pulled {
		e.printf("pulled %s\n", res.NewImage)
	}
	e.printReport(rep)
	switch {
	case e.dryRun:
	case e.root != "" && res.Unchanged:
		e.printf("unchanged: the image tree at %s already names %s\n", e.root, image)
	case e.root != "":
		e.printf("the image tree at %s now names %s\n", e.root, image)
	case res.Unchanged:
		e.printf("unchanged: the stack %s already runs %s\n", spec.Project, res.NewImage)
	default:
		e.printf("upgraded the stack %s: %s -> %s (%d ms)\n", spec.Project, res.OldImage, res.NewImage, time.Since(start).Milliseconds())
	}
	if res.Verified {
		e.printf("verified: hbbs serves the live key\n")
	}
	return nil
}

// upgradeStep is compose.Upgrade as a plan step: the stack moves to image
// and hbbs must still serve the live key, or the old image comes back. Its
// check refuses, in a dry run too, a working directory without a valid key.
func upgradeStep(ctx context.Context, e *env, rec *deploy.Record, spec compose.Spec, image deploy.ImageRef, pull bool, res **compose.UpgradeResult) plan.Step {
	liveKey := func() (string, error) {
		st, err := inspectDir(rec.WorkingDir)
		if err != nil {
			return "", err
		}
		if !st.Valid {
			return "", withHints(fmt.Errorf("the key in %s is not valid: %v", rec.WorkingDir, st.SecretErr), "rdctl key show")
		}
		return st.Pair.PublicBase64(), nil
	}
	return &plan.Func{
		Verb: "upgrade the compose stack " + spec.Project + " to", Object: string(image),
		From: string(spec.Image), To: string(image),
		Check: func() (bool, error) {
			if _, err := liveKey(); err != nil {
				return false, err
			}
			return true, nil
		},
		Do: func() (bool, error) {
			live, err := liveKey()
			if err != nil {
				return false, err
			}
			rt, err := composeRuntime(rec)
			if err != nil {
				return false, err
			}
			addr := localRendezvous(rec)
			o := compose.UpgradeOptions{
				Spec: spec, Image: image, Pull: pull, Runtime: rt,
				Verify: func(ctx context.Context) error { return waitKey(ctx, addr, live, 15*time.Second) },
			}
			o.Hook = upgradeFaultHook
			ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			r, err := compose.Upgrade(ctx, o)
			if r != nil {
				*res = r
			}
			return r != nil && !r.Unchanged, err
		},
	}
}

// waitKey waits until hbbs at addr accepts key (probe.Key), retrying while
// it starts, for at most timeout.
func waitKey(ctx context.Context, addr, key string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := probe.Key(pctx, probe.DirectDial, addr, key, false)
		pcancel()
		switch {
		case err == nil && st == probe.KeyMatch:
			return nil
		case err == nil:
			last = fmt.Errorf("hbbs at %s does not accept the live key (%s)", addr, st)
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}
