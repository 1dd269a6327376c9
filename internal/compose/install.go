package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

// InstallOptions says what to install where.
type InstallOptions struct {
	// Root is the image tree ("" or "/" for the live system). Paths in the
	// compose file are always the live ones.
	Root string
	// Spec is the validated stack.
	Spec Spec
	// Record is the deployment record to write (Backend compose, Compose
	// filled in from Spec, WorkingDir = Spec.DataDir()).
	Record *deploy.Record
	// RecordPath is where the record goes (absolute, already under Root).
	RecordPath string
	// KeyOwner owns the data directory and the key files: root, since the
	// classic image runs hbbs as root (and the s6 image chowns its keys to
	// root).
	KeyOwner keys.Owner
}

// Under resolves an absolute live path under root.
func Under(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// RecordFor fills the compose fields of a deployment record from s.
func RecordFor(s Spec, idHost string) *deploy.Record {
	return &deploy.Record{
		Format: 1, Backend: deploy.BackendCompose, Origin: "rdctl",
		IDHost: idHost, Relay: s.RelayArg(),
		WorkingDir: s.DataDir(), HBBREnforcesKey: true,
		Compose: s.Record(),
	}
}

// InstallPlan builds the steps of a compose install: the project directory
// (0755), the data directory (0700) and a key pair in it made before the
// first start, the compose file and the deployment record. The same plan
// serves --dry-run and apply; applied twice, the second run changes
// nothing. Bringing the stack up is not part of the plan (see [Up]).
func InstallPlan(ctx context.Context, o InstallOptions) (*plan.Plan, *keys.EnsurePair, error) {
	s, root := o.Spec, o.Root
	rec := *o.Record
	if old, err := deploy.LoadRecord(o.RecordPath); err == nil {
		rec.KeepFrom(old)
	}
	// Behind the proxy the record names, the WebSocket ports are
	// published on loopback only.
	s.WebSocketLoopback = rec.Proxy != nil
	data, err := Render(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	recStep, err := deploy.RecordStep(o.RecordPath, &rec)
	if err != nil {
		return nil, nil, err
	}
	var p plan.Plan
	p.Add(&plan.Mkdir{Path: Under(root, string(s.Dir)), Mode: 0o755, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
	p.Add(&plan.Mkdir{Path: Under(root, s.DataDir()), Mode: 0o700, UID: o.KeyOwner.UID, GID: o.KeyOwner.GID})
	ensure := &keys.EnsurePair{Dir: Under(root, s.DataDir()), Owner: o.KeyOwner}
	p.Add(ensure)
	p.Add(&plan.WriteFile{Path: Under(root, s.File()), Data: data, Options: safefs.CallerOwned(0o644)})
	p.Add(recStep)
	return &p, ensure, nil
}

// InstallCommand is the command line that installs the stack of compose
// record rec again, for hints (its values are validated: no quoting).
func InstallCommand(rec *deploy.Record) string {
	cmd := "rdctl install compose"
	if c := rec.Compose; c != nil {
		cmd += " --dir " + c.Dir + " --network " + c.Network
	}
	cmd += " --relay " + rec.Relay
	if rec.IDHost != "" {
		cmd += " --id-host " + rec.IDHost
	}
	return cmd
}

// FileIsRendered reports whether the compose file of rec under root holds
// exactly what rdctl renders for rec now (false when it cannot be read).
func FileIsRendered(ctx context.Context, root string, rec *deploy.Record) bool {
	spec, err := SpecFromRecord(rec)
	if err != nil {
		return false
	}
	want, err := Render(ctx, spec)
	if err != nil {
		return false
	}
	cur, err := os.ReadFile(Under(root, spec.File()))
	return err == nil && bytes.Equal(cur, want)
}
