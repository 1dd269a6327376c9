package main

import (
	"context"
	"errors"

	"github.com/rdctl/rdctl/internal/deploy"
)

// otherRuntime serves the backends besides systemd.
func (e *env) otherRuntime(ctx context.Context, rec *deploy.Record) (deploy.Runtime, error) {
	return nil, withHints(errors.New("operating a live "+rec.Backend+" server is not available in this version of rdctl"),
		"operate on an image tree with --root DIR")
}
