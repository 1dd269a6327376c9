//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/hbbstest"
)

// startProcess starts a program of this test, stopped by PID when the test
// ends; its output goes to log.
func startProcess(t *testing.T, log string, name string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("%s:\n%s", filepath.Base(log), b)
		}
	})
	return cmd
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, u string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", u, within)
}

type promSample struct {
	labels map[string]string
	ts     float64
	value  float64
}

// query runs an instant query against Prometheus's HTTP API.
func query(t *testing.T, prom, q string) []promSample {
	t.Helper()
	resp, err := http.Get(prom + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, b)
	}
	var out []promSample
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(s.Value[1].(string), 64)
		out = append(out, promSample{labels: s.Metric, ts: s.Value[0].(float64), value: v})
	}
	return out
}

// waitQuery polls q until ok accepts its result.
func waitQuery(t *testing.T, prom, q string, within time.Duration, ok func([]promSample) bool) []promSample {
	t.Helper()
	deadline := time.Now().Add(within)
	var last []promSample
	for time.Now().Before(deadline) {
		last = query(t, prom, q)
		if ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not as expected within %s; last %+v", q, within, last)
	return nil
}

func one(v float64) func([]promSample) bool {
	return func(s []promSample) bool { return len(s) == 1 && s[0].value == v }
}

// startStandIn starts hbbs and hbbr stand-ins on bind, base port p, keys in
// dir, and returns a stop function.
func startStandIn(t *testing.T, dir, bind string, p int, skip ...hbbstest.Listener) func() {
	t.Helper()
	ctx := context.Background()
	hs, err := hbbstest.StartHBBS(ctx, hbbstest.Options{Dir: dir, Bind: bind, Port: p, ConsoleRule: hbbstest.NeverConsole, Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	hr, err := hbbstest.StartHBBR(ctx, hbbstest.Options{Dir: dir, Bind: bind, Port: p + 1, ConsoleRule: hbbstest.NeverConsole, Key: new("_")})
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			hs.Close()
			hr.Close()
			stopped = true
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestPrometheusScrapesExporter: a real Prometheus (Debian's package, our
// own process on loopback) scrapes the built rdctl exporter probing a
// stand-in: probe_success 1; the stand-in's key rotated under it →
// key_match 0 within two scrape intervals; its UDP listener stopped → the
// udp series 0, the others 1; SIGTERM stops the exporter cleanly.
func TestPrometheusScrapesExporter(t *testing.T) {
	promBin := harness.LookPath(t, "prometheus", "prometheus")
	rdctl := harness.BuildStatic(t, "./cmd/rdctl")
	work := t.TempDir()

	bind := hbbstest.RandomLoopback()
	base, err := hbbstest.FreeBasePort(bind)
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(work, "keys")
	os.Mkdir(keyDir, 0o700)
	stop := startStandIn(t, keyDir, bind, base)
	pub, err := os.ReadFile(filepath.Join(keyDir, "id_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("%s:%d", bind, base)

	expPort := freePort(t)
	exp := startProcess(t, filepath.Join(work, "exporter.log"), rdctl, "--root", work, "exporter",
		"--listen", fmt.Sprintf("127.0.0.1:%d", expPort), "--key", strings.TrimSpace(string(pub)),
		"--allow-targets", "127.0.0.0/8", "--log-format", "json")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", expPort), 10*time.Second)

	const interval = time.Second
	promPort := freePort(t)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rustdesk
    metrics_path: /probe
    params:
      module: [default]
    static_configs:
      - targets: ['%s']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:%d
  - job_name: rdctl-exporter
    static_configs:
      - targets: ['127.0.0.1:%d']
`, target, expPort, expPort)
	cfgPath := filepath.Join(work, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, filepath.Join(work, "prometheus.log"), promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(work, "tsdb"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	prom := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	waitHTTP(t, prom+"/-/ready", 30*time.Second)

	sel := `{job="rustdesk",instance="` + target + `"}`
	waitQuery(t, prom, "probe_success"+sel, 30*time.Second, one(1))
	waitQuery(t, prom, "rustdesk_key_match"+sel, 5*time.Second, one(1))
	waitQuery(t, prom, `up{job="rdctl-exporter"}`, 10*time.Second, one(1))

	// Rotate the stand-in's key under the exporter.
	stop()
	newKeys := filepath.Join(work, "keys2")
	os.Mkdir(newKeys, 0o700)
	rotated := time.Now()
	stop = startStandIn(t, newKeys, bind, base)
	s := waitQuery(t, prom, "timestamp(rustdesk_key_match"+sel+" == 0)", 15*time.Second, func(s []promSample) bool { return len(s) == 1 })
	// The sample's own time: when the scrape that saw the new key ran.
	first := waitQuery(t, prom, "min_over_time(timestamp(rustdesk_key_match"+sel+" == 0)[1m:1s])", 5*time.Second, func(s []promSample) bool { return len(s) == 1 })
	lag := time.Duration((first[0].value - float64(rotated.UnixNano())/1e9) * float64(time.Second))
	t.Logf("key_match turned 0 %s after the rotation (latest sample at %.3f)", lag.Round(time.Millisecond), s[0].value)
	if lag > 2*interval+500*time.Millisecond {
		t.Errorf("key_match turned 0 %s after the rotation; want within two scrape intervals (%s)", lag, 2*interval)
	}

	// Stop the UDP listener (old key back, so only UDP fails).
	stop()
	stop = startStandIn(t, keyDir, bind, base, hbbstest.RendezvousUDP)
	waitQuery(t, prom, `rustdesk_probe_success{probe="rendezvous-udp",job="rustdesk",instance="`+target+`"}`, 15*time.Second, one(0))
	time.Sleep(2 * interval)
	others := query(t, prom, `rustdesk_probe_success{probe!="rendezvous-udp",job="rustdesk",instance="`+target+`"}`)
	if len(others) != 5 {
		t.Fatalf("other probes: %+v", others)
	}
	for _, o := range others {
		if o.value != 1 {
			t.Errorf("%s = %v, want 1 with only UDP down", o.labels["probe"], o.value)
		}
	}
	if v := query(t, prom, "probe_success"+sel); len(v) != 1 || v[0].value != 0 {
		t.Errorf("probe_success with UDP down: %+v, want 0", v)
	}
	if v := query(t, prom, "rustdesk_key_match"+sel); len(v) != 1 || v[0].value != 1 {
		t.Errorf("key_match with UDP down: %+v, want 1", v)
	}
	stop()

	// SIGTERM: a graceful stop, exit 0.
	exp.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- exp.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exporter after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("exporter did not stop within 15 s of SIGTERM")
	}
}
