package main

import (
	"context"
	"encoding/base64"

	"github.com/rdctl/rdctl/internal/backend"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
)

// The runtime decisions live in internal/backend; these keep the names
// rotate, apply, upgrade and install call.

func localRendezvous(rec *deploy.Record) string { return backend.LocalRendezvous(rec) }

// runtime picks the service backend for the record: none in an image tree.
func (e *env) runtime(_ context.Context, rec *deploy.Record) (deploy.Runtime, error) {
	return backend.Runtime(rec, e.root)
}

// verifier returns the check that a restarted server serves newKey and
// rejects oldKey, or nil where nothing runs.
func (e *env) verifier(rec *deploy.Record, rt deploy.Runtime) func(ctx context.Context, newKey, oldKey string) error {
	return backend.Verifier(rec, rt)
}

func composeRuntime(rec *deploy.Record) (*compose.Runtime, error) { return backend.Compose(rec) }

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
