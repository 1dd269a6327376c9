package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/fleet"
	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
)

// standins is an hbbs stand-in on P and, unless skipped, an hbbr stand-in
// on P+1 on one 127.0.0.x address: the real servers' layout with -p.
type standins struct {
	hbbs, hbbr *hbbstest.Server
	target     string // "127.0.0.x:P"
	bind       string
	port       int
}

// startStandins starts the pair in dir (a temp dir when "") on a random
// loopback address; see hbbstest.StartPair.
func startStandins(t *testing.T, dir string, hs hbbstest.Options, hr *hbbstest.Options) *standins {
	t.Helper()
	hs.Dir = dir
	p := hbbstest.StartPair(t, hs, hr)
	return &standins{hbbs: p.HBBS, hbbr: p.HBBR, target: fmt.Sprintf("%s:%d", p.Bind, p.Port), bind: p.Bind, port: p.Port}
}

// decodeCheck decodes check --json output, failing on any field outside
// the contract (README.md, "JSON contracts") so a rename cannot slip through.
func decodeCheck(t *testing.T, stdout string) checkJSON {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	wantKeys := func(what string, m map[string]any, required []string, optional ...string) {
		for _, k := range required {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %v", what, k, m)
			}
		}
		for k := range m {
			if !slices.Contains(required, k) && !slices.Contains(optional, k) {
				t.Errorf("%s: unexpected field %q", what, k)
			}
		}
	}
	wantKeys("check", raw, []string{"ok", "targets"}, "elapsed_ms", "ws_only")
	for _, tr := range raw["targets"].([]any) {
		tm := tr.(map[string]any)
		wantKeys("target", tm, []string{"target", "address", "via", "ok", "key_status", "probes"})
		for _, p := range tm["probes"].([]any) {
			wantKeys("probe", p.(map[string]any), []string{"name", "proto", "port", "ok", "ms", "error"}, "note", "relay", "warning", "cause", "hint")
		}
	}
	var out checkJSON
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func probeNamed(t *testing.T, tr checkTargetJSON, name string) checkProbeJSON {
	t.Helper()
	for _, p := range tr.Probes {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no probe %s in %+v", name, tr)
	return checkProbeJSON{}
}

func TestCheckAllOKJSON(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	code, stdout, stderr := runInProcess(t, "--json", "check", s.target, "--key", s.hbbs.Key())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if !out.OK || len(out.Targets) != 1 {
		t.Fatalf("%s", stdout)
	}
	tr := out.Targets[0]
	if tr.Target != s.target || tr.Address != s.target || tr.Via != "direct" || !tr.OK || tr.KeyStatus != "match" {
		t.Errorf("target: %+v", tr)
	}
	want := []struct {
		name, proto string
		port        int
	}{
		{"nat-test", "tcp", s.port - 1}, {"rendezvous-tcp", "tcp", s.port}, {"rendezvous-udp", "udp", s.port},
		{"relay", "tcp", s.port + 1}, {"rendezvous-ws", "ws", s.port + 2}, {"relay-ws", "ws", s.port + 3},
	}
	if len(tr.Probes) != len(want) {
		t.Fatalf("probes: %+v", tr.Probes)
	}
	for i, w := range want {
		p := tr.Probes[i]
		if p.Name != w.name || p.Proto != w.proto || p.Port != w.port || !p.OK || p.Error != "" || p.MS <= 0 {
			t.Errorf("probe %d: %+v, want %+v ok", i, p, w)
		}
	}
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestCheckWrongKeyExit1(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	other := startStandins(t, "", hbbstest.Options{}, nil) // only for a second valid key
	code, stdout, stderr := runInProcess(t, "check", s.target, "--key", other.hbbs.Key())
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"expected key: " + other.hbbs.Key() + " (--key)",
		s.target + "  FAIL  key mismatch  (" + s.target + ", direct)",
		"LICENSE_MISMATCH",
		"0 of 1 targets ok",
		"1 key mismatch",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "rdctl: error: 1 of 1 targets failed the check") || !strings.Contains(stderr, "rdctl: hint: ") {
		t.Errorf("stderr: %s", stderr)
	}

	code, stdout, _ = runInProcess(t, "--json", "check", s.target, "--key", other.hbbs.Key())
	out := decodeCheck(t, stdout)
	if code != 1 || out.OK || out.Targets[0].KeyStatus != "mismatch" {
		t.Errorf("exit %d: %s", code, stdout)
	}
}

func TestCheckRelayDown(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.Relay}})
	code, stdout, stderr := runInProcess(t, "check", s.target, "--key", s.hbbs.Key())
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var relayLine string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "relay ") {
			relayLine = l
		}
	}
	if f := strings.Fields(relayLine); len(f) < 7 || f[3] != "FAIL" || !strings.HasSuffix(relayLine, "connection refused") {
		t.Errorf("relay row %q in\n%s", relayLine, stdout)
	}
	if !strings.Contains(stdout, "key match") || !strings.Contains(stdout, "5 of 6 probes passed") {
		t.Errorf("%s", stdout)
	}
}

