// Package backend decides how rdctl operates a recorded deployment's
// server: which deploy.Runtime stops and starts it (systemd units, a
// compose stack's containers, or nothing in an image tree), where hbbs
// answers on this host, and the check that a restarted server serves a
// new key. It only builds values; nothing is asked or started here.
package backend

import (
	"context"
	"errors"
	"net"
	"path"
	"strconv"
	"time"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/systemd"
)

// ErrNoComposeStack means a compose record names no stack directory.
var ErrNoComposeStack = errors.New("the deployment record names no compose stack")

// UnsupportedError is a record whose backend this rdctl cannot operate
// live.
type UnsupportedError struct{ Backend string }

func (e *UnsupportedError) Error() string {
	return "operating a live " + e.Backend + " server is not available in this version of rdctl"
}

// LocalRendezvous is where hbbs answers on this host: its bind address or
// loopback, port 21116 (no admin console there, unlike 21115/21117).
func LocalRendezvous(rec *deploy.Record) string {
	host := "127.0.0.1"
	if rec.Bind != "" && rec.Bind != "0.0.0.0" && rec.Bind != "::" {
		host = rec.Bind
	}
	return net.JoinHostPort(host, strconv.Itoa(int(deploy.RendezvousPort)))
}

// Runtime picks the runtime for the record: none in an image tree (root
// != ""), where nothing runs.
func Runtime(rec *deploy.Record, root string) (deploy.Runtime, error) {
	if root != "" {
		return deploy.NoRuntime{}, nil
	}
	switch rec.Backend {
	case deploy.BackendSystemd:
		return &systemd.Runtime{HBBS: rec.HBBSUnit, HBBR: rec.HBBRUnit, Ready: ready(LocalRendezvous(rec))}, nil
	case deploy.BackendCompose:
		rt, err := Compose(rec)
		if err != nil {
			return nil, err // not a nil *compose.Runtime in a non-nil Runtime
		}
		return rt, nil
	}
	return nil, &UnsupportedError{Backend: rec.Backend}
}

// Compose builds the compose Runtime of a record, which stops and starts
// the stack's containers over the Engine API. It needs only the project
// and its file, not the full spec: an adopted stack may run hbbs without
// -r, so it has no relay.
func Compose(rec *deploy.Record) (*compose.Runtime, error) {
	c := rec.Compose
	if c == nil || c.Dir == "" {
		return nil, ErrNoComposeStack
	}
	project := c.Project
	if project == "" {
		project = compose.ProjectName(c.Dir)
	}
	return &compose.Runtime{Project: project, File: path.Join(c.Dir, compose.FileName), Ready: ready(LocalRendezvous(rec))}, nil
}

// ready is a runtime's readiness probe: hbbs at addr answers a NAT test
// within a second. Units or containers being up is not enough; hbbs may
// still be loading its key.
func ready(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := probe.TestNat(ctx, probe.DirectDial, addr)
		return err
	}
}

// Verifier returns the check that a restarted server serves newKey and
// rejects oldKey (within 15 s), or nil where nothing runs.
func Verifier(rec *deploy.Record, rt deploy.Runtime) func(ctx context.Context, newKey, oldKey string) error {
	if _, none := rt.(deploy.NoRuntime); none {
		return nil
	}
	addr := LocalRendezvous(rec)
	return func(ctx context.Context, newKey, oldKey string) error {
		return probe.VerifyRotation(ctx, probe.DirectDial, addr, newKey, oldKey, 15*time.Second)
	}
}
