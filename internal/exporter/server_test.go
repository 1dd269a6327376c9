package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	_ "net/http/pprof" // registers on http.DefaultServeMux: the exporter must not serve it
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rdctl/rdctl/internal/golden"
	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/probe"
)

// testServer runs an exporter with cfg (a default module expecting key
// when nil) on an httptest server; logs go to the returned buffer.
func testServer(t testing.TB, opts Options, key string) (*httptest.Server, *Server, *syncBuffer) {
	t.Helper()
	if opts.Config == nil {
		opts.Config = DefaultConfig(key, "test")
	}
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Resolver == nil {
		opts.Resolver = noResolver{}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs, s, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noResolver fails every lookup: tests never ask the system resolver.
type noResolver struct{}

func (noResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("no resolver in tests")
}

// mapResolver answers from a map.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// get requests path on hs with an optional scrape timeout header.
func get(t *testing.T, hs *httptest.Server, path string, scrapeTimeout string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", hs.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if scrapeTimeout != "" {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeout)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func probePath(target, module string) string {
	q := url.Values{"target": {target}}
	if module != "" {
		q.Set("module", module)
	}
	return "/probe?" + q.Encode()
}

// parse reads a text exposition into name{labels} → value.
func parse(t *testing.T, text string) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, text)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			out[seriesKey(name, m)] = value(mf, m)
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.Label {
		ls = append(ls, l.GetName()+"="+l.GetValue())
	}
	if len(ls) == 0 {
		return name
	}
	return name + "{" + strings.Join(ls, ",") + "}"
}

func value(mf *dto.MetricFamily, m *dto.Metric) float64 {
	switch mf.GetType() {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return -1
}

func probeSeries(p probe.Name, port int) string {
	return fmt.Sprintf("rustdesk_probe_success{port=%d,probe=%s,proto=%s}", port, p, p.Proto())
}

func standIn(t *testing.T, hs hbbstest.Options) *hbbstest.Pair {
	return hbbstest.StartPair(t, hs, &hbbstest.Options{})
}

func target(p *hbbstest.Pair) string { return net.JoinHostPort(p.Bind, strconv.Itoa(p.Port)) }

func TestProbeHealthy(t *testing.T) {
	p := standIn(t, hbbstest.Options{})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	code, body := get(t, hs, probePath(target(p), ""), "")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	m := parse(t, body)
	for _, k := range []string{"probe_success", "rustdesk_key_match", "rustdesk_key_status{status=match}"} {
		if m[k] != 1 {
			t.Errorf("%s = %v, want 1\n%s", k, m[k], body)
		}
	}
	tg := probe.Target{Host: p.Bind, Port: p.Port}
	for _, n := range probe.Names() {
		if v, ok := m[probeSeries(n, tg.PortOf(n))]; !ok || v != 1 {
			t.Errorf("%s = %v (present %v), want 1", probeSeries(n, tg.PortOf(n)), v, ok)
		}
	}
	if m["rustdesk_key_status{status=mismatch}"] != 0 || m["rustdesk_console_detected{port="+strconv.Itoa(p.Port-1)+",probe=nat-test,proto=tcp}"] != 0 {
		t.Errorf("mismatch or console reported:\n%s", body)
	}
}

func TestProbeWrongKey(t *testing.T) {
	p := standIn(t, hbbstest.Options{})
	other, _, err := hbbstest.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	hs, _, _ := testServer(t, Options{}, other)
	_, body := get(t, hs, probePath(target(p), ""), "")
	m := parse(t, body)
	if m["rustdesk_key_match"] != 0 || m["rustdesk_key_status{status=mismatch}"] != 1 || m["probe_success"] != 0 {
		t.Errorf("wrong key: key_match %v, mismatch %v, probe_success %v, want 0 1 0\n%s",
			m["rustdesk_key_match"], m["rustdesk_key_status{status=mismatch}"], m["probe_success"], body)
	}
}

func TestProbeUDPStopped(t *testing.T) {
	p := standIn(t, hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.RendezvousUDP}})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	_, body := get(t, hs, probePath(target(p), ""), "")
	m := parse(t, body)
	tg := probe.Target{Host: p.Bind, Port: p.Port}
	for _, n := range probe.Names() {
		want := 1.0
		if n == probe.RendezvousUDP {
			want = 0
		}
		if got := m[probeSeries(n, tg.PortOf(n))]; got != want {
			t.Errorf("%s = %v, want %v", n, got, want)
		}
	}
	if m["probe_success"] != 0 || m["rustdesk_key_match"] != 1 {
		t.Errorf("probe_success %v key_match %v, want 0 1", m["probe_success"], m["rustdesk_key_match"])
	}
}

