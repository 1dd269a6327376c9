package main

import (
	"context"
	"errors"
	"time"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
)

// otherRuntime serves the backends besides systemd: the compose Runtime,
// which stops and starts the stack's containers over the Engine API and
// waits until hbbs answers on this host.
func (e *env) otherRuntime(ctx context.Context, rec *deploy.Record) (deploy.Runtime, error) {
	if rec.Backend != deploy.BackendCompose {
		return nil, errors.New("operating a live " + rec.Backend + " server is not available in this version of rdctl")
	}
	return composeRuntime(rec)
}

// composeRuntime builds the compose Runtime of a record.
func composeRuntime(rec *deploy.Record) (*compose.Runtime, error) {
	spec, err := compose.SpecFromRecord(rec)
	if err != nil {
		return nil, err
	}
	addr := localRendezvous(rec)
	return &compose.Runtime{Project: spec.Project, File: spec.File(), Ready: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := probe.TestNat(ctx, probe.DirectDial, addr)
		return err
	}}, nil
}
