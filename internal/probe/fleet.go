package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Result is the outcome of one probe.
type Result struct {
	Name     Name
	Proto    string // "tcp", "udp" or "ws"
	Port     int
	OK       bool
	Duration time.Duration // from the first dial (or name lookup) to the verdict
	// Error says why the probe failed, in a few words ("connection
	// refused", "no answer within 3s"); "" when OK.
	Error string
	// Note says what an OK probe found worth knowing (the admin console,
	// the key verdict); may be "".
	Note string
}

// TargetResult is the outcome of every probe of one target.
type TargetResult struct {
	Target Target
	// Address is host:P as dialled: for a direct target the address its
	// host resolved to, otherwise the name.
	Address string
	Via     string
	// OK is true when every probe passed and the key did not mismatch.
	OK bool
	// KeyStatus comes from the rendezvous-tcp probe; KeyUnknown when that
	// probe did not run or failed.
	KeyStatus KeyStatus
	// Probes holds one Result per selected probe, in run order.
	Probes []Result
}

// Check runs the selected probes against every target, at most
// opts.Concurrency at a time, each bounded by opts.Timeout, the whole
// bounded by opts.Deadline and ctx. It sends traffic only to the targets
// (and, for a direct target named by DNS, the system resolver). Results
// come back in the order of targets. The error is non-nil only for invalid
// options or targets, before anything is sent.
func Check(ctx context.Context, targets []Target, opts Options) ([]TargetResult, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("target %s: %w", t, err)
		}
	}
	if opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Deadline)
		defer cancel()
	}
	f := &fleet{opts: opts, targets: targets, results: make([]TargetResult, len(targets)), hosts: make([]targetHosts, len(targets)), udp: newUDPMux()}
	defer f.udp.close()
	for i, t := range targets {
		f.results[i] = TargetResult{Target: t, Via: t.via(), KeyStatus: KeyUnknown, Probes: make([]Result, len(opts.Probes))}
		for j, n := range opts.Probes {
			f.results[i].Probes[j] = Result{Name: n, Proto: n.Proto(), Port: t.PortOf(n)}
		}
		f.hosts[i].main = &resolved{host: t.Host, direct: t.Dial == nil}
		f.hosts[i].relay = f.hosts[i].main
		if t.relayHost() != t.Host {
			f.hosts[i].relay = &resolved{host: t.relayHost(), direct: t.Dial == nil}
		}
	}

	// With both relay probes selected, one job runs them together: one
	// pairing across hbbr's TCP and WebSocket ports (RelayAcross), whose
	// two sides connect at once, so it takes two of the Concurrency slots
	// (and is split when there is only one).
	relay, relayWS := slices.Index(opts.Probes, Relay), slices.Index(opts.Probes, RelayWS)
	across := relay >= 0 && relayWS >= 0 && opts.Concurrency >= 2
	type job struct{ target, probe, weight int }
	// Slots are taken here, by one goroutine, so a job of weight 2 never
	// waits holding one; at most Concurrency jobs hold slots, so a worker
	// is always free for the next. Long-lived workers keep their grown
	// stacks: a goroutine per job would grow a fresh one for every dial.
	slots := make(chan struct{}, opts.Concurrency)
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range min(opts.Concurrency, len(targets)*len(opts.Probes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if j.weight == 2 {
					f.runRelays(ctx, j.target, relay, relayWS)
				} else {
					f.run(ctx, j.target, j.probe)
				}
				for range j.weight {
					<-slots
				}
			}
		}()
	}
	// Target-major order: a target's probes start close together, so its
	// verdict is ready early and its sockets are short-lived.
dispatch:
	for i := range targets {
		for j := range opts.Probes {
			if across && j == relayWS {
				continue
			}
			weight := 1
			if across && j == relay {
				weight = 2
			}
			for taken := 0; taken < weight; taken++ {
				select {
				case slots <- struct{}{}:
					if ctx.Err() == nil {
						continue
					}
					taken++
				case <-ctx.Done():
				}
				// The rest are marked here, not handed to the workers
				// one by one: with 100,000 targets that hand-off alone
				// took a noticeable part of a second.
				for range taken {
					<-slots // what this job already took
				}
				f.stopRest(ctx, i, j)
				break dispatch
			}
			jobs <- job{i, j, weight}
		}
	}
	close(jobs)
	wg.Wait()

	for i := range f.results {
		r := &f.results[i]
		r.OK = r.KeyStatus != KeyMismatch
		for _, p := range r.Probes {
			r.OK = r.OK && p.OK
		}
		host := f.hosts[i].main.dialHost
		if host == "" {
			host = r.Target.Host
		}
		r.Address = net.JoinHostPort(host, strconv.Itoa(r.Target.basePort()))
	}
	return f.results, nil
}

