package main

import (
	"context"
	"errors"
	"fmt"
	"path"

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

// activateStep is systemd's activation, the last step of a live install.
func activateStep(ctx context.Context, e *env, rec *deploy.Record, p *plan.Plan, noStart bool) (*systemd.Activate, error) {
	rt, err := e.runtime(ctx, rec)
	if err != nil {
		return nil, err
	}
	return &systemd.Activate{Ctx: ctx, HBBS: rec.HBBSUnit, HBBR: rec.HBBRUnit, NoStart: noStart,
		Changed: p.ChangedSoFar, Runtime: rt}, nil
}

// activateHints says where to look when the activation failed.
func activateHints(err error, rec *deploy.Record) error {
	var start *systemd.StartError
	switch {
	case errors.As(err, &start):
		return withHints(err, "see the whole log: journalctl -u "+rec.HBBSUnit+" -u "+rec.HBBRUnit)
	case errors.Is(err, systemd.ErrNoSystemd):
		return withHints(err, "is this host booted with systemd? use --root DIR to build an image instead")
	}
	return err
}
