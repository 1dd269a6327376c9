// Package exporter is rdctl exporter: an HTTP server in the style of
// Prometheus's blackbox_exporter. GET /probe?target=HOST[:PORT]&module=NAME
// runs one check of that target with the probes of rdctl check and returns
// its metrics; GET /metrics returns the exporter's own. The same renderer
// writes the metrics of rdctl check --prometheus.
package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rdctl/rdctl/internal/fleet"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/tailnet"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// DefaultListen is where the exporter listens without --listen: loopback
// only, so nothing outside the host can make it probe until the operator
// says so.
const DefaultListen = "127.0.0.1:9752"

// DefaultMaxInFlight bounds the probe requests served at once; one more
// is answered 503 at once rather than queued.
const DefaultMaxInFlight = 128

// DefaultScrapeOffset is taken off the scrape's timeout, so the reply
// reaches Prometheus before it gives up.
const DefaultScrapeOffset = 500 * time.Millisecond

// Server timeouts. A probe request may take up to MaxTimeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = MaxTimeout + 10*time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	shutdownGrace     = 10 * time.Second
)

// Resolver looks up a host's addresses (net.Resolver has this method).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures New.
type Options struct {
	Config *Config
	// Allow limits the targets; nil allows any (but unspecified and
	// multicast addresses).
	Allow *AllowList
	// Logger receives one line per refused request and per failed probe
	// (debug: every probe); nil discards.
	Logger *slog.Logger
	// MaxInFlight bounds concurrent probe requests; 0 = DefaultMaxInFlight.
	MaxInFlight int
	// Resolver resolves target names; nil = net.DefaultResolver.
	Resolver Resolver
	// TailscaleSocket is tailscaled's LocalAPI socket for modules with
	// tailnet: true ("" = the platform's).
	TailscaleSocket string
	// ScrapeOffset: see DefaultScrapeOffset; 0 = that.
	ScrapeOffset time.Duration
}

// Server is the exporter.
type Server struct {
	opts  Options
	slots chan struct{}
	reg   *prometheus.Registry
	m     selfMetrics
}

type selfMetrics struct {
	probes   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// Reasons a probe request is refused, the reason label of
// rustdesk_exporter_requests_refused_total.
const (
	RefusedMethod        = "method"
	RefusedMissingTarget = "missing_target"
	RefusedBadTarget     = "bad_target"
	RefusedUnknownModule = "unknown_module"
	RefusedNotAllowed    = "not_allowed"
	RefusedBusy          = "busy"
)

// SelfMetricNames lists the exporter's own metric names (besides the Go
// runtime's go_* and the process's process_*).
func SelfMetricNames() []string {
	return []string{"rustdesk_exporter_probes_total", "rustdesk_exporter_requests_refused_total",
		"rustdesk_exporter_probe_duration_seconds", "rustdesk_exporter_probes_in_flight"}
}

// New checks opts and builds the server.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || len(opts.Config.Modules) == 0 {
		return nil, errors.New("exporter: no modules")
	}
	if opts.MaxInFlight < 0 || opts.ScrapeOffset < 0 {
		return nil, errors.New("exporter: negative limit")
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.ScrapeOffset == 0 {
		opts.ScrapeOffset = DefaultScrapeOffset
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	s := &Server{opts: opts, slots: make(chan struct{}, opts.MaxInFlight), reg: prometheus.NewPedanticRegistry()}
	s.m = selfMetrics{
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rustdesk_exporter_probes_total",
			Help: "Probe requests run, by module and result (success: probe_success was 1)."}, []string{"module", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rustdesk_exporter_requests_refused_total",
			Help: "Probe requests refused before anything was probed, by reason."}, []string{"reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rustdesk_exporter_probe_duration_seconds",
			Help:    "How long probe requests took, by module.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"module"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rustdesk_exporter_probes_in_flight",
			Help: "Probe requests being served now."}),
	}
	for _, name := range opts.Config.ModuleNames() {
		s.m.probes.WithLabelValues(name, "success")
		s.m.probes.WithLabelValues(name, "failure")
		s.m.duration.WithLabelValues(name)
	}
	for _, r := range []string{RefusedMethod, RefusedMissingTarget, RefusedBadTarget, RefusedUnknownModule, RefusedNotAllowed, RefusedBusy} {
		s.m.refused.WithLabelValues(r)
	}
	s.reg.MustRegister(s.m.probes, s.m.refused, s.m.duration, s.m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// Handler serves /probe, /metrics and a short index on a mux of its own:
// nothing registered on http.DefaultServeMux (net/http/pprof, linked in
// by tailscale.com) is reachable.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/probe", s.serveProbe)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "rdctl exporter\n\n/probe?target=HOST[:PORT]&module=NAME  check one RustDesk server\n/metrics                               the exporter's own metrics\n")
	})
	return mux
}

