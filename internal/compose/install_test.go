package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
)

func installPlan(t *testing.T, root string, s Spec) (*plan.Plan, *keys.EnsurePair) {
	t.Helper()
	rec := RecordFor(s, "id.example.com")
	if err := rec.Validate(); err != nil {
		t.Fatal(err)
	}
	p, ensure, err := InstallPlan(context.Background(), InstallOptions{
		Root: root, Spec: s, Record: rec, RecordPath: filepath.Join(root, deploy.DefaultRecordPath),
		KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, ensure
}

// An install into an image tree writes the stack, a key pair made before
// any start, and the record; a second run changes nothing; a dry run
// writes nothing.
func TestInstallPlan(t *testing.T) {
	root := t.TempDir()
	s := mustSpec(t, DefaultDir, DefaultImage, "", "rd.example.com")

	p, _ := installPlan(t, root, s)
	res, err := p.Run(true)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Changed(res) != len(res) {
		t.Errorf("dry run on an empty tree: %d of %d pending", plan.Changed(res), len(res))
	}
	if _, err := os.Stat(filepath.Join(root, "opt")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote something: %v", err)
	}

	p, ensure := installPlan(t, root, s)
	res, err = p.Run(false)
	if err != nil {
		t.Fatal(err)
	}
	if n := plan.Changed(res); n != len(res) {
		t.Errorf("first run on an empty tree changed %d of %d steps: %+v", n, len(res), res)
	}
	if !ensure.Generated {
		t.Error("no key pair generated")
	}
	data := filepath.Join(root, DefaultDir, "data")
	for path, mode := range map[string]os.FileMode{
		filepath.Join(root, DefaultDir):               0o755 | os.ModeDir,
		data:                                          0o700 | os.ModeDir,
		filepath.Join(data, keys.SecretFile):          0o600,
		filepath.Join(data, keys.PublicFile):          0o644,
		filepath.Join(root, DefaultDir, FileName):     0o644,
		filepath.Join(root, deploy.DefaultRecordPath): 0o644,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	rendered, _ := Render(context.Background(), s)
	if got, _ := os.ReadFile(filepath.Join(root, DefaultDir, FileName)); !bytes.Equal(got, rendered) {
		t.Error("compose.yaml is not the rendered project")
	}
	rec, err := deploy.LoadRecord(filepath.Join(root, deploy.DefaultRecordPath))
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.ComposeRecord{Dir: DefaultDir, Image: DefaultImage, Network: "host", Project: "rustdesk-server", MountTarget: "/root"}
	if rec.Backend != deploy.BackendCompose || rec.Compose == nil || *rec.Compose != want || rec.WorkingDir != DefaultDir+"/data" ||
		rec.Relay != "rd.example.com:21117" || rec.IDHost != "id.example.com" || !rec.HBBREnforcesKey {
		t.Errorf("record %+v compose %+v", rec, rec.Compose)
	}
	pub, err := os.ReadFile(filepath.Join(data, keys.PublicFile))
	if err != nil {
		t.Fatal(err)
	}

	p, ensure = installPlan(t, root, s)
	res, err = p.Run(false)
	if err != nil {
		t.Fatal(err)
	}
	if n := plan.Changed(res); n != 0 || ensure.Generated {
		t.Errorf("second run changed %d steps (generated %v): %+v", n, ensure.Generated, res)
	}
	if again, _ := os.ReadFile(filepath.Join(data, keys.PublicFile)); !bytes.Equal(again, pub) {
		t.Error("second run changed the key")
	}

	// Another image rewrites the file and the record, and keeps the key.
	s6 := mustSpec(t, DefaultDir, "rustdesk/rustdesk-server-s6:1.1.16", "", "rd.example.com")
	p, _ = installPlan(t, root, s6)
	res, err = p.Run(false)
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{}
	for _, r := range res {
		changed[r.Target] = r.Changed
	}
	if !changed[filepath.Join(root, DefaultDir, FileName)] || !changed[filepath.Join(root, deploy.DefaultRecordPath)] || changed[data] {
		t.Errorf("image change: %+v", res)
	}
	if again, _ := os.ReadFile(filepath.Join(data, keys.PublicFile)); !bytes.Equal(again, pub) {
		t.Error("an image change replaced the key")
	}
}

// A symlink planted at the compose file's place is refused, not followed.
func TestInstallPlanRefusesSymlink(t *testing.T) {
	root := t.TempDir()
	s := mustSpec(t, DefaultDir, DefaultImage, "", "rd.example.com")
	dir := filepath.Join(root, DefaultDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	p, _ := installPlan(t, root, s)
	if _, err := p.Run(false); err == nil {
		t.Fatal("wrote through a symlink")
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Error("the symlink's target was overwritten")
	}
}
