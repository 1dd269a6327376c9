package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rdctl/rdctl/internal/exporter"
	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/keys"
)

func defaultExporterArgs() exporterArgs {
	return exporterArgs{listen: exporter.DefaultListen, timeout: exporter.DefaultTimeout,
		maxInFlight: exporter.DefaultMaxInFlight, logLevel: "debug"}
}

// scrapeAll runs an exporter built by setup and returns everything it
// answered and logged for a probe of target, a refused probe, /metrics
// and its index.
func scrapeAll(t *testing.T, s *exporterSetup, logs *bytes.Buffer, target string) (probeBody string, all []byte) {
	t.Helper()
	srv, err := exporter.New(s.opts)
	noErr(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	var out bytes.Buffer
	for _, path := range []string{"/probe?" + url.Values{"target": {target}}.Encode(), "/probe", "/probe?target=a&module=x", "/metrics", "/"} {
		resp, err := http.Get(hs.URL + path)
		noErr(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		noErr(t, err)
		if strings.HasPrefix(path, "/probe?target=1") {
			probeBody = string(b)
		}
		for k, v := range resp.Header {
			out.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		out.Write(b)
	}
	out.Write(logs.Bytes())
	return probeBody, out.Bytes()
}

func gauge(t *testing.T, text, name string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(text))
	noErr(t, err)
	mf, ok := mfs[name]
	if !ok || len(mf.Metric) != 1 {
		t.Fatalf("no single %s in:\n%s", name, text)
	}
	return mf.Metric[0].GetGauge().GetValue()
}

// TestExporterNeverLeaksTheSecret plants a deployment with a secret key,
// runs the exporter's default module from it (the key the record gives),
// scrapes every endpoint and checks no encoding of the secret appears in
// any response or log line.
func TestExporterNeverLeaksTheSecret(t *testing.T) {
	root, pair := leakTree(t)
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, keys.SecretFile), pair.SecretFileBytes(), 0o600))
	noErr(t, os.WriteFile(filepath.Join(dir, keys.PublicFile), pair.PublicFileBytes(), 0o644))
	st := startStandins(t, dir, hbbstest.Options{}, &hbbstest.Options{})
	var logs bytes.Buffer
	e := &env{root: root, stdout: io.Discard, stderr: &logs}
	s, err := e.exporterSetup(defaultExporterArgs(), &logs)
	noErr(t, err)
	body, all := scrapeAll(t, s, &logs, st.target)
	if got := gauge(t, body, "rustdesk_key_match"); got != 1 {
		t.Errorf("key_match %v, want 1 (the key of the record)\n%s", got, body)
	}
	if form := leakedForm(all, []keys.Pair{pair}); form != "" {
		t.Errorf("the exporter's output holds the secret (%s)", form)
	}
	if !strings.Contains(logs.String(), "msg=probe") {
		t.Errorf("no probe logged:\n%s", logs.String())
	}
}

func TestExporterKeyFile(t *testing.T) {
	st := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	pub := filepath.Join(t.TempDir(), "server.pub")
	noErr(t, os.WriteFile(pub, []byte(st.hbbs.Key()+"\n"), 0o644))
	a := defaultExporterArgs()
	a.keyFile = pub
	var logs bytes.Buffer
	e := &env{root: t.TempDir(), stdout: io.Discard, stderr: &logs}
	s, err := e.exporterSetup(a, &logs)
	noErr(t, err)
	body, _ := scrapeAll(t, s, &logs, st.target)
	if gauge(t, body, "rustdesk_key_match") != 1 || gauge(t, body, "probe_success") != 1 {
		t.Errorf("--key-file: \n%s", body)
	}
}

