package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	f := &fleet{opts: opts, targets: targets, results: make([]TargetResult, len(targets)), hosts: make([]targetHosts, len(targets))}
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

	type job struct{ target, probe int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range min(opts.Concurrency, len(targets)*len(opts.Probes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				f.run(ctx, j.target, j.probe)
			}
		}()
	}
	// Target-major order: a target's probes start close together, so its
	// verdict is ready early and its sockets are short-lived.
	for i := range targets {
		for j := range opts.Probes {
			jobs <- job{i, j}
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
	if err := ctx.Err(); err != nil || pastDeadline(ctx) {
		r.Error = stopped(context.DeadlineExceeded)
		if err != nil {
			r.Error = stopped(err)
		}
		return
	}
	dial := t.Dial
	if dial == nil {
		dial = abortiveDial
	}
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
			st, note, err = keyProbe(pctx, dial, addr, f.opts.Key, f.opts.Strict)
			f.results[i].KeyStatus = st
		case RendezvousUDP:
			err = RegisterUDP(pctx, dial, addr)
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

// keyProbe is the rendezvous-tcp probe: the punch-hole key probe (reference
// §4c option 1). Without an expected key it presents an empty one, which
// only a server enforcing no key accepts.
func keyProbe(ctx context.Context, dial DialFunc, addr, key string, strict bool) (KeyStatus, string, error) {
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
	st, err := Key(ctx, dial, addr, key, strict)
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
