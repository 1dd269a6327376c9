package systemd

import (
	"bytes"
	goldenflag "github.com/rdctl/rdctl/internal/golden"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
)

var update = goldenflag.Update

func testRecord(tailnetOnly bool) *deploy.Record {
	return &deploy.Record{Format: 1, Backend: deploy.BackendSystemd, Origin: "rdctl",
		IDHost: "rd.example.com", Relay: "rd.example.com:21117", TailnetOnly: tailnetOnly,
		WorkingDir: deploy.DefaultWorkingDir, BinDir: deploy.DefaultBinDir, ServiceUser: deploy.DefaultServiceUser,
		HBBSUnit: deploy.DefaultHBBSUnit, HBBRUnit: deploy.DefaultHBBRUnit, HBBREnforcesKey: true}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/systemd -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s; run with -update if the change is intended:\n%s", name, path, got)
	}
}

func TestUnitsGolden(t *testing.T) {
	for _, tailnet := range []bool{false, true} {
		spec := SpecFromRecord(testRecord(tailnet))
		suffix := ""
		if tailnet {
			suffix = "-tailnet"
		}
		golden(t, "hbbs"+suffix+".service", HBBS(spec))
		golden(t, "hbbr"+suffix+".service", HBBR(spec))
	}
	spec := SpecFromRecord(testRecord(false))
	spec.Bind = "192.0.2.7"
	golden(t, "hbbs-bind.service", HBBS(spec))
}

// The rendered units parse back with go-systemd into what was meant.
func TestUnitsRoundTrip(t *testing.T) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(HBBR(SpecFromRecord(testRecord(true)))))
	if err != nil {
		t.Fatal(err)
	}
	get := func(sec, name string) []string {
		var v []string
		for _, o := range opts {
			if o.Section == sec && o.Name == name {
				v = append(v, o.Value)
			}
		}
		return v
	}
	if got := get("Service", "ExecStart"); len(got) != 1 || got[0] != "/usr/local/bin/hbbr -k _" {
		t.Errorf("ExecStart = %q", got)
	}
	if got := get("Service", "StateDirectory"); len(got) != 1 || got[0] != "rustdesk" {
		t.Errorf("StateDirectory = %q", got)
	}
	if got := get("Service", "SystemCallFilter"); len(got) != 2 {
		t.Errorf("SystemCallFilter = %q", got)
	}
	if got := get("Install", "WantedBy"); len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("WantedBy = %q", got)
	}
}

// buildImage installs into a fresh root, plus what systemd-analyze needs to
// verify offline: executables at the ExecStart paths and a sysinit.target.
func buildImage(t *testing.T, tailnet bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "img")
	p, ensure, err := InstallPlan(InstallOptions{Root: root, Record: testRecord(tailnet),
		RecordPath: Under(root, deploy.DefaultRecordPath), KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	if !ensure.Generated {
		t.Fatal("no key generated")
	}
	for _, b := range []string{"hbbs", "hbbr"} {
		mustWrite(t, filepath.Join(root, "usr/local/bin", b), "#!/bin/sh\n", 0o755)
	}
	mustWrite(t, filepath.Join(root, "usr/lib/systemd/system/sysinit.target"), "[Unit]\nDescription=System Initialization\n", 0o644)
	return root
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (Debian package systemd); scripts/test installs it", name)
	}
}

func TestImageVerifies(t *testing.T) {
	needTool(t, "systemd-analyze")
	for _, tailnet := range []bool{false, true} {
		root := buildImage(t, tailnet)
		cmd := exec.Command("systemd-analyze", "verify", "--root="+root,
			"/etc/systemd/system/hbbs.service", "/etc/systemd/system/hbbr.service")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		// verify exits 0 on unknown keys and bad values; only stderr tells.
		if err := cmd.Run(); err != nil || stderr.Len() != 0 {
			t.Errorf("tailnet=%v: systemd-analyze verify: %v\n%s", tailnet, err, stderr.String())
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestSecurityScores(t *testing.T) {
	needTool(t, "systemd-analyze")
	for _, c := range []struct {
		tailnet bool
		max     float64
	}{{false, 1.2}, {true, 1.0}} {
		root := buildImage(t, c.tailnet)
		for _, u := range []string{"hbbs.service", "hbbr.service"} {
			out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, u).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", u, err, out)
			}
			m := exposureRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("%s: no overall exposure line:\n%s", u, out)
			}
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("tailnet-only=%v %s exposure %.1f", c.tailnet, u, score)
			if score > c.max {
				t.Errorf("tailnet-only=%v %s: exposure %.1f, want <= %.1f", c.tailnet, u, score, c.max)
			}
		}
	}
}

func TestEnabledLikeSystemctl(t *testing.T) {
	needTool(t, "systemctl")
	root := buildImage(t, false)
	for _, u := range []string{"hbbs.service", "hbbr.service"} {
		out, err := exec.Command("systemctl", "--root", root, "is-enabled", u).Output()
		if err != nil || strings.TrimSpace(string(out)) != "enabled" {
			t.Errorf("%s: is-enabled = %q, %v", u, out, err)
		}
	}
	// systemctl --root disable removes exactly the links rdctl made.
	out, err := exec.Command("systemctl", "--root", root, "disable", "hbbs.service").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "multi-user.target.wants/hbbs.service") {
		t.Errorf("disable: %v %s", err, out)
	}
	if _, err := os.Lstat(filepath.Join(root, WantsDir, "hbbs.service")); !os.IsNotExist(err) {
		t.Errorf("link still there after disable: %v", err)
	}
}

func TestInstallPlanIdempotent(t *testing.T) {
	root := buildImage(t, false)
	p, ensure, err := InstallPlan(InstallOptions{Root: root, Record: testRecord(false),
		RecordPath: Under(root, deploy.DefaultRecordPath), KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Changed {
			t.Errorf("second run changed %s %s", r.Action, r.Target)
		}
	}
	if ensure.Generated {
		t.Error("second run generated a new key")
	}
	if _, err := p.Run(false); err == nil {
		t.Error("a plan ran twice")
	}
}
