package systemd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Activate is the last step of a live install: reload systemd when the
// plan changed something, enable both units and (unless NoStart) start
// them — restarting when the plan changed something, since new units,
// binaries or keys take effect only then — and wait until both are active
// and hbbs answers.
type Activate struct {
	Ctx        context.Context
	HBBS, HBBR string
	NoStart    bool
	// Changed reports whether an earlier step of the plan changed
	// something ([plan.Plan.ChangedSoFar]); it is asked when the step runs.
	Changed func() bool
	// Runtime stops and starts the units and waits until hbbs answers.
	Runtime deploy.Runtime
	// Connect reaches systemd; nil means the system manager over D-Bus.
	Connect ConnectFunc

	// Enabled and Started are set by Apply: what it did.
	Enabled, Started bool
}

// StartError is a unit that did not come up after activation; the
// journal says why.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

func (a *Activate) units() []string { return []string{a.HBBR, a.HBBS} }

func (a *Activate) Action() string {
	if a.NoStart {
		return "enable"
	}
	return "enable and start"
}

func (a *Activate) Target() string { return strings.Join(a.units(), " and ") }

// Pending is true when the plan changed something, or when a unit is not
// enabled or (unless NoStart) not active.
func (a *Activate) Pending() (bool, error) {
	if a.Changed() {
		return true, nil
	}
	pending := false
	err := a.Connect.session(a.Ctx, 10*time.Second, func(ctx context.Context, m UnitManager) error {
		for _, u := range a.units() {
			st, err := m.State(ctx, u)
			if err != nil {
				return err
			}
			if st.UnitFileState != "enabled" || (!a.NoStart && st.ActiveState != "active") {
				pending = true
				return nil
			}
		}
		return nil
	})
	return pending, err
}

func (a *Activate) Apply() (bool, error) {
	pending, err := a.Pending()
	if err != nil || !pending {
		return false, err
	}
	return true, a.activate(a.Changed())
}

func (a *Activate) activate(changed bool) error {
	return a.Connect.session(a.Ctx, 60*time.Second, func(ctx context.Context, m UnitManager) error {
		return a.activateWith(ctx, m, changed)
	})
}

func (a *Activate) activateWith(ctx context.Context, m UnitManager, changed bool) error {
	if changed {
		if err := m.Reload(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
	}
	if err := m.Enable(ctx, a.units()); err != nil {
		return fmt.Errorf("enabling %s: %w", strings.Join(a.units(), ", "), err)
	}
	a.Enabled = true
	if a.NoStart {
		return nil
	}
	if changed {
		// New units, binaries or keys take effect only on a restart.
		if err := a.Runtime.Stop(ctx); err != nil {
			return err
		}
	}
	if err := a.Runtime.Start(ctx); err != nil {
		return &StartError{Err: err}
	}
	a.Started = true
	return nil
}