// countingListener counts the connections to a TCP port.
func countingListener(t *testing.T, addr string) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n
}

func TestBadRequests(t *testing.T) {
	// Something listens on the disallowed address's ports, to see that
	// nothing is probed.
	bind := hbbstest.RandomLoopback()
	base, err := hbbstest.FreeBasePort(bind)
	if err != nil {
		t.Fatal(err)
	}
	var hits []*atomic.Int64
	for _, port := range []int{base - 1, base, base + 1, base + 2, base + 3} {
		hits = append(hits, countingListener(t, net.JoinHostPort(bind, strconv.Itoa(port))))
	}
	outside := net.JoinHostPort(bind, strconv.Itoa(base))
	allow, err := ParseAllowList("192.0.2.0/24, allowed.example")
	if err != nil {
		t.Fatal(err)
	}
	res := mapResolver{
		"smuggle.example": {netip.MustParseAddr(bind)},
		"mixed.example":   {netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr(bind)},
	}
	hs, _, _ := testServer(t, Options{Allow: allow, Resolver: res}, "")
	for _, tt := range []struct {
		name, path, reason, want string
	}{
		{"missing target", "/probe", RefusedMissingTarget, "missing target"},
		{"empty target", "/probe?target=", RefusedMissingTarget, "missing target"},
		{"two targets", "/probe?target=192.0.2.1&target=192.0.2.2", RefusedBadTarget, "more than one target"},
		{"unknown module", probePath("192.0.2.1", "nope"), RefusedUnknownModule, `unknown module "nope"`},
		{"malformed target", probePath("192.0.2.1:99999", ""), RefusedBadTarget, "target"},
		{"malformed host", probePath("bad host!", ""), RefusedBadTarget, "target"},
		{"outside the list", probePath(outside, ""), RefusedNotAllowed, "not allowed"},
		{"name resolving outside", probePath("smuggle.example:"+strconv.Itoa(base), ""), RefusedNotAllowed, "not allowed"},
		{"name with one address outside", probePath("mixed.example:"+strconv.Itoa(base), ""), RefusedNotAllowed, "not allowed"},
		{"unresolvable unlisted name", probePath("unknown.example", ""), RefusedNotAllowed, "not allowed"},
		{"IPv4-mapped outside", probePath("[::ffff:"+bind+"]:"+strconv.Itoa(base), ""), RefusedNotAllowed, "not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, hs, tt.path, "")
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", code, body)
			}
			if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || !strings.Contains(body, tt.want) {
				t.Errorf("body %q: want one line containing %q", body, tt.want)
			}
		})
	}
	_, metrics := get(t, hs, "/metrics", "")
	m := parse(t, metrics)
	if m["rustdesk_exporter_probes_total{module=default,result=failure}"]+m["rustdesk_exporter_probes_total{module=default,result=success}"] != 0 {
		t.Errorf("a refused request was probed:\n%s", metrics)
	}
	if m["rustdesk_exporter_requests_refused_total{reason=not_allowed}"] != 5 {
		t.Errorf("not_allowed refusals = %v, want 5", m["rustdesk_exporter_requests_refused_total{reason=not_allowed}"])
	}
	for i, h := range hits {
		if h.Load() != 0 {
			t.Errorf("port %d of the disallowed address got %d connections", i, h.Load())
		}
	}
}

func TestAllowedNameIsProbedAtTheCheckedAddress(t *testing.T) {
	p := standIn(t, hbbstest.Options{})
	allow, err := ParseAllowList(p.Bind + "/32")
	if err != nil {
		t.Fatal(err)
	}
	res := mapResolver{"server.example": {netip.MustParseAddr(p.Bind)}}
	hs, _, _ := testServer(t, Options{Allow: allow, Resolver: res}, p.HBBS.Key())
	code, body := get(t, hs, probePath("server.example:"+strconv.Itoa(p.Port), ""), "")
	m := parse(t, body)
	if code != 200 || m["probe_success"] != 1 {
		t.Fatalf("status %d, probe_success %v:\n%s", code, m["probe_success"], body)
	}
	if _, ok := m["rustdesk_target_info{address="+target(p)+",via=direct}"]; !ok {
		t.Errorf("target_info does not name the checked address %s:\n%s", target(p), body)
	}
}