func TestCheckUDPMuted(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{Mute: []hbbstest.Listener{hbbstest.RendezvousUDP}}, &hbbstest.Options{})
	start := time.Now()
	code, stdout, _ := runInProcess(t, "--json", "check", s.target, "--key", s.hbbs.Key(), "--timeout", "500ms")
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %s with --timeout 500ms", elapsed)
	}
	out := decodeCheck(t, stdout)
	p := probeNamed(t, out.Targets[0], "rendezvous-udp")
	if code != 1 || p.OK || p.Error != "no answer within 500ms" || p.MS < 450 || p.MS > 900 {
		t.Errorf("exit %d, %+v", code, p)
	}
}

func TestCheckStrictUnenforced(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{Key: new("")}, &hbbstest.Options{Key: new("")})
	pub := s.hbbs.FilePublicKey()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "match"},
		{[]string{"--strict"}, "unenforced"},
	} {
		code, stdout, stderr := runInProcess(t, append([]string{"--json", "check", s.target, "--key", pub}, tc.args...)...)
		out := decodeCheck(t, stdout)
		if code != 0 || out.Targets[0].KeyStatus != tc.want {
			t.Errorf("%v: exit %d, key %s\n%s", tc.args, code, out.Targets[0].KeyStatus, stderr)
		}
	}
}

func TestCheckLoopbackConsoleNote(t *testing.T) {
	t.Parallel()
	c := hbbstest.LoopbackConsole
	s := startStandins(t, "", hbbstest.Options{ConsoleRule: c}, &hbbstest.Options{ConsoleRule: c})
	code, stdout, _ := runInProcess(t, "--json", "check", s.target, "--key", s.hbbs.Key())
	out := decodeCheck(t, stdout)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stdout)
	}
	if p := probeNamed(t, out.Targets[0], "nat-test"); p.Note != "admin console (loopback source)" {
		t.Errorf("nat-test: %+v", p)
	}
	if p := probeNamed(t, out.Targets[0], "relay"); !strings.HasPrefix(p.Note, "admin console (loopback source)") {
		t.Errorf("relay: %+v", p)
	}
}

// With no target and no --key, check takes both from the deployment
// record: the ID host, and the key derived from the secret in its working
// directory, which the stand-in serves.
func TestCheckFromRecord(t *testing.T) {
	t.Parallel()
	root, wd, host, port := recordedStandins(t)

	code, stdout, stderr := runInProcess(t, "--root", root, "--json", "check")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	out := decodeCheck(t, stdout)
	if tr := out.Targets[0]; tr.Target != fmt.Sprintf("%s:%d", host, port) || tr.KeyStatus != "match" {
		t.Errorf("%+v", tr)
	}
	code, stdout, _ = runInProcess(t, "--root", root, "check")
	pub, _ := os.ReadFile(filepath.Join(wd, keys.PublicFile))
	if code != 0 || !strings.Contains(stdout, "expected key: "+string(pub)+" (id_ed25519 in "+wd+")") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
}

func TestCheckTargetsFile(t *testing.T) {
	t.Parallel()
	s := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	file := filepath.Join(t.TempDir(), "fleet.txt")
	// 127.0.0.1:2 has nothing listening: P-1 = 1 ... R+2 = 5.
	writeFile(t, file, []byte("# fleet\n\n"+s.target+"  # the live one\n127.0.0.1:2\n"+s.target+"\n"))
	code, stdout, stderr := runInProcess(t, "--json", "check", "--targets-file", file, "--key", s.hbbs.Key(), "--concurrency", "3")
	out := decodeCheck(t, stdout)
	if code != 1 || out.OK || len(out.Targets) != 2 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !out.Targets[0].OK || out.Targets[1].OK || out.Targets[1].Target != "127.0.0.1:2" || out.Targets[1].KeyStatus != "unknown" {
		t.Errorf("%s", stdout)
	}
	for _, p := range out.Targets[1].Probes {
		if p.OK || p.Error != "connection refused" {
			t.Errorf("refused target %s: %+v", p.Name, p)
		}
	}
}

func TestCheckRejectsSecretKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, stderr := runInProcess(t, "-q", "key", "gen", "--dir", dir); code != 0 {
		t.Fatal(stderr)
	}
	secret, err := os.ReadFile(filepath.Join(dir, keys.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runInProcess(t, "check", "127.0.0.1:2", "--key", string(secret))
	if code != exitUsage || !strings.Contains(stderr, "--key: that is a secret key") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout+stderr, string(secret[:40])) {
		t.Error("the secret was echoed")
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"rd.example.com", "127.0.0.1:2", "[::1]:21116", "[::1]", "::1", "h:65533", "h:65534", "h:0", "a b", "[x]:1", "host:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := fleet.ParseTarget(s)
		if err != nil {
			return
		}
		if err := tg.Validate(); err != nil {
			t.Fatalf("%q parsed but does not validate: %v", s, err)
		}
		for _, n := range probe.Names() {
			if p := tg.PortOf(n); p < 1 || p > 65535 {
				t.Fatalf("%q: %s on port %d", s, n, p)
			}
		}
		if strings.ContainsAny(tg.Host, "[] \t\n") || tg.Name != s {
			t.Fatalf("%q: %+v", s, tg)
		}
	})
}

// check tunes the collector for its many short-lived allocations, unless
// the user's GOGC or GOMEMLIMIT says otherwise. (Not parallel: it sets the
// process-wide collector settings and restores them.)
func TestTuneGCForCheck(t *testing.T) {
	restorePercent := debug.SetGCPercent(100)
	restoreLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(restorePercent)
		debug.SetMemoryLimit(restoreLimit)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGCForCheck()
	if p, l := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64); p != checkGCPercent || l != checkMemoryLimit {
		t.Errorf("without GOGC/GOMEMLIMIT: GC percent %d, limit %d; want %d, %d", p, l, checkGCPercent, checkMemoryLimit)
	}

	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "1GiB")
	tuneGCForCheck()
	if p, l := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64); p != 100 || l != math.MaxInt64 {
		t.Errorf("with GOGC/GOMEMLIMIT set: GC percent %d, limit %d; want them left alone", p, l)
	}
}

// recordedStandins installs an image tree whose record names an hbbs and
// hbbr stand-in pair on a random loopback address, started on the tree's
// key. The record names the ports, so a bind race means installing again
// with other ports (install updates the record in place).
func recordedStandins(t *testing.T) (root, wd, host string, port int) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "img")
	wd = filepath.Join(root, "var/lib/rustdesk")
	host = fmt.Sprintf("127.0.%d.%d", rand.IntN(200)+20, rand.IntN(250)+2)
	var lastErr error
	for attempt := 0; attempt < 10 && port == 0; attempt++ {
		p, err := hbbstest.FreeBasePort(host)
		if err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runInProcess(t, "-q", "install", "systemd", "--root", root, "--no-start",
			"--relay", fmt.Sprintf("%s:%d", host, p+1), "--id-host", fmt.Sprintf("%s:%d", host, p))
		if code != 0 {
			t.Fatalf("install: exit %d: %s", code, stderr)
		}
		s, err := hbbstest.StartHBBS(context.Background(), hbbstest.Options{Dir: wd, Bind: host, Port: p, ConsoleRule: hbbstest.NeverConsole})
		if lastErr = err; err != nil {
			continue
		}
		t.Cleanup(func() { s.Close() })
		r, err := hbbstest.StartHBBR(context.Background(), hbbstest.Options{Dir: wd, Bind: host, Port: p + 1, Key: new("_"), ConsoleRule: hbbstest.NeverConsole})
		if lastErr = err; err != nil {
			s.Close()
			continue
		}
		t.Cleanup(func() { r.Close() })
		port = p
	}
	if port == 0 {
		t.Fatalf("could not start the stand-ins: %v", lastErr)
	}
	return root, wd, host, port
}

// The exporter runs on one P unless GOMAXPROCS says otherwise.
func TestTuneRuntimeForExporter(t *testing.T) {
	restoreProcs := runtime.GOMAXPROCS(0)
	restorePercent := debug.SetGCPercent(100)
	restoreLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(restoreProcs)
		debug.SetGCPercent(restorePercent)
		debug.SetMemoryLimit(restoreLimit)
	})
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "")
	tuneRuntimeForExporter()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("without GOMAXPROCS: %d Ps, want 1", n)
	}
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "4")
	tuneRuntimeForExporter()
	if n := runtime.GOMAXPROCS(0); n != 4 {
		t.Errorf("with GOMAXPROCS=4: %d Ps, want them left alone", n)
	}
}
