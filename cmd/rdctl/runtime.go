package main

import (
	"context"
	"encoding/base64"
	"net"
	"strconv"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/systemd"
)

// localRendezvous is where hbbs answers on this host: its bind address or
// loopback, port 21116 (no admin console there, unlike 21115/21117).
func localRendezvous(rec *deploy.Record) string {
	host := "127.0.0.1"
	if rec.Bind != "" && rec.Bind != "0.0.0.0" && rec.Bind != "::" {
		host = rec.Bind
	}
	return net.JoinHostPort(host, strconv.Itoa(int(deploy.RendezvousPort)))
}

// runtime picks the service backend for the record: none in an image tree.
func (e *env) runtime(ctx context.Context, rec *deploy.Record) (deploy.Runtime, error) {
	if e.root != "" {
		return deploy.NoRuntime{}, nil
	}
	switch rec.Backend {
	case deploy.BackendSystemd:
		addr := localRendezvous(rec)
		return &systemd.Runtime{HBBS: rec.HBBSUnit, HBBR: rec.HBBRUnit, Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := probe.TestNat(ctx, probe.DirectDial, addr)
			return err
		}}, nil
	}
	return e.otherRuntime(ctx, rec)
}

// verifier returns the check that a restarted server serves newKey and
// rejects oldKey, or nil where nothing runs.
func (e *env) verifier(rec *deploy.Record, rt deploy.Runtime) func(ctx context.Context, newKey, oldKey string) error {
	if _, none := rt.(deploy.NoRuntime); none {
		return nil
	}
	addr := localRendezvous(rec)
	return func(ctx context.Context, newKey, oldKey string) error {
		return probe.VerifyRotation(ctx, probe.DirectDial, addr, newKey, oldKey, 15*time.Second)
	}
}

// backupOwner owns backups and staged keys: root on a live host, the
// running user in an image tree.
func (e *env) backupOwner() keys.Owner {
	if e.root != "" {
		return currentOwner()
	}
	return keys.Owner{UID: 0, GID: 0}
}

func fingerprintOf(pub string) string {
	raw, err := base64.StdEncoding.DecodeString(pub)
	if err != nil || len(raw) != keys.PublicSize {
		return ""
	}
	return keys.Fingerprint(raw)
}