func TestUnresolvableTargetFails(t *testing.T) {
	hs, _, _ := testServer(t, Options{}, "")
	code, body := get(t, hs, probePath("nowhere.example", ""), "")
	m := parse(t, body)
	if code != 200 || m["probe_success"] != 0 || m[probeSeries(probe.NATTest, 21115)] != 0 {
		t.Errorf("status %d:\n%s", code, body)
	}
}

func TestPprofNotServed(t *testing.T) {
	hs, _, _ := testServer(t, Options{}, "")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/vars", "/nope"} {
		if code, _ := get(t, hs, path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, body := get(t, hs, "/", ""); code != 200 || !strings.Contains(body, "/probe") {
		t.Errorf("index: %d %q", code, body)
	}
}

func TestScrapeTimeoutHeader(t *testing.T) {
	// Every port accepts and then says nothing: each probe waits for its
	// timeout, which the scrape's header lowers from the module's 20 s.
	p := standIn(t, hbbstest.Options{Mute: []hbbstest.Listener{hbbstest.NAT, hbbstest.Rendezvous, hbbstest.RendezvousUDP, hbbstest.RendezvousWS}})
	cfg := DefaultConfig(p.HBBS.Key(), "test")
	cfg.Modules[DefaultModule].Timeout = 20 * time.Second
	hs, _, _ := testServer(t, Options{Config: cfg}, "")
	start := time.Now()
	_, body := get(t, hs, probePath(target(p), ""), "1.5")
	took := time.Since(start)
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("scrape took %s; want about 1 s (1.5 s header less 0.5 s)", took)
	}
	if m := parse(t, body); m["probe_success"] != 0 || m[probeSeries(probe.NATTest, p.Port-1)] != 0 {
		t.Errorf("muted target passed:\n%s", body)
	}
}

func TestTimeoutFromHeader(t *testing.T) {
	s := &Server{opts: Options{ScrapeOffset: DefaultScrapeOffset}}
	mod := &Module{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{
		{"", 5 * time.Second},
		{"10", 5 * time.Second},
		{"3", 2500 * time.Millisecond},
		{"0.8", 400 * time.Millisecond},
		{"-1", 5 * time.Second},
		{"NaN", 5 * time.Second},
		{"abc", 5 * time.Second},
		{"1e300", 5 * time.Second},
	} {
		r := httptest.NewRequest("GET", "/probe", nil)
		if tt.header != "" {
			r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", tt.header)
		}
		if got := s.timeout(r, mod); got != tt.want {
			t.Errorf("header %q: %s, want %s", tt.header, got, tt.want)
		}
	}
}

func TestBusy(t *testing.T) {
	p := standIn(t, hbbstest.Options{Mute: []hbbstest.Listener{hbbstest.NAT, hbbstest.Rendezvous, hbbstest.RendezvousUDP, hbbstest.RendezvousWS}})
	cfg := DefaultConfig("", "")
	cfg.Modules[DefaultModule].Timeout = 2 * time.Second
	hs, s, _ := testServer(t, Options{Config: cfg, MaxInFlight: 1}, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, hs, probePath(target(p), ""), "")
	}()
	for s.slotsUsed() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	code, body := get(t, hs, probePath(target(p), ""), "")
	if code != http.StatusServiceUnavailable || strings.Count(body, "\n") != 1 {
		t.Errorf("second request: %d %q, want 503 and one line", code, body)
	}
	<-done
}

func (s *Server) slotsUsed() int { return len(s.slots) }

