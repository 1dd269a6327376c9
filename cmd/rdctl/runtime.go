package main

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
)

// runtime picks the service backend for the record: none in an image tree.
func (e *env) runtime(ctx context.Context, rec *deploy.Record) (deploy.Runtime, error) {
	if e.root != "" {
		return deploy.NoRuntime{}, nil
	}
	return nil, withHints(errors.New("operating a live "+rec.Backend+" server is not available in this version of rdctl"),
		"operate on an image tree with --root DIR")
}

// verifier returns the check that a restarted server serves newKey, or nil
// where nothing runs.
func (e *env) verifier(rec *deploy.Record, rt deploy.Runtime) func(ctx context.Context, newKey, oldKey string) error {
	if _, none := rt.(deploy.NoRuntime); none {
		return nil
	}
	return nil
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
