package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/systemd"
)

// checkServerVersion reads `hbbs -V` from the release (or the installed
// hbbs) into the record, and refuses flags that version does not have.
func checkServerVersion(ctx context.Context, rec *deploy.Record, bins *systemd.Binaries) error {
	ver, err := systemd.ServerVersion(ctx, path.Join(rec.BinDir, "hbbs"), bins)
	var none *systemd.NoServerBinaryError
	if errors.As(err, &none) {
		return withHints(err, "pass the release: rdctl install systemd --binaries rustdesk-server-linux-amd64.zip --relay HOST")
	}
	if err != nil {
		return err
	}
	rec.HBBSVersion = ver.String()
	if rec.Bind != "" && ver.Less(systemd.BindMinVersion) {
		return withHints(&deploy.InputError{Field: "--bind", Value: rec.Bind,
			Reason: fmt.Sprintf("hbbs %s has no -b flag (it came in %s)", ver, systemd.BindMinVersion)},
			"drop --bind, or install hbbs 1.1.17 or newer with --binaries")
	}
	return nil
}

// activateStep is the last step of a live install: reload systemd when the
// plan changed something, enable both units and (unless noStart) start
// them — restarting when the plan changed something, since new units,
// binaries or keys take effect only then — and wait until both are active
// and hbbs answers.
func activateStep(ctx context.Context, e *env, rec *deploy.Record, p *plan.Plan, noStart bool) plan.Step {
	units := []string{rec.HBBRUnit, rec.HBBSUnit}
	verb := "enable and start"
	if noStart {
		verb = "enable"
	}
	step := &plan.Func{Verb: verb, Object: strings.Join(units, " and ")}
	step.Check = func() (bool, error) {
		if p.ChangedSoFar() {
			return true, nil
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m, err := systemd.Connect(ctx)
		if err != nil {
			return false, withHints(err, "is this host booted with systemd? use --root DIR to build an image instead")
		}
		defer m.Close()
		for _, u := range units {
			st, err := m.State(ctx, u)
			if err != nil {
				return false, err
			}
			if st.UnitFileState != "enabled" || (!noStart && st.ActiveState != "active") {
				return true, nil
			}
		}
		return false, nil
	}
	step.Do = func() (bool, error) {
		pending, err := step.Check()
		if err != nil || !pending {
			return false, err
		}
		return true, activate(ctx, e, rec, noStart, p.ChangedSoFar())
	}
	return step
}

// activate reloads systemd, enables the units and (unless noStart) starts
// them — restarting when the install changed something — then waits until
// both are active and hbbs answers.
func activate(ctx context.Context, e *env, rec *deploy.Record, noStart, changed bool) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return withHints(err, "is this host booted with systemd? use --root DIR to build an image instead")
	}
	defer m.Close()
	units := []string{rec.HBBRUnit, rec.HBBSUnit}
	if changed {
		if err := m.Reload(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
	}
	if err := m.Enable(ctx, units); err != nil {
		return fmt.Errorf("enabling %s: %w", strings.Join(units, ", "), err)
	}
	if noStart {
		e.printf("enabled %s; not started (--no-start)\n", strings.Join(units, " and "))
		return nil
	}
	rt, err := e.runtime(ctx, rec)
	if err != nil {
		return err
	}
	if changed {
		// New units, binaries or keys take effect only on a restart.
		if err := rt.Stop(ctx); err != nil {
			return err
		}
	}
	if err := rt.Start(ctx); err != nil {
		return withHints(err, "see the whole log: journalctl -u "+rec.HBBSUnit+" -u "+rec.HBBRUnit)
	}
	return nil
}
