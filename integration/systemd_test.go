//go:build integration

package integration

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/rotate"
)

var (
	buildOnce            sync.Once
	rdctlBin, standinBin string
)

// binaries builds rdctl and the stand-in server once per test binary.
func binaries(t testing.TB) (rdctl, standin string) {
	buildOnce.Do(func() {
		// The fault tag lets the crash tests kill rdctl at a named step
		// (RDCTL_FAULT_KILL_AT, RDCTL_FAULT_KILL_UPGRADE_AT); release builds
		// leave it out.
		rdctlBin = harness.BuildStatic(t, "./cmd/rdctl", "-tags=rdctlfault")
		standinBin = harness.BuildStatic(t, "./internal/hbbstest/standin")
		// t.TempDir of the first caller goes away with it; keep copies.
		dir, err := os.MkdirTemp("", "rdctl-it-bin-")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*string{&rdctlBin, &standinBin} {
			data, err := os.ReadFile(*p)
			if err != nil {
				t.Fatal(err)
			}
			*p = filepath.Join(dir, filepath.Base(*p))
			if err := os.WriteFile(*p, data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	})
	if rdctlBin == "" {
		t.Fatal("building the binaries failed in an earlier test")
	}
	return rdctlBin, standinBin
}

// releaseZip lays the stand-in out as a RustDesk release zip
// (amd64/hbbs, amd64/hbbr), the layout rdctl install --binaries reads.
func releaseZip(t testing.TB, standin string) string {
	data, err := os.ReadFile(standin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rustdesk-server-linux-amd64.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, name := range []string{"amd64/hbbs", "amd64/hbbr"} {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// serverMachine boots a real systemd with rdctl and a release zip inside.
func serverMachine(t testing.TB) *harness.Machine {
	rdctl, standin := binaries(t)
	m := harness.BootSystemd(t, harness.WithPrivateNetwork())
	if err := m.CopyFile(rdctl, "/usr/local/sbin/rdctl", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.CopyFile(releaseZip(t, standin), "/root/rustdesk-server-linux-amd64.zip", 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func rdctlIn(t *testing.T, m *harness.Machine, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{"/usr/bin/env"}, env...)
	argv = append(argv, append([]string{"/usr/local/sbin/rdctl"}, args...)...)
	stdout, stderr, code, err := m.Exec(ctx, argv...)
	if err != nil && code == 0 {
		t.Fatalf("rdctl %v: %v", args, err)
	}
	return stdout, stderr, code
}

func mustRdctl(t *testing.T, m *harness.Machine, args ...string) string {
	t.Helper()
	out, errOut, code := rdctlIn(t, m, nil, args...)
	if code != 0 {
		t.Fatalf("rdctl %v: exit %d\nstdout: %s\nstderr: %s\njournal hbbs: %s", args, code, out, errOut, m.Journal("hbbs.service"))
	}
	return out
}

func keyShow(t *testing.T, m *harness.Machine) (pub string, mode string) {
	var k struct {
		PublicKey  string `json:"public_key"`
		Valid      bool   `json:"valid"`
		PubMatches bool   `json:"pub_file_matches"`
		SecretMode string `json:"secret_mode"`
	}
	if err := json.Unmarshal([]byte(mustRdctl(t, m, "--json", "key", "show")), &k); err != nil {
		t.Fatal(err)
	}
	if !k.Valid || !k.PubMatches {
		t.Fatalf("key not valid/consistent: %+v", k)
	}
	return k.PublicKey, k.SecretMode
}

// probeKey asks hbbs inside the machine's network namespace whether it
// accepts key, within 3 s.
func probeKey(m *harness.Machine, key string) (st probe.KeyStatus, err error) {
	err = m.InNetns(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err = probe.Key(ctx, probe.DirectDial, "127.0.0.1:21116", key, false)
		return err
	})
	return st, err
}

// keyStatus is probeKey for a server that must answer.
func keyStatus(t *testing.T, m *harness.Machine, key string) probe.KeyStatus {
	t.Helper()
	st, err := probeKey(m, key)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return st
}

func unitActive(t *testing.T, m *harness.Machine, unit string) bool {
	out, _, _, _ := m.Exec(context.Background(), "systemctl", "is-active", unit)
	return strings.TrimSpace(out) == "active"
}

func TestSystemdInstallAndRotate(t *testing.T) {
	m := serverMachine(t)

	// install: both units active, hbbs answering with the generated key
	start := time.Now()
	out := mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	t.Logf("install to serving: %v (rdctl says: %s)", time.Since(start), lineWith(out, "serving:"))
	for _, u := range []string{"hbbs.service", "hbbr.service"} {
		if !unitActive(t, m, u) {
			t.Fatalf("%s not active after install:\n%s", u, m.Journal(u))
		}
	}
	pub, mode := keyShow(t, m)
	if mode != "0600" {
		t.Errorf("secret mode %s", mode)
	}
	owner := strings.TrimSpace(m.MustExec(t, "stat", "-c", "%U:%G %a", "/var/lib/rustdesk/id_ed25519"))
	if owner != "rustdesk:rustdesk 600" {
		t.Errorf("secret owner/mode %q, want rustdesk:rustdesk 600", owner)
	}
	if st := keyStatus(t, m, pub); st != probe.KeyMatch {
		t.Fatalf("hbbs does not serve the generated key: %s", st)
	}
	if st := keyStatus(t, m, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); st != probe.KeyMismatch {
		t.Fatalf("hbbs does not enforce its key: %s", st)
	}
	// the hardened units really run: the stand-in is the service user, sandboxed
	if u := strings.TrimSpace(m.MustExec(t, "systemctl", "show", "-p", "User", "--value", "hbbs.service")); u != "rustdesk" {
		t.Errorf("hbbs runs as %q", u)
	}
	pid := strings.TrimSpace(m.MustExec(t, "systemctl", "show", "-p", "MainPID", "--value", "hbbs.service"))
	if st := m.MustExec(t, "cat", "/proc/"+pid+"/status"); !strings.Contains(st, "NoNewPrivs:\t1") || !strings.Contains(st, "Seccomp:\t2") {
		t.Errorf("hbbs is not sandboxed (NoNewPrivs/Seccomp):\n%s", st)
	}

	// re-install: unchanged, same key, units still active
	out = mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	if !strings.Contains(out, "unchanged") {
		t.Errorf("re-install not unchanged:\n%s", out)
	}
	if again, _ := keyShow(t, m); again != pub {
		t.Error("re-install changed the key")
	}

	// --bind is refused for hbbs older than 1.1.17 (hbbs -V says so; the
	// stand-in is 1.1.16 unless STANDIN_VERSION says otherwise)
	_, errOut, code := rdctlIn(t, m, []string{"STANDIN_VERSION=1.1.17"}, "--dry-run", "install", "systemd", "--relay", "rd.example.com", "--bind", "127.0.0.1")
	if code != 0 {
		t.Errorf("--bind with 1.1.17 refused: %s", errOut)
	}
	_, errOut, code = rdctlIn(t, m, []string{"STANDIN_VERSION=1.1.16"}, "install", "systemd", "--relay", "rd.example.com", "--bind", "127.0.0.1",
		"--binaries", "/root/rustdesk-server-linux-amd64.zip")
	if code != 2 || !strings.Contains(errOut, "hbbs 1.1.16 has no -b flag") {
		t.Errorf("--bind with hbbs 1.1.16: exit %d %s", code, errOut)
	}

	// rotate: new key served, old key LICENSE_MISMATCH
	var res struct {
		Old, New string
		Backup   string  `json:"backup"`
		Verified bool    `json:"verified"`
		Outage   float64 `json:"outage_ms"`
	}
	start = time.Now()
	raw := mustRdctl(t, m, "--json", "rotate")
	wall := time.Since(start)
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatal(err, raw)
	}
	var keysOut struct {
		Old string `json:"old_public_key"`
		New string `json:"new_public_key"`
	}
	json.Unmarshal([]byte(raw), &keysOut)
	t.Logf("rotation on real systemd: wall %v, outage (renames+fsync) %.3f ms", wall, res.Outage)
	if !res.Verified || keysOut.Old != pub {
		t.Fatalf("rotate: %s", raw)
	}
	if st := keyStatus(t, m, keysOut.New); st != probe.KeyMatch {
		t.Errorf("new key: %s", st)
	}
	if st := keyStatus(t, m, pub); st != probe.KeyMismatch {
		t.Errorf("old key after rotation: %s", st)
	}
	if owner := strings.TrimSpace(m.MustExec(t, "stat", "-c", "%U %a", "/var/lib/rustdesk/id_ed25519", res.Backup+"/id_ed25519", res.Backup)); owner != "rustdesk 600\nroot 600\nroot 700" {
		t.Errorf("owners/modes after rotation:\n%s", owner)
	}

	// a broken start rolls back by itself: stage the next key, make hbbs
	// refuse it, commit
	var staged struct {
		New string `json:"new_public_key"`
	}
	json.Unmarshal([]byte(mustRdctl(t, m, "--json", "rotate", "--stage")), &staged)
	m.MustExec(t, "mkdir", "-p", "/etc/systemd/system/hbbs.service.d")
	if err := m.WriteFile("/etc/systemd/system/hbbs.service.d/refuse.conf", []byte("[Service]\nEnvironment=STANDIN_REFUSE_KEY="+staged.New+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.MustExec(t, "systemctl", "daemon-reload")
	out, errOut, code = rdctlIn(t, m, nil, "rotate", "--commit")
	if code != 1 || !strings.Contains(errOut, "back in place") {
		t.Fatalf("broken start: exit %d\n%s\n%s", code, out, errOut)
	}
	if st := keyStatus(t, m, keysOut.New); st != probe.KeyMatch {
		t.Errorf("after rollback the previous key is not served: %s", st)
	}
	if cur, _ := keyShow(t, m); cur != keysOut.New {
		t.Errorf("after rollback the live key is %s", cur)
	}
	m.MustExec(t, "rm", "-r", "/etc/systemd/system/hbbs.service.d")
	m.MustExec(t, "systemctl", "daemon-reload")
}

// TestSystemdRotateCrashMatrix kills rotate at every step boundary under a
// real systemd; the next run leaves a consistent pair, a backup of the old
// key, both services running and serving the live key, and no temp files.
func TestSystemdRotateCrashMatrix(t *testing.T) {
	m := serverMachine(t)
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	for _, point := range rotate.Points {
		t.Run(point, func(t *testing.T) {
			old, _ := keyShow(t, m)
			_, errOut, code := rdctlIn(t, m, []string{"RDCTL_FAULT_KILL_AT=" + point}, "rotate")
			if code != 137 && code != -1 {
				// nsenter reports a child killed by SIGKILL as 128+9
				t.Fatalf("rotate not killed at %s: exit %d %s", point, code, errOut)
			}
			_, errOut, code = rdctlIn(t, m, nil, "rotate", "--resume")
			if code != 0 {
				t.Fatalf("resume after %s: exit %d\n%s", point, code, errOut)
			}
			live, _ := keyShow(t, m)
			for _, u := range []string{"hbbs.service", "hbbr.service"} {
				if !unitActive(t, m, u) {
					t.Errorf("%s not running after recovery from %s", u, point)
				}
			}
			if st := keyStatus(t, m, live); st != probe.KeyMatch {
				t.Errorf("after %s hbbs does not serve the live key: %s", point, st)
			}
			leftovers := m.MustExec(t, "sh", "-c", "find /var/lib/rustdesk /var/lib/rdctl -name '*rdctl-tmp*' -o -name '*.rdctl-new' -o -name 'rotation-journal.json' -o -name '.rdctl-rotation.json'")
			if strings.TrimSpace(leftovers) != "" {
				t.Errorf("leftovers after %s: %s", point, leftovers)
			}
			list := mustRdctl(t, m, "--json", "backups", "list")
			if !strings.Contains(list, old) {
				t.Errorf("no backup of the old key after %s", point)
			}
		})
	}
}

func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return fmt.Sprintf("(no %q line)", prefix)
}

// BenchmarkRotateSystemd rotates the key of an installed server under a
// real systemd, b.N times, and reports rdctl's time inside the outage
// (stop done → start issued) and the whole rotation's wall time, including
// the stop, the start and the verification probe.
func BenchmarkRotateSystemd(b *testing.B) {
	m := serverMachine(b)
	ctx := context.Background()
	if _, e, code, _ := m.Exec(ctx, "/usr/local/sbin/rdctl", "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip"); code != 0 {
		b.Fatal(e)
	}
	var outage float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, e, code, _ := m.Exec(ctx, "/usr/local/sbin/rdctl", "--json", "rotate")
		if code != 0 {
			b.Fatal(e)
		}
		var r struct {
			Outage   float64 `json:"outage_ms"`
			Verified bool    `json:"verified"`
		}
		json.Unmarshal([]byte(out), &r)
		if !r.Verified {
			b.Fatal("not verified")
		}
		outage += r.Outage
	}
	b.ReportMetric(outage/float64(b.N), "outage-ms/op")
}