func TestExporterBadInput(t *testing.T) {
	dir := t.TempDir()
	pair, err := keys.Generate(nil)
	noErr(t, err)
	secretPub := filepath.Join(dir, "secret.pub")
	noErr(t, os.WriteFile(secretPub, pair.SecretFileBytes(), 0o600))
	bad := filepath.Join(dir, "bad.yml")
	noErr(t, os.WriteFile(bad, []byte("modules:\n  a:\n    probes: [relay, nope]\n"), 0o644))
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"listen without port", []string{"--listen", "127.0.0.1"}, "--listen"},
		{"listen bad port", []string{"--listen", "127.0.0.1:99999"}, "--listen"},
		{"listen on a name", []string{"--listen", "rd.example.com:9752"}, "must be an IP address"},
		{"log format", []string{"--log-format", "xml"}, "--log-format"},
		{"log level", []string{"--log-level", "loud"}, "--log-level"},
		{"timeout", []string{"--timeout", "2h"}, "--timeout"},
		{"in flight", []string{"--max-in-flight", "0"}, "--max-in-flight"},
		{"key and key file", []string{"--key", pair.PublicBase64(), "--key-file", secretPub}, "exclude"},
		{"secret key file", []string{"--key-file", secretPub}, "secret key"},
		{"secret key", []string{"--key", string(pair.SecretFileBytes())}, "secret key"},
		{"allow list", []string{"--allow-targets", "10.0.0.0/40"}, "--allow-targets"},
		{"modules file", []string{"--modules", bad}, "bad.yml:3: module \"a\": unknown probe"},
		{"missing modules file", []string{"--modules", filepath.Join(dir, "none.yml")}, "none.yml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runInProcess(t, append([]string{"--root", dir, "exporter"}, tt.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
			if form := leakedForm([]byte(stdout+stderr), []keys.Pair{pair}); form != "" {
				t.Errorf("output holds the secret (%s)", form)
			}
		})
	}
}