// Serve serves on ln until ctx ends, then stops gracefully: no new
// connections, requests in flight get up to 10 s to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.opts.Logger.Info("stopping", "reason", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

// badRequest refuses a request with a one-line reason.
func (s *Server) refuse(w http.ResponseWriter, code int, reason, msg string, attrs ...any) {
	s.m.refused.WithLabelValues(reason).Inc()
	level := slog.LevelInfo
	if reason == RefusedBusy {
		level = slog.LevelWarn // the exporter is too small for its load
	}
	s.opts.Logger.Log(context.Background(), level, "probe refused", append([]any{"reason", reason, "detail", msg}, attrs...)...)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.refuse(w, http.StatusMethodNotAllowed, RefusedMethod, "only GET and HEAD")
		return
	}
	q := r.URL.Query()
	targets := q["target"]
	switch {
	case len(targets) == 0 || targets[0] == "":
		s.refuse(w, http.StatusBadRequest, RefusedMissingTarget, "missing target parameter (target=HOST[:PORT])")
		return
	case len(targets) > 1:
		s.refuse(w, http.StatusBadRequest, RefusedBadTarget, "more than one target parameter")
		return
	}
	raw := targets[0]
	modName := q.Get("module")
	if modName == "" {
		modName = DefaultModule
	}
	mod, ok := s.opts.Config.Modules[modName]
	if !ok {
		s.refuse(w, http.StatusBadRequest, RefusedUnknownModule, fmt.Sprintf("unknown module %s", textsafe.Echo(modName)))
		return
	}
	t, err := fleet.ParseTarget(raw)
	if err != nil {
		s.refuse(w, http.StatusBadRequest, RefusedBadTarget, oneLine(err.Error()))
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		s.refuse(w, http.StatusServiceUnavailable, RefusedBusy, fmt.Sprintf("too many probes in flight (%d); try again", cap(s.slots)))
		return
	}
	defer func() { <-s.slots }()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()

	timeout := s.timeout(r, mod)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	start := time.Now()
	res, allowed, err := s.route(ctx, mod, t)
	if !allowed {
		s.refuse(w, http.StatusBadRequest, RefusedNotAllowed, fmt.Sprintf("target %s is not allowed by --allow-targets", textsafe.Echo(raw)))
		return
	}
	var results []probe.TargetResult
	if err == nil {
		results, err = probe.Check(ctx, []probe.Target{res.target}, probe.Options{
			Key: mod.Key, Strict: mod.Strict, Probes: mod.Probes, SharedUDP: true,
			Timeout: timeout, Deadline: timeout, Concurrency: 8,
			// A name is checked at each address route resolved and
			// allowed, and at no other: this resolver answers only that.
			Resolver: res.addrs,
		})
	}
	if err != nil { // the name did not resolve: no probe ran
		results = []probe.TargetResult{unresolved(t, mod, res.via, err)}
	}
	elapsed := time.Since(start)
	allOK := true
	reports := make([]Report, len(results))
	for i := range results {
		r := &results[i]
		r.Target.Name = raw
		allOK = allOK && r.OK
		reports[i] = Report{Result: *r, Duration: elapsed}
		level := slog.LevelDebug
		if !r.OK {
			level = slog.LevelInfo
		}
		if s.opts.Logger.Enabled(ctx, level) {
			s.opts.Logger.Log(ctx, level, "probe", "target", textsafe.Escape(raw), "module", mod.Name, "address", r.Address,
				"success", r.OK, "key_status", string(r.KeyStatus), "failed", failedProbes(*r), "seconds", elapsed.Seconds())
		}
	}
	result := "success"
	if !allOK {
		result = "failure"
	}
	s.m.probes.WithLabelValues(mod.Name, result).Inc()
	s.m.duration.WithLabelValues(mod.Name).Observe(elapsed.Seconds())
	var buf bytes.Buffer
	if err := Render(&buf, reports, false); err != nil {
		http.Error(w, "rendering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(TextFormat))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// timeout is the module's, lowered to fit the scrape's own timeout (less
// the offset) when Prometheus sends it.
func (s *Server) timeout(r *http.Request, mod *Module) time.Duration {
	t := mod.Timeout
	h := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if h == "" {
		return t
	}
	secs, err := strconv.ParseFloat(h, 64)
	if err != nil || !(secs > 0) || secs > MaxTimeout.Seconds()*10 { // !(>) catches NaN
		return t
	}
	scrape := time.Duration(secs * float64(time.Second))
	if scrape > 2*s.opts.ScrapeOffset {
		scrape -= s.opts.ScrapeOffset
	} else {
		scrape /= 2
	}
	return min(t, scrape)
}

type routed struct {
	target probe.Target
	via    string
	// addrs answers the lookup of the target's name with the addresses
	// route checked against the allow list (nil for an IP or a tailnet
	// peer, which are not looked up).
	addrs *pinned
}

// pinned is a Resolver that knows one name.
type pinned struct {
	host  string
	addrs []netip.Addr
}

func (p *pinned) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if p == nil || !strings.EqualFold(strings.TrimSuffix(host, "."), strings.TrimSuffix(p.host, ".")) {
		return nil, fmt.Errorf("%s was not resolved and checked against the allow list", host)
	}
	return p.addrs, nil
}

// route resolves t's host once, checks every address against the allow
// list and pins the target to the addresses checked (each is probed), so
// the probes cannot reach another one (a name that resolves differently a
// moment later). A tailnet module asks tailscaled for the peer instead.
// allowed is false when the target must not be probed; err is a
// resolution failure.
func (s *Server) route(ctx context.Context, mod *Module, t probe.Target) (r routed, allowed bool, err error) {
	r.target, r.via = t, probe.ViaDirect
	named := s.opts.Allow.hostAllowed(t.Host)
	var addrs []netip.Addr
	if mod.Tailnet {
		r.via = probe.ViaTailnet
		c := tailnet.New(s.opts.TailscaleSocket)
		st, err := c.Status(ctx)
		if err == nil {
			err = st.Ready()
		}
		if err != nil {
			return r, true, err
		}
		peer, err := st.FindPeer(t.Host)
		if err != nil {
			return r, true, err
		}
		addrs = peer.IPs
		r.target.Host, r.target.Via, r.target.Dial = peer.Addr().String(), probe.ViaTailnet, c.Dial
	} else if ip, perr := netip.ParseAddr(t.Host); perr == nil {
		addrs = []netip.Addr{ip.Unmap()}
		r.target.Host = ip.Unmap().String()
	} else {
		addrs, err = s.opts.Resolver.LookupNetIP(ctx, "ip", t.Host)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			return r, named || s.opts.Allow == nil, fmt.Errorf("cannot resolve %s: %w", t.Host, err)
		}
		r.addrs = &pinned{host: t.Host, addrs: addrs}
	}
	for _, a := range addrs {
		if !s.opts.Allow.addrAllowed(a) && !(named && !a.IsUnspecified() && !a.IsMulticast()) {
			return r, false, nil
		}
	}
	return r, true, nil
}

// unresolved is the result of a target whose name did not resolve: every
// probe failed with that reason, none sent anything.
func unresolved(t probe.Target, mod *Module, via string, err error) probe.TargetResult {
	names := mod.Probes
	if names == nil {
		names = probe.Names()
	}
	r := probe.TargetResult{Target: t, Address: t.String(), Via: via, KeyStatus: probe.KeyUnknown}
	for _, n := range names {
		r.Probes = append(r.Probes, probe.Result{Name: n, Proto: n.Proto(), Port: t.PortOf(n), Error: err.Error()})
	}
	return r
}

func failedProbes(r probe.TargetResult) []string {
	var out []string
	for _, p := range r.Probes {
		if !p.OK {
			out = append(out, string(p.Name)+": "+textsafe.Escape(p.Error))
		}
	}
	return out
}

// oneLine keeps the first line of msg.
func oneLine(msg string) string {
	for i, c := range msg {
		if c == '\n' || c == '\r' {
			return msg[:i]
		}
	}
	return msg
}
