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
	Name  Name
	Proto string // "tcp", "udp" or "ws"
	Port  int
	OK    bool
	// Relay is, for a relay probe of a target with several relays, the
	// index of its relay in TargetResult.Relays; 0 otherwise.
	Relay    uint8
	Duration time.Duration // from the first dial (or name lookup) to the verdict
	// Error says why the probe failed, in a few words ("connection
	// refused", "no answer within 3s"); "" when OK.
	Error string
	// Note says what an OK probe found worth knowing (the admin console,
	// the key verdict); may be "".
	Note string
	// Warning is what an OK probe found wrong but not fatal (proxied
	// targets: the proxy does not pass the client address); may be "".
	Warning string
	// Cause classifies a failure of a proxied target's probe (the proxy's
	// or the certificate's fault, see Cause); "" when OK or unclassified.
	Cause Cause
}

// TargetResult is the outcome of every probe of one target at one
// address.
type TargetResult struct {
	Target Target
	// Address is host:P as dialled: for a direct target the address its
	// host resolved to, otherwise the name. A name with several addresses
	// gives one TargetResult per address, in the resolver's order.
	Address string
	Via     string
	// OK is true when every probe passed and the key did not mismatch.
	OK bool
	// KeyStatus comes from the rendezvous-tcp probe; KeyUnknown when that
	// probe did not run or failed.
	KeyStatus KeyStatus
	// Relays are the target's relays as host:R when it has several; nil
	// for one. Result.Relay indexes it.
	Relays []string
	// Probes holds one Result per selected probe, in run order; with
	// several relays, the relay probes of the first relay come where a
	// single relay's would, and every other relay's follow at the end.
	Probes []Result
}

// ProbeLabel names p as check reports it: its name, or for a relay probe
// of a target with several relays relay[HOST:R] / relay-ws[HOST:R].
func (r *TargetResult) ProbeLabel(p Result) string {
	if len(r.Relays) > 1 && (p.Name == Relay || p.Name == RelayWS) && int(p.Relay) < len(r.Relays) {
		return string(p.Name) + "[" + r.Relays[p.Relay] + "]"
	}
	return string(p.Name)
}

// RelayOf is the relay (host:R) a relay probe ran against when the target
// has several relays, else "".
func (r *TargetResult) RelayOf(p Result) string {
	if len(r.Relays) > 1 && (p.Name == Relay || p.Name == RelayWS) && int(p.Relay) < len(r.Relays) {
		return r.Relays[p.Relay]
	}
	return ""
}