type fleet struct {
	opts    Options
	targets []Target
	results []TargetResult
	hosts   []targetHosts
	udp     *udpMux // the rendezvous-udp probes' shared socket (direct targets)
}

type targetHosts struct{ main, relay *resolved }

// resolved looks a host up once per check, so every probe of a target hits
// the same address.
type resolved struct {
	host   string
	direct bool
	once   sync.Once
	// set by once:
	dialHost string
	err      error
}

func (r *resolved) get(ctx context.Context) (string, error) {
	r.once.Do(func() {
		if ip, err := netip.ParseAddr(r.host); err == nil {
			r.dialHost = ip.Unmap().String()
			return
		}
		if !r.direct {
			r.dialHost = r.host
			return
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", r.host)
		switch {
		case err != nil:
			r.err = fmt.Errorf("cannot resolve %s: %w", r.host, err)
		case len(ips) == 0:
			r.err = fmt.Errorf("cannot resolve %s: no address", r.host)
		default:
			r.dialHost = ips[0].Unmap().String()
		}
	})
	return r.dialHost, r.err
}

// run runs probe j of target i and records its result. Only the
// rendezvous-tcp probe writes the target's KeyStatus.
func (f *fleet) run(ctx context.Context, i, j int) {
	t, name, r := f.targets[i], f.opts.Probes[j], &f.results[i].Probes[j]
	if f.stopped(ctx, r) {
		return
	}
	dial := f.dial(t)
	pctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	start := time.Now()
	res, hostName := f.hosts[i].main, t.Host
	if name == Relay || name == RelayWS {
		res, hostName = f.hosts[i].relay, t.relayHost()
	}
	var note string
	host, err := res.get(pctx)
	if err == nil {
		port := strconv.Itoa(r.Port)
		addr := net.JoinHostPort(host, port)
		switch name {
		case NATTest:
			note, err = natTest(pctx, dial, addr, t.Dial != nil)
		case RendezvousTCP:
			var st KeyStatus
			st, note, err = keyProbe(pctx, dial, addr, f.opts.Key, f.opts.Strict, f.opts.Rand)
			f.results[i].KeyStatus = st
		case RendezvousUDP:
			err = errNoMux
			if t.Dial == nil {
				err = f.udp.register(pctx, addr)
			}
			if errors.Is(err, errNoMux) {
				err = RegisterUDP(pctx, dial, addr)
			}
		case Relay:
			note, err = relay(pctx, dial, addr, f.opts.Key, t.Dial != nil)
		case RendezvousWS:
			err = TestNatWS(pctx, dial, addr, net.JoinHostPort(hostName, port))
		case RelayWS:
			err = RelayWSPair(pctx, dial, addr, net.JoinHostPort(hostName, port), f.opts.Key)
			if err == nil {
				note = "relayed bytes between two probe connections"
			}
		}
	}
	f.finish(ctx, r, start, note, err)
}

// runRelays runs the relay probes of target i (indexes jr and jw) as one
// pairing across hbbr's TCP and WebSocket ports: one connection to each,
// as for every other port. When that pairing fails, each probe whose
// verdict it did not settle runs on its own, with its own timeout, so a
// failure is reported against the right port.
func (f *fleet) runRelays(ctx context.Context, i, jr, jw int) {
	t, rr, rw := f.targets[i], &f.results[i].Probes[jr], &f.results[i].Probes[jw]
	if f.stopped(ctx, rr) {
		f.stopped(ctx, rw)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	start := time.Now()
	host, err := f.hosts[i].relay.get(pctx)
	if err != nil {
		f.finish(ctx, rr, start, "", err)
		f.finish(ctx, rw, start, "", err)
		return
	}
	wsPort := strconv.Itoa(rw.Port)
	err = RelayAcross(pctx, f.dial(t), net.JoinHostPort(host, strconv.Itoa(rr.Port)),
		net.JoinHostPort(host, wsPort), net.JoinHostPort(t.relayHost(), wsPort), f.opts.Key)
	if err == nil {
		f.finish(ctx, rr, start, fmt.Sprintf("relayed bytes to a probe connection on WebSocket port %d", rw.Port), nil)
		f.finish(ctx, rw, start, fmt.Sprintf("relayed bytes from a probe connection on TCP port %d", rr.Port), nil)
		return
	}
	timedOut := pctx.Err() != nil || errors.Is(classify(err), ErrNoAnswer)
	cancel()
	var side *SideError
	errors.As(err, &side)
	switch {
	case ctx.Err() != nil || pastDeadline(ctx):
		f.finish(ctx, rr, start, "", err)
		f.finish(ctx, rw, start, "", err)
	case side != nil && side.Final && side.Other != nil:
		f.finish(ctx, rr, start, "", side.Err)
		f.finish(ctx, rw, start, "", side.Other)
	case timedOut:
		// A hung or black-holed hbbr costs one timeout, not one for the
		// pairing and then one (or two) for each port alone: a side the
		// pairing did not settle got no answer within the timeout either
		// (its relayed bytes did not come), and is reported so.
		errR, errW := error(ErrNoAnswer), error(ErrNoAnswer)
		if side != nil && side.Final && side.Probe == Relay {
			errR = side.Err
		}
		if side != nil && side.Final && side.Probe == RelayWS {
			errW = side.Err
		}
		f.finish(ctx, rr, start, "", errR)
		f.finish(ctx, rw, start, "", errW)
	case side != nil && side.Final && side.Probe == Relay:
		f.finish(ctx, rr, start, "", side.Err)
		f.run(ctx, i, jw)
	case side != nil && side.Final && side.Probe == RelayWS:
		f.finish(ctx, rw, start, "", side.Err)
		f.run(ctx, i, jr)
	default:
		// The pairing failed fast (rejected, closed, a wrong reply):
		// each port alone, at the same time, so this costs one timeout
		// more at most. The job holds two slots, one for each.
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.run(ctx, i, jw)
		}()
		f.run(ctx, i, jr)
		<-done
	}
}

// stopRest records that the check stopped before probe j of target i and
// every later one could start.
func (f *fleet) stopRest(ctx context.Context, i, j int) {
	for ; i < len(f.results); i++ {
		for ; j < len(f.results[i].Probes); j++ {
			f.stopped(ctx, &f.results[i].Probes[j])
		}
		j = 0
	}
}

// dial is how the fleet reaches t.
func (f *fleet) dial(t Target) DialFunc {
	if t.Dial != nil {
		return t.Dial
	}
	return abortiveDial
}

// stopped records in r that the check ended before r could start, and
// says whether it did.
func (f *fleet) stopped(ctx context.Context, r *Result) bool {
	err := ctx.Err()
	if err == nil && !pastDeadline(ctx) {
		return false
	}
	r.Error = stopped(context.DeadlineExceeded)
	if err != nil {
		r.Error = stopped(err)
	}
	return true
}

// finish records a probe's verdict: OK with note when err is nil, else the
// error in a few words (or why the check stopped).
func (f *fleet) finish(ctx context.Context, r *Result, start time.Time, note string, err error) {
	r.Duration = time.Since(start)
	switch {
	case err == nil:
		r.OK, r.Note = true, note
	case ctx.Err() != nil:
		r.Error = stopped(ctx.Err())
	case pastDeadline(ctx):
		// The socket deadline (the overall one) can fire just before
		// the context's own timer does.
		r.Error = stopped(context.DeadlineExceeded)
	default:
		r.Error = describe(err, f.opts.Timeout)
	}
}

// keyProbe is the rendezvous-tcp probe: a PunchHoleRequest for an
// unregistered id carrying the key, which hbbs compares as a string
// before any lookup (its handle_punch_hole_request). Without an expected
// key it presents an empty one, which only a server enforcing no key
// accepts.
func keyProbe(ctx context.Context, dial DialFunc, addr, key string, strict bool, rnd io.Reader) (KeyStatus, string, error) {
	if key == "" {
		accepted, err := PunchHole(ctx, dial, addr, "")
		switch {
		case err != nil:
			return KeyUnknown, "", err
		case accepted:
			return KeyUnenforced, "any key accepted: the server enforces none", nil
		}
		return KeyUnknown, "the server enforces a key; none was given to compare", nil
	}
	st, err := keyCheck(ctx, dial, addr, key, strict, rnd)
	if err != nil {
		return KeyUnknown, "", err
	}
	switch st {
	case KeyMismatch:
		return st, "LICENSE_MISMATCH: the server enforces another key", nil
	case KeyUnenforced:
		return st, "a wrong key was accepted too: the server enforces no key", nil
	case KeyMatch:
		if strict {
			return st, "key accepted, a wrong key rejected", nil
		}
		return st, "key accepted", nil
	}
	return st, "", nil
}

func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func stopped(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "stopped at the overall deadline"
	}
	return "canceled"
}

// describe turns a probe error into a few words.
func describe(err error, timeout time.Duration) string {
	err = classify(err)
	switch {
	case errors.Is(err, ErrNoAnswer):
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	}
	return err.Error()
}

// probeDialer dials the fleet's direct connections. Keep-alive is off: a
// probe lives for milliseconds, and each keep-alive option is a system call
// per connection.
var probeDialer = &net.Dialer{KeepAlive: -1}

// abortiveDial is the fleet's direct dial. Its TCP connections close with a
// reset (SO_LINGER 0) instead of lingering in TIME_WAIT for a minute: a
// probe closes only once it has its verdict, so nothing is lost, and a
// check of thousands of targets does not use up the ephemeral ports.
func abortiveDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := probeDialer.DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return c, err
}