// TestGolden compares a /probe response of a healthy stand-in, durations
// and the address normalised, with testdata/probe.golden.
func TestGolden(t *testing.T) {
	p := standIn(t, hbbstest.Options{})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	_, body := get(t, hs, probePath(target(p), ""), "")
	got := normalise(body, p)
	path := filepath.Join("testdata", "probe.golden")
	if *golden.Update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("/probe differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

var durationLine = regexp.MustCompile(`(?m)^((?:probe|rustdesk_probe)_duration_seconds(?:\{[^}]*\})?) \S+$`)

// normalise replaces what changes between runs: durations, the stand-in's
// address and ports (as offsets from 21116).
func normalise(body string, p *hbbstest.Pair) string {
	body = durationLine.ReplaceAllString(body, "$1 DURATION")
	body = strings.ReplaceAll(body, p.Bind, "ADDR")
	for d := -1; d <= 3; d++ {
		body = strings.ReplaceAll(body, `"`+strconv.Itoa(p.Port+d)+`"`, `"`+strconv.Itoa(21116+d)+`"`)
		body = strings.ReplaceAll(body, ":"+strconv.Itoa(p.Port+d)+`"`, ":"+strconv.Itoa(21116+d)+`"`)
	}
	return body
}

// TestPromtoolCheckMetrics runs promtool check metrics on both endpoints'
// output: no problems reported.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := needTool(t, "promtool")
	p := standIn(t, hbbstest.Options{})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	_, probeOut := get(t, hs, probePath(target(p), ""), "")
	_, selfOut := get(t, hs, "/metrics", "")
	var multi bytes.Buffer
	if err := Render(&multi, []Report{{Result: probe.TargetResult{Target: probe.Target{Name: "a", Host: "a"}, KeyStatus: probe.KeyUnknown}}}, true); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"/probe": probeOut, "/metrics": selfOut, "textfile": multi.String()} {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("promtool check metrics on %s: %v\n%s", name, err, out)
		}
	}
}

// needTool finds a program or skips, except in strict CI (RDCTL_IT_STRICT
// =1), where its absence fails the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("RDCTL_IT_STRICT") == "1" {
		t.Fatalf("%s is not installed (strict mode); scripts/setup-integration installs it (Debian package prometheus)", name)
	}
	t.Skipf("%s is not installed (Debian package prometheus)", name)
	return ""
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestConsoleFromLoopback: an exporter on the server itself reaches hbbs
// and hbbr from loopback, where 21115 and 21117 serve the admin consoles:
// reported as rustdesk_console_detected 1, the probes pass, the key is
// still checked on the rendezvous port.
func TestConsoleFromLoopback(t *testing.T) {
	p := hbbstest.StartPair(t, hbbstest.Options{ConsoleRule: hbbstest.LoopbackConsole}, &hbbstest.Options{ConsoleRule: hbbstest.LoopbackConsole})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	_, body := get(t, hs, probePath(target(p), ""), "")
	m := parse(t, body)
	nat := fmt.Sprintf("rustdesk_console_detected{port=%d,probe=nat-test,proto=tcp}", p.Port-1)
	relay := fmt.Sprintf("rustdesk_console_detected{port=%d,probe=relay,proto=tcp}", p.Port+1)
	if m[nat] != 1 || m[relay] != 1 || m["probe_success"] != 1 || m["rustdesk_key_match"] != 1 {
		t.Errorf("consoles: nat %v relay %v, probe_success %v, key_match %v; want all 1\n%s", m[nat], m[relay], m["probe_success"], m["rustdesk_key_match"], body)
	}
}

// A name with several addresses is probed at each one route checked, and
// every series carries its address: the address where nothing answers
// fails on its own, the healthy one passes.
func TestNameWithSeveralAddressesIsProbedAtEach(t *testing.T) {
	p := standIn(t, hbbstest.Options{})
	allow, err := ParseAllowList("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddr("127.254.253.252") // nothing listens there
	res := mapResolver{"server.example": {netip.MustParseAddr(p.Bind), dead}}
	hs, _, _ := testServer(t, Options{Allow: allow, Resolver: res}, p.HBBS.Key())
	port := strconv.Itoa(p.Port)
	code, body := get(t, hs, probePath("server.example:"+port, ""), "")
	m := parse(t, body)
	good, bad := target(p), net.JoinHostPort(dead.String(), port)
	for series, want := range map[string]float64{
		"probe_success{address=" + good + "}":                                                           1,
		"probe_success{address=" + bad + "}":                                                            0,
		"rustdesk_key_match{address=" + good + "}":                                                      1,
		"rustdesk_probe_success{address=" + good + ",port=" + port + ",probe=rendezvous-udp,proto=udp}": 1,
		"rustdesk_probe_success{address=" + bad + ",port=" + port + ",probe=rendezvous-udp,proto=udp}":  0,
		"rustdesk_probe_success{address=" + bad + ",port=" + port + ",probe=rendezvous-tcp,proto=tcp}":  0,
		"rustdesk_target_info{address=" + bad + ",via=direct}":                                          1,
	} {
		if got, ok := m[series]; code != 200 || !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v; status %d", series, got, ok, want, code)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
}