func TestCheckPrometheusFile(t *testing.T) {
	st := startStandins(t, "", hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.RendezvousUDP}}, &hbbstest.Options{})
	dir := t.TempDir()
	prom := filepath.Join(dir, "rustdesk.prom")
	// --dry-run probes and says it would write the file, and writes nothing.
	code, stdout, stderr := runInProcess(t, "--root", t.TempDir(), "--dry-run", "check", "--key", st.hbbs.Key(), "--prometheus", prom, st.target)
	if ents, _ := os.ReadDir(dir); code != exitFailed || len(ents) != 0 || !strings.Contains(stdout, "would write "+prom) {
		t.Fatalf("dry run: exit %d, %d entries in the directory\n%s%s", code, len(ents), stdout, stderr)
	}
	code, _, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--prometheus", prom, st.target)
	if code != exitFailed {
		t.Fatalf("exit %d (want 1: udp is down): %s", code, stderr)
	}
	b, err := os.ReadFile(prom)
	noErr(t, err)
	text := string(b)
	for _, want := range []string{
		`probe_success{address="` + st.target + `",target="` + st.target + `"} 0`,
		`rustdesk_key_match{address="` + st.target + `",target="` + st.target + `"} 1`,
		`rustdesk_probe_success{address="` + st.target + `",port="` + itoa(st.port) + `",probe="rendezvous-udp",proto="udp",target="` + st.target + `"} 0`,
		`rustdesk_probe_success{address="` + st.target + `",port="` + itoa(st.port) + `",probe="rendezvous-tcp",proto="tcp",target="` + st.target + `"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
	ents, err := os.ReadDir(dir)
	noErr(t, err)
	if len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only rustdesk.prom (no temporary left)", len(ents))
	}
	// A name the textfile collector would not read is refused before
	// anything is probed or written.
	for _, bad := range []string{filepath.Join(dir, "x.txt"), filepath.Join(dir, "none", "x.prom")} {
		code, _, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--prometheus", bad, st.target)
		if code != exitUsage || !strings.Contains(stderr, "--prometheus") {
			t.Errorf("--prometheus %s: exit %d %q, want 2", bad, code, stderr)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestExporterDryRun: --dry-run checks the setup, prints it and serves
// nothing; the JSON names the modules.
func TestExporterDryRun(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "m.yml")
	noErr(t, os.WriteFile(mods, []byte("modules:\n  udp:\n    probes: [rendezvous-udp]\n    timeout: 2s\n"), 0o644))
	code, stdout, stderr := runInProcess(t, "--root", dir, "--json", "exporter", "--dry-run", "--modules", mods, "--listen", "127.0.0.1:1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var out exporterJSON
	noErr(t, json.Unmarshal([]byte(stdout), &out))
	if out.Listen != "127.0.0.1:1" || len(out.Modules) != 2 || out.Modules[0].Name != "default" ||
		out.Modules[1].Name != "udp" || strings.Join(out.Modules[1].Probes, ",") != "rendezvous-udp" || out.Modules[1].TimeoutSeconds != 2 {
		t.Errorf("dry run: %+v", out)
	}
	if code, _, stderr := runInProcess(t, "--root", dir, "exporter", "target"); code != exitUsage || !strings.Contains(stderr, "no arguments") {
		t.Errorf("a positional argument: exit %d %q", code, stderr)
	}
}

// install exporter's unit runs an rdctl that exists: in an image the one
// found there (a warning when none is), and live an explicit --binary that
// is not there is refused before anything is written.
func TestInstallExporterBinary(t *testing.T) {
	root := t.TempDir()
	code, _, stderr := runInProcess(t, "--root", root, "install", "exporter")
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/rdctl-exporter.service"))
	if code != 0 || !strings.Contains(string(unit), "ExecStart=/usr/bin/rdctl exporter") || !strings.Contains(stderr, "no rdctl in the image at") {
		t.Errorf("empty image: exit %d\n%s\n%s", code, stderr, unit)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/rdctl"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runInProcess(t, "--root", root, "install", "exporter")
	unit, _ = os.ReadFile(filepath.Join(root, "etc/systemd/system/rdctl-exporter.service"))
	if code != 0 || !strings.Contains(string(unit), "ExecStart=/usr/local/bin/rdctl exporter") || strings.Contains(stderr, "no rdctl") {
		t.Errorf("image with /usr/local/bin/rdctl: exit %d\n%s\n%s", code, stderr, unit)
	}
	code, _, stderr = runInProcess(t, "--root", root, "install", "exporter", "--binary", "/opt/rdctl/rdctl")
	if code != 0 || !strings.Contains(stderr, `--binary "/opt/rdctl/rdctl" is not in the image yet`) {
		t.Errorf("--binary not in the image: exit %d\n%s", code, stderr)
	}

	// --dry-run: the refusal comes before the plan, and were it ever to
	// regress, the test would still write nothing on this host.
	code, _, stderr = runInProcess(t, "--dry-run", "install", "exporter", "--binary", "/nonexistent/rdctl")
	if code != exitUsage || !strings.Contains(stderr, "no such file on this host") {
		t.Errorf("live --binary that is not there: exit %d\n%s", code, stderr)
	}
}

// uninstall keeps rdctl's exporter without --purge and says how to remove
// it by hand (the record it would need is gone afterwards); with --purge
// the exporter's files go too.
func TestUninstallExporterHint(t *testing.T) {
	for _, purge := range []bool{false, true} {
		root := filepath.Join(t.TempDir(), "img")
		mustRun(t, "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com")
		mustRun(t, "-q", "--root", root, "install", "exporter")
		args := []string{"--root", root, "uninstall"}
		if purge {
			args = append(args, "--purge")
		}
		code, _, stderr := runInProcess(t, args...)
		unit := filepath.Join(root, "etc/systemd/system/rdctl-exporter.service")
		_, statErr := os.Stat(unit)
		hint := strings.Contains(stderr, "rdctl-exporter.service stays, since it may watch other servers") && strings.Contains(stderr, "systemctl disable --now rdctl-exporter.service && rm "+unit)
		if code != 0 || hint == purge || (statErr == nil) == purge {
			t.Errorf("uninstall (purge %v): exit %d, unit there %v, hint %v\n%s", purge, code, statErr == nil, hint, stderr)
		}
	}
}
