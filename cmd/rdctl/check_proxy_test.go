package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// proxiedStandins is a stand-in pair behind a TLS reverse proxy for
// rd.test. The proxy listens on another loopback address than the pair,
// so the pair's own ports are not where rd.test points (as if firewalled);
// the tests use --ws-only, --resolve and --ca-file.
type proxiedStandins struct {
	key, url, resolve, caFile string
}

func startProxiedStandins(t *testing.T, mode hbbstest.ProxyMode) *proxiedStandins {
	t.Helper()
	pair := hbbstest.StartPair(t, hbbstest.Options{}, &hbbstest.Options{})
	ca := hbbstest.NewCA(t)
	if mode.TLS == nil {
		c := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), "rd.test")
		mode.TLS = &c
	}
	bind := hbbstest.RandomLoopback()
	for bind == pair.Bind {
		bind = hbbstest.RandomLoopback()
	}
	port := hbbstest.StartProxy(t, bind, pair, mode)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &proxiedStandins{key: pair.HBBS.Key(), url: fmt.Sprintf("wss://rd.test:%d", port), resolve: "rd.test:" + bind, caFile: caFile}
}

func TestCheckProxiedJSON(t *testing.T) {
	t.Parallel()
	s := startProxiedStandins(t, hbbstest.ProxyMode{})
	code, stdout, stderr := runInProcess(t, "--json", "check", s.url, "--ws-only", "--resolve", s.resolve, "--ca-file", s.caFile, "--key", s.key, "--strict")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if !out.OK || !out.WSOnly || len(out.Targets) != 1 {
		t.Fatalf("%s", stdout)
	}
	tr := out.Targets[0]
	if tr.Target != s.url || tr.KeyStatus != "match" || !strings.HasPrefix(tr.Address, strings.TrimPrefix(s.resolve, "rd.test:")+":") {
		t.Errorf("target %+v", tr)
	}
	var names []string
	for _, p := range tr.Probes {
		names = append(names, p.Name)
		if !p.OK || p.Cause != "" || p.Hint != "" {
			t.Errorf("probe %+v", p)
		}
	}
	if got := strings.Join(names, " "); got != "proxy-tls proxy-id proxy-real-ip proxy-key proxy-register proxy-relay exposed-id exposed-relay" {
		t.Errorf("probes %s", got)
	}
	if p := probeNamed(t, tr, "exposed-id"); p.Port != 21118 || p.Proto != "ws" {
		t.Errorf("exposed-id %+v", p)
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestCheckProxiedText(t *testing.T) {
	t.Parallel()
	s := startProxiedStandins(t, hbbstest.ProxyMode{NoRealIP: true})
	code, stdout, stderr := runInProcess(t, "check", s.url, "--ws-only", "--resolve", s.resolve, "--ca-file", s.caFile, "--key", s.key)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		s.url + "  ok  key match",
		"proxy-register", "NOT_SUPPORT, the open-source hbbs",
		"--ws-only: the direct ports were not probed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stdout, "  proxy-id ") || !strings.Contains(stdout, "WARN") {
		t.Errorf("no proxy-id warning row:\n%s", stdout)
	}
	if !strings.Contains(stderr, "rdctl: warning: "+s.url+": proxy-id: TestNat over /ws/id reported port") {
		t.Errorf("stderr: %s", stderr)
	}
}

// TestCheckProxiedFailureHints: a broken proxy is exit 1, its cause in the
// JSON and a hint naming the fix on stderr.
func TestCheckProxiedFailureHints(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		mode  hbbstest.ProxyMode
		probe string
		cause string
		hint  string
	}{
		{"wrong location", hbbstest.ProxyMode{OnlyRoot: true}, "proxy-id", "not-routed", "rdctl proxy nginx --domain rd.test"},
		{"X-Real-IP passed through", hbbstest.ProxyMode{PassRealIP: true}, "proxy-real-ip", "real-ip-passed-through", "proxy_set_header X-Real-IP $remote_addr"},
		{"no upgrade", hbbstest.ProxyMode{NoUpgrade: true}, "proxy-id", "bad-gateway", "proxy_http_version 1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startProxiedStandins(t, c.mode)
			args := []string{"check", s.url, "--ws-only", "--resolve", s.resolve, "--ca-file", s.caFile, "--key", s.key}
			code, stdout, stderr := runInProcess(t, args...)
			if code != 1 || !strings.Contains(stderr, "rdctl: hint: "+c.probe+": ") || !strings.Contains(stderr, c.hint) {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			code, stdout, _ = runInProcess(t, append([]string{"--json"}, args...)...)
			p := probeNamed(t, decodeCheck(t, stdout).Targets[0], c.probe)
			if code != 1 || p.OK || p.Cause != c.cause || !strings.Contains(p.Hint, c.hint) {
				t.Fatalf("exit %d: %+v", code, p)
			}
		})
	}
	// An untrusted certificate: without --ca-file the test CA is unknown.
	s := startProxiedStandins(t, hbbstest.ProxyMode{})
	code, stdout, stderr := runInProcess(t, "check", s.url, "--ws-only", "--resolve", s.resolve, "--key", s.key)
	if code != 1 || !strings.Contains(stdout, "does not lead to a trusted root") || !strings.Contains(stderr, "--ca-file CA.pem") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestCheckResolvePlainTarget: --resolve pins a plain target's name too,
// so no lookup happens (rd.test exists in no DNS).
func TestCheckResolvePlainTarget(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	target := fmt.Sprintf("rd.test:%d", s.port)
	code, stdout, stderr := runInProcess(t, "--json", "check", target, "--resolve", "RD.test:"+s.bind, "--key", s.hbbs.Key())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	tr := decodeCheck(t, stdout).Targets[0]
	if tr.Target != target || tr.Address != s.target || tr.KeyStatus != "match" || len(tr.Probes) != 6 {
		t.Fatalf("%+v", tr)
	}
}
