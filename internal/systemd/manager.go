package systemd

import (
	"context"
	"time"
)

// UnitManager is what rdctl's steps ask of systemd. *Manager implements it
// over D-Bus; tests give a fake, so the order of stops, disables and
// restarts is tested without a booted systemd.
type UnitManager interface {
	State(ctx context.Context, unit string) (UnitState, error)
	Start(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	Enable(ctx context.Context, units []string) error
	Disable(ctx context.Context, units []string) error
	Reload(ctx context.Context) error
	Close()
}

// ConnectFunc reaches a UnitManager.
type ConnectFunc func(ctx context.Context) (UnitManager, error)

// connectDBus is the default ConnectFunc: the system manager over D-Bus.
func connectDBus(ctx context.Context) (UnitManager, error) {
	m, err := Connect(ctx)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return m, nil
}

func (f ConnectFunc) orDefault() ConnectFunc {
	if f == nil {
		return connectDBus
	}
	return f
}

// session reaches systemd (f, or the system manager when f is nil) for at
// most timeout and runs fn with it; the connection is closed after.
func (f ConnectFunc) session(ctx context.Context, timeout time.Duration, fn func(context.Context, UnitManager) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := f.orDefault()(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return fn(ctx, m)
}