// Check runs the selected probes against every target, at most
// opts.Concurrency at a time, each bounded by opts.Timeout, the whole
// bounded by opts.Deadline and ctx. It sends traffic only to the targets
// (and, for a direct target named by DNS, opts.Resolver). Results come
// back in the order of targets, one per address of a target whose name
// resolves to several (unless opts.FirstAddress). The error is non-nil only
// for invalid options or targets, before anything is sent.
func Check(ctx context.Context, targets []Target, opts Options) ([]TargetResult, error) {
	if slices.ContainsFunc(targets, Target.Proxied) {
		return checkProxied(ctx, targets, opts)
	}
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	opts.Probes = plainOnly(opts.Probes) // the proxy probes need a proxied target
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
	f := &fleet{opts: opts, units: make([]unit, 0, len(targets)), results: make([]TargetResult, 0, len(targets))}
	if opts.SharedUDP {
		f.udp = sharedUDP()
	} else {
		f.udp = newUDPMux()
		defer f.udp.close()
	}
	addrs := f.resolveAll(ctx, targets)
	relayProbes := 0
	for _, n := range opts.Probes {
		if n == Relay || n == RelayWS {
			relayProbes++
		}
	}
	total := 0
	for i, t := range targets {
		main := &resolved{host: t.Host, direct: t.Dial == nil, resolver: opts.Resolver, pin: opts.pin(t.Host)}
		mains := []*resolved{main}
		if a := addrs[i]; a.err != nil {
			main.set("", a.err)
		} else if len(a.ips) > 0 {
			mains = mains[:0]
			for _, ip := range a.ips {
				r := &resolved{host: t.Host}
				r.set(ip.String(), nil)
				mains = append(mains, r)
			}
		}
		eps := t.relays()
		var labels []string
		relayRes := make([]*resolved, len(eps))
		for k, e := range eps {
			if len(eps) > 1 {
				labels = append(labels, e.String())
			}
			if e.Host != t.Host {
				relayRes[k] = &resolved{host: e.Host, direct: t.Dial == nil, resolver: opts.Resolver, pin: opts.pin(e.Host)}
			}
		}
		for _, m := range mains {
			u := unit{target: t, main: m, relays: make([]relayEnd, len(eps))}
			for k, e := range eps {
				u.relays[k] = relayEnd{host: e.Host, port: e.port(), res: relayRes[k]}
				if u.relays[k].res == nil {
					u.relays[k].res = m // the target's own host: the same address
				}
			}
			res := TargetResult{Target: t, Via: t.via(), KeyStatus: KeyUnknown, Relays: labels,
				Probes: make([]Result, 0, len(opts.Probes)+(len(eps)-1)*relayProbes)}
			for _, n := range opts.Probes {
				res.Probes = append(res.Probes, Result{Name: n, Proto: n.Proto(), Port: u.portOf(n, 0)})
			}
			for k := 1; k < len(eps); k++ {
				for _, n := range opts.Probes {
					if n == Relay || n == RelayWS {
						res.Probes = append(res.Probes, Result{Name: n, Proto: n.Proto(), Port: u.portOf(n, k), Relay: uint8(k)})
					}
				}
			}
			total += len(res.Probes)
			f.units = append(f.units, u)
			f.results = append(f.results, res)
		}
	}

	// With both relay probes selected, one job runs them together: one
	// pairing across hbbr's TCP and WebSocket ports (RelayAcross), whose
	// two sides connect at once, so it takes two of the Concurrency slots
	// (and is split when there is only one).
	across := slices.Contains(opts.Probes, Relay) && slices.Contains(opts.Probes, RelayWS) && opts.Concurrency >= 2
	type job struct{ target, probe, partner, weight int }
	// Slots are taken here, by one goroutine, so a job of weight 2 never
	// waits holding one; at most Concurrency jobs hold slots, so a worker
	// is always free for the next. The workers come from the process's
	// pool (pool.go), so they keep their grown stacks across checks too.
	slots := make(chan struct{}, opts.Concurrency)
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range min(opts.Concurrency, total) {
		wg.Add(1)
		workers.Go(func() {
			defer wg.Done()
			for j := range jobs {
				if j.weight == 2 {
					f.runRelays(ctx, j.target, j.probe, j.partner)
				} else {
					f.run(ctx, j.target, j.probe)
				}
				for range j.weight {
					<-slots
				}
			}
		})
	}
	// Target-major order: a target's probes start close together, so its
	// verdict is ready early and its sockets are short-lived.
dispatch:
	for i := range f.results {
		ps := f.results[i].Probes
		for j := range ps {
			if across && ps[j].Name == RelayWS {
				continue
			}
			weight, partner := 1, -1
			if across && ps[j].Name == Relay {
				weight = 2
				for k := range ps {
					if ps[k].Name == RelayWS && ps[k].Relay == ps[j].Relay {
						partner = k
					}
				}
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
			jobs <- job{i, j, partner, weight}
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
		host := f.units[i].main.dialHost
		if host == "" {
			host = r.Target.Host
		}
		r.Address = net.JoinHostPort(host, strconv.Itoa(r.Target.basePort()))
	}
	return f.results, nil
}

// sharedUDP is the process's long-lived mux (Options.SharedUDP), never
// closed. Its sockets are made on first use; a reply is matched to the
// longest-waiting probe of its source address whichever check it belongs
// to, which is as right as within one check: the replies carry nothing
// else to match by, and every probe of an address waits for the same
// answer.
var sharedUDP = sync.OnceValue(newUDPMux)

type fleet struct {
	opts    Options
	units   []unit
	results []TargetResult
	udp     *udpMux // the rendezvous-udp probes' shared socket (direct targets)
}

// unit is one target at one address: what one TargetResult reports.
type unit struct {
	target Target
	main   *resolved
	relays []relayEnd // at least one
}

// relayEnd is one of a unit's relays.
type relayEnd struct {
	host string // as named, for the WebSocket Host header
	port int
	res  *resolved
}

// portOf is the port probe n uses on u, against relay k for a relay probe.
func (u *unit) portOf(n Name, k int) int {
	switch n {
	case Relay:
		return u.relays[k].port
	case RelayWS:
		return u.relays[k].port + 2
	}
	return u.target.PortOf(n)
}

// addrList is what a target's name resolved to before the probes start:
// nothing (an IP literal, a target dialled by name, FirstAddress), its
// addresses, or the error.
type addrList struct {
	ips []netip.Addr
	err error
}

// resolveAll looks up every direct target's name, unless FirstAddress,
// each lookup bounded by the timeout, at most Concurrency at a time, all
// within ctx (the overall deadline). Addresses are kept in the resolver's
// order, without repeats, at most MaxAddresses.
func (f *fleet) resolveAll(ctx context.Context, targets []Target) []addrList {
	out := make([]addrList, len(targets))
	if f.opts.FirstAddress {
		return out
	}
	sem := make(chan struct{}, f.opts.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		if t.Dial != nil {
			continue
		}
		if _, err := netip.ParseAddr(t.Host); err == nil || f.opts.pin(t.Host).IsValid() {
			continue // an address, or pinned by --resolve: nothing to look up
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i].err = fmt.Errorf("cannot resolve %s: %s", t.Host, stopped(ctx.Err()))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
			defer cancel()
			ips, err := f.opts.Resolver.LookupNetIP(lctx, "ip", t.Host)
			if err != nil {
				out[i].err = fmt.Errorf("cannot resolve %s: %w", t.Host, err)
				return
			}
			for _, ip := range ips {
				ip = ip.Unmap().WithZone("")
				if !slices.Contains(out[i].ips, ip) && len(out[i].ips) < MaxAddresses {
					out[i].ips = append(out[i].ips, ip)
				}
			}
			if len(out[i].ips) == 0 {
				out[i].err = fmt.Errorf("cannot resolve %s: no address", t.Host)
			}
		}()
	}
	wg.Wait()
	return out
}

// resolved looks a host up once per check, so every probe of a target hits
// the same address.
type resolved struct {
	host     string
	direct   bool
	resolver Resolver
	pin      netip.Addr // from Options.Resolve: used instead of a lookup
	once     sync.Once
	// set by once:
	dialHost string
	err      error
}

// set settles r's address (or error) before any probe asks.
func (r *resolved) set(host string, err error) {
	r.once.Do(func() { r.dialHost, r.err = host, err })
}

func (r *resolved) get(ctx context.Context) (string, error) {
	r.once.Do(func() {
		if r.pin.IsValid() {
			r.dialHost = r.pin.Unmap().String()
			return
		}
		if ip, err := netip.ParseAddr(r.host); err == nil {
			r.dialHost = ip.Unmap().String()
			return
		}
		if !r.direct {
			r.dialHost = r.host
			return
		}
		ips, err := r.resolver.LookupNetIP(ctx, "ip", r.host)
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
	u, r := &f.units[i], &f.results[i].Probes[j]
	t, name := u.target, r.Name
	if f.stopped(ctx, r) {
		return
	}
	dial := f.dial(t)
	pctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	start := time.Now()
	res, hostName := u.main, t.Host
	if name == Relay || name == RelayWS {
		res, hostName = u.relays[r.Relay].res, u.relays[r.Relay].host
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
	u, rr, rw := &f.units[i], &f.results[i].Probes[jr], &f.results[i].Probes[jw]
	t, end := u.target, u.relays[rr.Relay]
	if f.stopped(ctx, rr) {
		f.stopped(ctx, rw)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	start := time.Now()
	host, err := end.res.get(pctx)
	if err != nil {
		f.finish(ctx, rr, start, "", err)
		f.finish(ctx, rw, start, "", err)
		return
	}
	wsPort := strconv.Itoa(rw.Port)
	err = RelayAcross(pctx, f.dial(t), net.JoinHostPort(host, strconv.Itoa(rr.Port)),
		net.JoinHostPort(host, wsPort), net.JoinHostPort(end.host, wsPort), f.opts.Key)
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
		workers.Go(func() {
			defer close(done)
			f.run(ctx, i, jw)
		})
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
	return keyProbeWith(func(k string) (bool, error) { return PunchHole(ctx, dial, addr, k) }, key, strict, rnd)
}

// keyProbeWith is keyProbe with each punch-hole exchange made by punch.
func keyProbeWith(punch func(key string) (bool, error), key string, strict bool, rnd io.Reader) (KeyStatus, string, error) {
	if key == "" {
		accepted, err := punch("")
		switch {
		case err != nil:
			return KeyUnknown, "", err
		case accepted:
			return KeyUnenforced, "any key accepted: the server enforces none", nil
		}
		return KeyUnknown, "the server enforces a key; none was given to compare", nil
	}
	st, err := keyCheckWith(punch, key, strict, rnd)
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
