package main

import (
	"context"
	"errors"
	"path"
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

// composeRuntime builds the compose Runtime of a record. Stopping and
// starting need only the project and its file, not the full spec: an
// adopted stack may run hbbs without -r, so it has no relay.
func composeRuntime(rec *deploy.Record) (*compose.Runtime, error) {
	c := rec.Compose
	if c == nil || c.Dir == "" {
		return nil, errors.New("the deployment record names no compose stack")
	}
	project := c.Project
	if project == "" {
		project = compose.ProjectName(c.Dir)
	}
	addr := localRendezvous(rec)
	return &compose.Runtime{Project: project, File: path.Join(c.Dir, compose.FileName), Ready: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := probe.TestNat(ctx, probe.DirectDial, addr)
		return err
	}}, nil
}
