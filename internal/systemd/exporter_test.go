package systemd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExporterUnit: the exporter's unit verifies, scores at most 1.5 in
// systemd-analyze security, hands the exporter the record's public key
// file (never the secret), and the plan is idempotent.
func TestExporterUnit(t *testing.T) {
	root := buildImage(t, false)
	rec := testRecord(false)
	spec := ExporterSpecFromRecord(rec, "/usr/local/bin/rdctl", "127.0.0.1:9752")
	p := ExporterPlan(root, spec)
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	rs, err := ExporterPlan(root, spec).Run(false)
	noErr(t, err)
	for _, r := range rs {
		if r.Changed {
			t.Errorf("second run changed %s", r.Target)
		}
	}
	u := string(ExporterUnit(spec))
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
		"LoadCredential=rustdesk.pub:" + rec.WorkingDir + "/id_ed25519.pub", "--key-file %d/rustdesk.pub", "--listen 127.0.0.1:9752"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(strings.ReplaceAll(u, "id_ed25519.pub", ""), "id_ed25519") || strings.Contains(u, "ReadWritePaths") || strings.Contains(u, "StateDirectory") {
		t.Errorf("the unit names the secret or grants writes:\n%s", u)
	}
	if sc := string(ExporterScrapeConfig(spec)); !strings.Contains(sc, "__param_target") || !strings.Contains(sc, rec.IDHost) {
		t.Errorf("scrape config:\n%s", sc)
	}
	needTool(t, "systemd-analyze")
	mustWrite(t, filepath.Join(root, "usr/local/bin/rdctl"), "#!/bin/sh\n", 0o755)
	out, err := exec.Command("systemd-analyze", "verify", "--root="+root, "/etc/systemd/system/"+ExporterUnitName).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, ExporterUnitName).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure line:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("%s exposure %.1f", ExporterUnitName, score)
	if score > 1.5 {
		t.Errorf("exposure %.1f, want <= 1.5", score)
	}
}

// The exporter's unit runs the rdctl that is there: live, the running one
// (symlinks resolved; not a file that is gone); in an image, the first of
// RdctlPaths present, else the Debian package's path, reported not found.
func TestExporterBinary(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "rdctl-1.2")
	noErr(t, os.WriteFile(real, []byte("x"), 0o755))
	link := filepath.Join(dir, "rdctl")
	noErr(t, os.Symlink(real, link))
	exe := func(p string) func() (string, error) { return func() (string, error) { return p, nil } }
	if p, found := ExporterBinary("", exe(link)); p != real || !found {
		t.Errorf("live: %s %v, want %s", p, found, real)
	}
	// A running binary replaced on disk: /proc/self/exe says "(deleted)".
	if p, _ := ExporterBinary("", exe(real+" (deleted)")); p == real+" (deleted)" {
		t.Errorf("live, deleted: %s", p)
	}

	root := t.TempDir()
	if p, found := ExporterBinary(root, exe(link)); p != "/usr/bin/rdctl" || found {
		t.Errorf("empty image: %s %v", p, found)
	}
	noErr(t, os.MkdirAll(filepath.Join(root, "usr/local/sbin"), 0o755))
	noErr(t, os.WriteFile(filepath.Join(root, "usr/local/sbin/rdctl"), []byte("x"), 0o755))
	if p, found := ExporterBinary(root, exe(link)); p != "/usr/local/sbin/rdctl" || !found {
		t.Errorf("image with /usr/local/sbin/rdctl: %s %v", p, found)
	}
	noErr(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	noErr(t, os.WriteFile(filepath.Join(root, "usr/bin/rdctl"), []byte("x"), 0o755))
	if p, _ := ExporterBinary(root, exe(link)); p != "/usr/bin/rdctl" {
		t.Errorf("image with both: %s, want the package's /usr/bin/rdctl first", p)
	}
}

// A live install exporter ends by starting the exporter: a restart (after
// a daemon-reload) when the plan changed the files, since only a start
// reads them; a plain start when nothing changed but it is not running;
// nothing when it runs and nothing changed.
func TestActivateExporter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		changed bool
		active  bool
		want    []string
	}{
		{"new files, not running", true, false, []string{"reload", "restart " + ExporterUnitName}},
		{"new files, running", true, true, []string{"reload", "restart " + ExporterUnitName}},
		{"unchanged, not running", false, false, []string{"start " + ExporterUnitName}},
		{"unchanged, running", false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := "inactive"
			if tc.active {
				state = "active"
			}
			f := &fakeManager{states: map[string]UnitState{ExporterUnitName: {Name: ExporterUnitName, LoadState: "loaded", ActiveState: state}}}
			a := &ActivateExporter{Ctx: context.Background(), Changed: func() bool { return tc.changed }, Connect: f.connect}
			pending, err := a.Pending()
			noErr(t, err)
			changed, err := a.Apply()
			noErr(t, err)
			if pending != (tc.want != nil) || changed != pending || a.Started != pending || !slices.Equal(f.calls, tc.want) {
				t.Errorf("pending %v, changed %v, started %v, calls %q; want %q", pending, changed, a.Started, f.calls, tc.want)
			}
		})
	}
}
