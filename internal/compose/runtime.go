package compose

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Runtime is the compose implementation of deploy.Runtime. It finds the
// stack's containers by their compose labels (com.docker.compose.project
// and com.docker.compose.service) and stops, starts and inspects them over
// the Engine API; only containers that do not exist yet are made with
// `docker compose up -d`.
type Runtime struct {
	// Project is the compose project name.
	Project string
	// File is the project's compose file. Start creates missing
	// containers from it; "" makes a Start with missing containers fail.
	File string
	// Ready, if set, is called once both containers run and must return
	// nil once hbbs answers (a protocol probe).
	Ready func(ctx context.Context) error
	// Timeout bounds each Stop and Start, including the wait for Ready;
	// zero means 60 s.
	Timeout time.Duration
	// StopGrace is how long a container gets between SIGTERM and SIGKILL;
	// zero means [DefaultStopGrace].
	StopGrace time.Duration
	// CLI runs `docker compose`.
	CLI CLI
	// Connect reaches the engine; nil means [Connect].
	Connect func(ctx context.Context) (*Engine, error)

	mu sync.Mutex
	// held is the engine connection Prepare made, used until its release;
	// listed the containers it found, which the next Start starts without
	// listing them again.
	held   *Engine
	listed map[string][]container.Summary
}

// DefaultStopGrace is the time a stopping container gets between SIGTERM
// and SIGKILL. hbbs and hbbr catch SIGTERM and exit at once (so does the
// stand-in), and nothing of theirs needs a clean shutdown: their database
// is SQLite, which survives a kill. Docker's own default of 10 s would
// only lengthen the outage of a rotation when something in the container
// ignores SIGTERM.
const DefaultStopGrace = 2 * time.Second

// Services in the order Start brings them up: hbbs first, since clients
// reach it first; Stop goes in reverse, so hbbr's stop is not part of
// hbbs's outage.
var startOrder = []string{ServiceHBBS, ServiceHBBR}

func (r *Runtime) Name() string { return "compose" }

func (r *Runtime) timeout() time.Duration {
	if r.Timeout == 0 {
		return 60 * time.Second
	}
	return r.Timeout
}

