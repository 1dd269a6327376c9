package systemd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// Manager controls systemd units over D-Bus. It must be closed.
type Manager struct {
	conn *sddbus.Conn
}

// ErrNoSystemd means no systemd manager could be reached.
var ErrNoSystemd = errors.New("cannot reach systemd over D-Bus")

// Connect connects to the system manager: the system bus, or systemd's
// private socket when running as root without a bus daemon.
func Connect(ctx context.Context) (*Manager, error) {
	c, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSystemd, err)
	}
	return &Manager{conn: c}, nil
}

// Close closes the connection.
func (m *Manager) Close() { m.conn.Close() }

// Reload is systemctl daemon-reload.
func (m *Manager) Reload(ctx context.Context) error { return m.conn.ReloadContext(ctx) }

// Enable enables unit files (the links are made under /etc).
func (m *Manager) Enable(ctx context.Context, units []string) error {
	_, _, err := m.conn.EnableUnitFilesContext(ctx, units, false, true)
	return err
}

// Disable disables unit files.
func (m *Manager) Disable(ctx context.Context, units []string) error {
	_, err := m.conn.DisableUnitFilesContext(ctx, units, false)
	return err
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

func (m *Manager) job(ctx context.Context, verb string, f jobFunc, unit string) error {
	// Buffered: go-systemd holds its job lock while delivering the result.
	ch := make(chan string, 1)
	if _, err := f(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return &UnitError{Unit: unit, Verb: verb, Result: res}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}

// UnitError reports a job that did not finish as "done".
type UnitError struct {
	Unit, Verb, Result string
}

func (e *UnitError) Error() string { return fmt.Sprintf("%s %s: job %s", e.Verb, e.Unit, e.Result) }

// Start starts a unit and waits for the job. It first resets the unit's
// failed state and start-rate counter: rdctl's stops and starts are
// deliberate, and without the reset a few rotations in a row would hit
// systemd's StartLimitBurst and be refused.
func (m *Manager) Start(ctx context.Context, unit string) error {
	m.resetFailed(ctx, unit)
	return m.job(ctx, "start", m.conn.StartUnitContext, unit)
}

// resetFailed resets a unit's failed state and start-rate counter. It
// fails harmlessly when there is nothing to reset.
func (m *Manager) resetFailed(ctx context.Context, unit string) {
	_ = m.conn.ResetFailedUnitContext(ctx, unit)
}

// startAll queues a start job for each unit, in order, without waiting in
// between, then waits for all of them. It returns the first unit whose job
// failed.
func (m *Manager) startAll(ctx context.Context, units []string) (string, error) {
	chs := make([]chan string, len(units))
	for i, u := range units {
		// Buffered: go-systemd holds its job lock while delivering the result.
		chs[i] = make(chan string, 1)
		if _, err := m.conn.StartUnitContext(ctx, u, "replace", chs[i]); err != nil {
			return u, fmt.Errorf("start %s: %w", u, err)
		}
	}
	for i, u := range units {
		select {
		case res := <-chs[i]:
			if res != "done" {
				return u, &UnitError{Unit: u, Verb: "start", Result: res}
			}
		case <-ctx.Done():
			return u, fmt.Errorf("start %s: %w", u, ctx.Err())
		}
	}
	return "", nil
}

// Stop stops a unit and waits for the job.
func (m *Manager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, "stop", m.conn.StopUnitContext, unit)
}

// Restart restarts a unit (starts it when it is not running) and waits
// for the job, after resetting its failed state and start-rate counter as
// Start does: a unit that failed its way into systemd's start limit is
// what a restart after a repair is for.
func (m *Manager) Restart(ctx context.Context, unit string) error {
	m.resetFailed(ctx, unit)
	return m.job(ctx, "restart", m.conn.RestartUnitContext, unit)
}

// ReloadIfActive reloads a unit (systemctl reload) and waits for the job,
// when the unit is active; a unit that is not is left alone and reported
// as not running.
func (m *Manager) ReloadIfActive(ctx context.Context, unit string) (running bool, err error) {
	st, err := m.State(ctx, unit)
	if err != nil {
		return false, err
	}
	if st.ActiveState != "active" {
		return false, nil
	}
	return true, m.job(ctx, "reload", m.conn.ReloadUnitContext, unit)
}

// UnitState is what systemd says of a unit.
type UnitState struct {
	Name          string `json:"name"`
	LoadState     string `json:"load_state"`
	ActiveState   string `json:"active_state"`
	SubState      string `json:"sub_state"`
	UnitFileState string `json:"unit_file_state"`
	MainPID       uint32 `json:"main_pid"`
	NRestarts     uint32 `json:"restarts"`
	Result        string `json:"result"`
	User          string `json:"user,omitempty"`
}

// State reads a unit's state.
func (m *Manager) State(ctx context.Context, unit string) (UnitState, error) {
	st := UnitState{Name: unit}
	props, err := m.conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return st, err
	}
	str := func(p map[string]any, k string) string { s, _ := p[k].(string); return s }
	st.LoadState, st.ActiveState, st.SubState = str(props, "LoadState"), str(props, "ActiveState"), str(props, "SubState")
	st.UnitFileState = str(props, "UnitFileState")
	if st.LoadState == "not-found" {
		return st, nil
	}
	svc, err := m.conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return st, err
	}
	st.MainPID, _ = svc["MainPID"].(uint32)
	st.NRestarts, _ = svc["NRestarts"].(uint32)
	st.Result = str(svc, "Result")
	st.User = str(svc, "User")
	return st, nil
}