func (r *Runtime) with(ctx context.Context, f func(ctx context.Context, e *Engine) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	r.mu.Lock()
	held := r.held
	r.mu.Unlock()
	if held != nil {
		return f(ctx, held)
	}
	connect := r.Connect
	if connect == nil {
		connect = Connect
	}
	e, err := connect(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	return f(ctx, e)
}

// NoContainerError reports a service of the project that has no container.
type NoContainerError struct {
	Project, Service string
}

func (e *NoContainerError) Error() string {
	return fmt.Sprintf("compose project %q has no %s container", e.Project, e.Service)
}

// ServiceError reports a container that is not running as it should, with
// its last log lines.
type ServiceError struct {
	Service   string
	Container string
	State     string
	ExitCode  int
	Restarts  int
	Err       error
	Logs      string
}

func (e *ServiceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (container %s) is %s", e.Service, e.Container, e.State)
	if e.State != string(container.StateRunning) {
		fmt.Fprintf(&b, " (exit code %d)", e.ExitCode)
	}
	if e.Restarts > 0 {
		fmt.Fprintf(&b, " after %d restart(s)", e.Restarts)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Logs != "" {
		fmt.Fprintf(&b, "; last log lines of %s:\n%s", e.Container, e.Logs)
	}
	return b.String()
}
func (e *ServiceError) Unwrap() error { return e.Err }

// containers lists the containers of both services.
func (r *Runtime) containers(ctx context.Context, e *Engine) (map[string][]container.Summary, error) {
	out := map[string][]container.Summary{}
	for _, svc := range startOrder {
		cs, err := e.serviceContainers(ctx, r.Project, svc)
		if err != nil {
			return nil, err
		}
		out[svc] = cs
	}
	return out, nil
}

// Prepare does before a stop-and-start window what would otherwise fall
// inside it: it connects to the engine (Stop and Start use that
// connection until release) and lists the stack's containers, which the
// next Start starts without listing them again.
func (r *Runtime) Prepare(ctx context.Context) (release func(), err error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	connect := r.Connect
	if connect == nil {
		connect = Connect
	}
	e, err := connect(cctx)
	if err != nil {
		return func() {}, err
	}
	all, err := r.containers(cctx, e)
	if err != nil {
		e.Close()
		return func() {}, err
	}
	r.mu.Lock()
	r.held, r.listed = e, all
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.held == e {
			r.held, r.listed = nil, nil
		}
		r.mu.Unlock()
		e.Close()
	}, nil
}

// Stop stops hbbr, then hbbs, and returns when both are down. A service
// without a container counts as stopped. Containers stopped this way stay
// stopped (restart: unless-stopped) until Start.
func (r *Runtime) Stop(ctx context.Context) error {
	return r.with(ctx, func(ctx context.Context, e *Engine) error {
		all, err := r.containers(ctx, e)
		if err != nil {
			return err
		}
		grace := int(r.StopGrace / time.Second)
		if r.StopGrace == 0 {
			grace = int(DefaultStopGrace / time.Second)
		}
		var errs []error
		for _, svc := range []string{ServiceHBBR, ServiceHBBS} {
			for _, c := range all[svc] {
				if c.State == container.StateExited || c.State == container.StateCreated || c.State == container.StateDead {
					continue
				}
				if _, err := e.c.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &grace}); err != nil {
					errs = append(errs, fmt.Errorf("stopping %s (%s): %w", svc, name(c), err))
					continue
				}
				st, err := e.inspect(ctx, c.ID)
				if err == nil && st.State != nil && (st.State.Running || st.State.Restarting) {
					err = fmt.Errorf("still %s after stop", st.State.Status)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("stopping %s (%s): %w", svc, name(c), err))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// Start starts hbbs, then hbbr, and returns when both run and Ready
// passes, or with a [*ServiceError] carrying the failing container's last
// log lines. Missing containers are created first with `docker compose up
// -d` from File. After Prepare, the first Start uses the containers it
// listed and starts each (starting a running container changes nothing).
func (r *Runtime) Start(ctx context.Context) error {
	return r.with(ctx, func(ctx context.Context, e *Engine) error {
		r.mu.Lock()
		all := r.listed
		r.listed = nil
		r.mu.Unlock()
		prepared := all != nil
		if !prepared {
			var err error
			if all, err = r.containers(ctx, e); err != nil {
				return err
			}
		}
		for _, svc := range startOrder {
			if len(all[svc]) > 0 {
				continue
			}
			if r.File == "" {
				return &NoContainerError{Project: r.Project, Service: svc}
			}
			if _, err := r.CLI.Up(ctx, r.File, r.Project, false); err != nil {
				return err
			}
			var err error
			if all, err = r.containers(ctx, e); err != nil {
				return err
			}
			prepared = false
			break
		}
		for _, svc := range startOrder {
			if len(all[svc]) == 0 {
				return &NoContainerError{Project: r.Project, Service: svc}
			}
			for _, c := range all[svc] {
				if !prepared && (c.State == container.StateRunning || c.State == container.StateRestarting) {
					continue
				}
				if _, err := e.c.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
					return &ServiceError{Service: svc, Container: name(c), State: string(c.State), Err: err,
						Logs: e.logTail(context.WithoutCancel(ctx), c.ID, 10)}
				}
			}
		}
		return r.waitServing(ctx, e)
	})
}

// Backoff of the wait for a started stack: a first retry after 1 ms,
// doubling up to 50 ms, so a server that answers within milliseconds of
// its start is seen within about a millisecond of it.
const (
	firstRetry = time.Millisecond
	maxRetry   = 50 * time.Millisecond
)

// errNotRunningYet is why a wait goes on while containers start.
var errNotRunningYet = errors.New("the containers are not running yet")

// NoAnswerError is hbbs's container running while hbbs does not answer the
// readiness probe.
type NoAnswerError struct{ Cause error }

func (e *NoAnswerError) Error() string { return "hbbs runs but does not answer: " + e.Cause.Error() }
func (e *NoAnswerError) Unwrap() error { return e.Cause }

// NotServingError is a wait for the stack to serve that ran out; Cause is
// the last reason it was not serving.
type NotServingError struct {
	Project string
	Cause   error
	Waited  error // the context's error
}

func (e *NotServingError) Error() string {
	return fmt.Sprintf("compose project %s: %v (%v)", e.Project, e.Cause, e.Waited)
}
func (e *NotServingError) Unwrap() error { return e.Cause }

// WaitServing waits, without starting anything, until both services'
// containers run and Ready passes: after `docker compose up -d`.
func (r *Runtime) WaitServing(ctx context.Context) error {
	return r.with(ctx, r.waitServing)
}

// waitServing polls the containers (their IDs may change while compose
// recreates them) until all run, then Ready. A container that exited, is
// restarting, or restarted since the first look fails the wait at once.
func (r *Runtime) waitServing(ctx context.Context, e *Engine) error {
	baseline := map[string]int{}
	var last error
	// cutOff: when the wait ran out during a look at the containers
	// (listing them or inspecting one), what failed before is the reason,
	// not the cut-off call. A container found exited stays the reason.
	cutOff := func(err error) error {
		if ctx.Err() != nil && last != nil && errors.Is(err, ctx.Err()) {
			return &NotServingError{Project: r.Project, Cause: last, Waited: ctx.Err()}
		}
		return err
	}
	for wait := firstRetry; ; wait = min(2*wait, maxRetry) {
		all, err := r.containers(ctx, e)
		if err != nil {
			return cutOff(err)
		}
		running, err := r.checkRunning(ctx, e, all, baseline)
		if err != nil {
			return cutOff(err)
		}
		if running {
			if r.Ready == nil {
				return nil
			}
			if last = r.Ready(ctx); last == nil {
				return nil
			}
			last = &NoAnswerError{Cause: last}
		} else {
			last = errNotRunningYet
		}
		select {
		case <-ctx.Done():
			return &NotServingError{Project: r.Project, Cause: last, Waited: ctx.Err()}
		case <-time.After(wait):
		}
	}
}

// checkRunning reports whether every service has containers and all run; it
// fails for a container that has given up or is crash-looping.
func (r *Runtime) checkRunning(ctx context.Context, e *Engine, all map[string][]container.Summary, baseline map[string]int) (bool, error) {
	running := true
	for _, svc := range startOrder {
		if len(all[svc]) == 0 {
			running = false
			continue
		}
		for _, c := range all[svc] {
			st, err := e.inspect(ctx, c.ID)
			if err != nil {
				return false, fmt.Errorf("inspecting %s (%s): %w", svc, name(c), err)
			}
			s := st.State
			if s == nil {
				running = false
				continue
			}
			first, seen := baseline[c.ID]
			if !seen {
				baseline[c.ID] = st.RestartCount
				first = st.RestartCount
			}
			failed := s.Restarting || s.Status == container.StateExited || s.Status == container.StateDead || st.RestartCount > first
			if failed {
				return false, &ServiceError{Service: svc, Container: strings.TrimPrefix(st.Name, "/"), State: string(s.Status),
					ExitCode: s.ExitCode, Restarts: st.RestartCount, Logs: e.logTail(context.WithoutCancel(ctx), c.ID, 10)}
			}
			running = running && s.Running
		}
	}
	return running, nil
}

// Running reports whether both services have containers and all of them
// run (not restarting).
func (r *Runtime) Running(ctx context.Context) (bool, error) {
	running := true
	err := r.with(ctx, func(ctx context.Context, e *Engine) error {
		all, err := r.containers(ctx, e)
		if err != nil {
			return err
		}
		for _, svc := range startOrder {
			if len(all[svc]) == 0 {
				running = false
			}
			for _, c := range all[svc] {
				running = running && c.State == container.StateRunning
			}
		}
		return nil
	})
	return running && err == nil, err
}

// name is a container's name without the leading '/'.
func name(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}