// WaitActive waits until unit is active and running, failing early when
// systemd gives up on it.
func (m *Manager) WaitActive(ctx context.Context, unit string) error {
	for wait := firstRetry; ; {
		st, err := m.State(ctx, unit)
		if err != nil {
			return err
		}
		switch {
		case st.ActiveState == "active" && st.SubState == "running":
			return nil
		case st.ActiveState == "failed":
			return &UnitError{Unit: unit, Verb: "start", Result: "failed (" + st.Result + ")"}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is %s/%s: %w", unit, st.ActiveState, st.SubState, ctx.Err())
		case <-time.After(wait):
		}
		wait = nextRetry(wait)
	}
}

// JournalTail returns the last n log lines of a unit, for error reports.
func JournalTail(ctx context.Context, unit string, n int) string {
	out, err := exec.CommandContext(ctx, "journalctl", "-u", unit, "-n", fmt.Sprint(n), "--no-pager", "-o", "cat").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Runtime is the systemd implementation of deploy.Runtime.
//
// A rotation's outage, as clients see it, runs from hbbs's stop to its
// first answer after the start, so Stop and Start do inside that window
// only what correctness needs: [Runtime.Prepare] connects to systemd and
// resets the units' failed state and start-rate counters beforehand;
// Stop stops hbbr first and hbbs last, so hbbr's stop is not part of
// hbbs's outage; Start queues hbbs's start job first and hbbr's at once
// after it, and waits for both jobs together.
type Runtime struct {
	HBBS, HBBR string
	// Ready, if set, is called after both units are active and must
	// return nil once hbbs answers (a protocol probe).
	Ready func(ctx context.Context) error
	// Timeout bounds each wait; zero means 30 s.
	Timeout time.Duration

	mu sync.Mutex
	// held is the connection Prepare made, used until its release.
	held *Manager
	// reset: Prepare reset the units' failed state, so the next Start
	// need not (a Start after that, e.g. a rollback's, resets again).
	reset bool
}

func (r *Runtime) Name() string { return "systemd" }

func (r *Runtime) timeout() time.Duration {
	if r.Timeout == 0 {
		return 30 * time.Second
	}
	return r.Timeout
}

func (r *Runtime) with(ctx context.Context, f func(ctx context.Context, m *Manager) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	if held != nil {
		return f(ctx, held)
	}
	m, err := Connect(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return f(ctx, m)
}

// Prepare does before a stop-and-start window what would otherwise fall
// inside it: it connects to systemd (Stop and Start use that connection
// until release) and resets both units' failed state and start-rate
// counters. rdctl's stops and starts are deliberate; without the reset a
// few rotations in a row would hit systemd's StartLimitBurst and be
// refused.
func (r *Runtime) Prepare(ctx context.Context) (release func(), err error) {
	// The connection lives as long as the context it is made with, so it
	// is made with the caller's, not with the timeout below.
	m, err := Connect(ctx)
	if err != nil {
		return func() {}, err
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	for _, u := range []string{r.HBBS, r.HBBR} {
		m.resetFailed(cctx, u)
	}
	r.mu.Lock()
	r.held, r.reset = m, true
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.held == m {
			r.held, r.reset = nil, false
		}
		r.mu.Unlock()
		m.Close()
	}, nil
}

// Stop stops hbbr, then hbbs, each waiting for its job: hbbs, which
// clients reach first, goes down last.
func (r *Runtime) Stop(ctx context.Context) error {
	return r.with(ctx, func(ctx context.Context, m *Manager) error {
		return errors.Join(m.Stop(ctx, r.HBBR), m.Stop(ctx, r.HBBS))
	})
}

// Start starts hbbs and hbbr together (hbbs's job queued first) and waits
// until both run and hbbs answers.
func (r *Runtime) Start(ctx context.Context) error {
	return r.with(ctx, func(ctx context.Context, m *Manager) error {
		r.mu.Lock()
		reset := !r.reset
		r.reset = false
		r.mu.Unlock()
		units := []string{r.HBBS, r.HBBR}
		if reset {
			for _, u := range units {
				m.resetFailed(ctx, u)
			}
		}
		if u, err := m.startAll(ctx, units); err != nil {
			return r.explain(ctx, u, err)
		}
		for _, u := range units {
			if err := m.WaitActive(ctx, u); err != nil {
				return r.explain(ctx, u, err)
			}
		}
		if r.Ready != nil {
			return r.waitReady(ctx)
		}
		return nil
	})
}

// Backoff of the waits for a started server: a first retry after 1 ms,
// doubling up to 50 ms, so a server that answers within milliseconds of
// its start is seen within about a millisecond of it.
const (
	firstRetry = time.Millisecond
	maxRetry   = 50 * time.Millisecond
)

func nextRetry(d time.Duration) time.Duration { return min(2*d, maxRetry) }

func (r *Runtime) waitReady(ctx context.Context) error {
	var err error
	for wait := firstRetry; ; wait = nextRetry(wait) {
		if err = r.Ready(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is running but does not answer: %w", r.HBBS, err)
		case <-time.After(wait):
		}
	}
}

// explain adds the last journal lines to a unit failure.
func (r *Runtime) explain(ctx context.Context, unit string, err error) error {
	if tail := JournalTail(context.WithoutCancel(ctx), unit, 10); tail != "" {
		return fmt.Errorf("%w; last log lines of %s:\n%s", err, unit, tail)
	}
	return err
}

// Running reports whether both units are active.
func (r *Runtime) Running(ctx context.Context) (bool, error) {
	running := true
	err := r.with(ctx, func(ctx context.Context, m *Manager) error {
		for _, u := range []string{r.HBBS, r.HBBR} {
			st, err := m.State(ctx, u)
			if err != nil {
				return err
			}
			running = running && st.ActiveState == "active"
		}
		return nil
	})
	return running && err == nil, err
}
