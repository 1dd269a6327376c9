package status

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/golden"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

const wdPath = "/var/lib/rustdesk"

func testRecord(backend string) *deploy.Record {
	return &deploy.Record{Format: 1, Backend: backend, IDHost: "rd.example.com", Relay: "rd.example.com:21117",
		WorkingDir: wdPath, HBBSUnit: "hbbs.service", HBBRUnit: "hbbr.service", Origin: "rdctl"}
}

// tree is an image root under construction.
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T) *tree {
	t.Helper()
	tr := &tree{t: t, root: filepath.Join(t.TempDir(), "img")}
	// The running user is "rustdesk" in the tree, so the key files'
	// owner names do not depend on the host running the test.
	tr.write("/etc/passwd", fmt.Sprintf("rustdesk:x:%d:%d::/:/usr/sbin/nologin\n", os.Getuid(), os.Getgid()))
	tr.write("/etc/group", fmt.Sprintf("rustdesk:x:%d:\n", os.Getgid()))
	tr.mkdir(wdPath)
	return tr
}

func (tr *tree) path(p string) string { return filepath.Join(tr.root, p) }

func (tr *tree) mkdir(p string) {
	tr.t.Helper()
	if err := os.MkdirAll(tr.path(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) write(p, data string) {
	tr.t.Helper()
	tr.mkdir(filepath.Dir(p))
	// Chmod too: the golden modes must not depend on the umask.
	if err := os.WriteFile(tr.path(p), []byte(data), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(tr.path(p), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) link(target, p string) {
	tr.t.Helper()
	tr.mkdir(filepath.Dir(p))
	if err := os.Symlink(target, tr.path(p)); err != nil {
		tr.t.Fatal(err)
	}
}

// unit writes a minimal service unit to dir.
func (tr *tree) unit(dir, name string) {
	tr.write(filepath.Join(dir, name), "[Service]\nExecStart=/usr/local/bin/"+strings.TrimSuffix(name, ".service")+"\n")
}

// seeded is a deterministic source of key material: the keys, and so the
// golden files, are the same on every run.
func seeded(b byte) io.Reader { return rand.NewChaCha8([32]byte{b}) }

// pairOf is the first pair Generate makes from seeded(b).
func pairOf(t *testing.T, b byte) keys.Pair {
	t.Helper()
	p, err := keys.Generate(seeded(b))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// key writes the pair generated from seed b as the live key.
func (tr *tree) key(b byte) {
	tr.t.Helper()
	p := pairOf(tr.t, b)
	d, err := safefs.OpenDir(tr.path(wdPath))
	if err != nil {
		tr.t.Fatal(err)
	}
	defer d.Close()
	if err := keys.Write(d, p, keys.Owner{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) rotateOpts(at time.Time, seed byte) rotate.Options {
	return rotate.Options{WorkingDir: tr.path(wdPath), StateDir: tr.path(deploy.StateDirFor(wdPath)), Runtime: deploy.NoRuntime{}, Rand: seeded(seed),
		BackupOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}, Now: func() time.Time { return at }}
}

// rotated rotates the live key at a fixed time, leaving one backup.
func (tr *tree) rotated(at time.Time, seed byte) {
	tr.t.Helper()
	if _, err := rotate.Rotate(context.Background(), tr.rotateOpts(at, seed)); err != nil {
		tr.t.Fatal(err)
	}
}

var (
	jan1 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	feb2 = time.Date(2026, 2, 2, 8, 30, 15, 0, time.UTC)
)

// TestGatherRoot gathers the report of image trees; the JSON (the `status
// --json` contract) is compared with testdata/<name>.json, the root shown as
// $ROOT. `go test -update` rewrites the files.
func TestGatherRoot(t *testing.T) {
	tests := []struct {
		name    string
		backend string
		build   func(tr *tree)
		check   func(t *testing.T, r *Report)
	}{
		{name: "installed", backend: deploy.BackendSystemd, build: func(tr *tree) {
			tr.unit("/etc/systemd/system", "hbbs.service")
			tr.unit("/etc/systemd/system", "hbbr.service")
			tr.link("/etc/systemd/system/hbbs.service", systemd.WantsDir+"/hbbs.service")
			tr.link("/etc/systemd/system/hbbr.service", "/etc/systemd/system/default.target.wants/hbbr.service")
			tr.key(1)
		}, check: func(t *testing.T, r *Report) {
			wantUnits(t, r, "enabled", "enabled")
			if !r.Key.Valid || !r.Key.PubFileMatches || r.Key.Secret == nil || r.Key.Secret.Mode != "0600" || r.Key.Pub.Mode != "0644" {
				t.Errorf("key %+v", r.Key)
			}
		}},
		{name: "units-disabled-masked", backend: deploy.BackendSystemd, build: func(tr *tree) {
			// A packaged unit in /lib, not enabled; hbbr masked in /etc
			// over a packaged file.
			tr.unit("/lib/systemd/system", "hbbs.service")
			tr.unit("/lib/systemd/system", "hbbr.service")
			tr.link("/dev/null", "/etc/systemd/system/hbbr.service")
			tr.link("/etc/systemd/system/hbbr.service", systemd.WantsDir+"/hbbr.service")
			tr.key(1)
		}, check: func(t *testing.T, r *Report) {
			wantUnits(t, r, "disabled", "masked")
			if r.Units[0].UnitFile != "/lib/systemd/system/hbbs.service" || r.Units[1].UnitFile != "/etc/systemd/system/hbbr.service" {
				t.Errorf("unit files %q %q", r.Units[0].UnitFile, r.Units[1].UnitFile)
			}
		}},
		{name: "units-not-found", backend: deploy.BackendSystemd, build: func(tr *tree) {
			tr.key(1)
		}, check: func(t *testing.T, r *Report) {
			wantUnits(t, r, "not-found", "not-found")
		}},
		{name: "compose-tree", backend: deploy.BackendCompose, build: func(tr *tree) {
			tr.key(1)
		}, check: func(t *testing.T, r *Report) {
			// Under a root the engine is not asked: no containers[].
			if len(r.Units) != 0 || r.UnitsError == "" || r.Containers != nil || r.ContainersError != "" {
				t.Errorf("units %v %q containers %v %q", r.Units, r.UnitsError, r.Containers, r.ContainersError)
			}
		}},
		{name: "key-missing", backend: deploy.BackendSystemd, build: func(tr *tree) {}, check: func(t *testing.T, r *Report) {
			if r.Key.Present || r.Key.Valid || r.Key.Error != "no "+keys.SecretFile || r.Key.Secret != nil || r.Key.Pub != nil {
				t.Errorf("key %+v", r.Key)
			}
		}},
		{name: "key-pub-disagrees", backend: deploy.BackendSystemd, build: func(tr *tree) {
			tr.key(1)
			p := pairOf(t, 2)
			tr.write(wdPath+"/"+keys.PublicFile, p.PublicBase64())
		}, check: func(t *testing.T, r *Report) {
			if !r.Key.Valid || r.Key.PubFileMatches || r.Key.Pub == nil || r.Key.Error != "" {
				t.Errorf("key %+v", r.Key)
			}
		}},
		{name: "key-corrupt", backend: deploy.BackendSystemd, build: func(tr *tree) {
			tr.write(wdPath+"/"+keys.SecretFile, "not a key")
		}, check: func(t *testing.T, r *Report) {
			if !r.Key.Present || r.Key.Valid || r.Key.Error == "" || r.Key.PublicKey != "" {
				t.Errorf("key %+v", r.Key)
			}
		}},
		{name: "working-dir-missing", backend: deploy.BackendSystemd, build: func(tr *tree) {
			if err := os.Remove(tr.path(wdPath)); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, r *Report) {
			// Only the key says so; no backups and nothing staged is
			// the truth of a missing directory.
			if r.Key.Error == "" || r.Key.Present {
				t.Errorf("key %+v", r.Key)
			}
			if r.Backups.Error != "" || r.Backups.Count != 0 || r.Staged.Error != "" || r.Staged.Present {
				t.Errorf("backups %+v staged %+v", r.Backups, r.Staged)
			}
		}},
		{name: "backups-staged", backend: deploy.BackendSystemd, build: func(tr *tree) {
			tr.key(1)
			tr.rotated(jan1, 2)
			tr.rotated(feb2, 3)
			if _, _, err := rotate.Stage(tr.rotateOpts(feb2, 4)); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, r *Report) {
			if r.Backups.Count != 2 || r.Backups.LastRotation != "20260202T083015Z" || r.Backups.LastRotationTime != "2026-02-02T08:30:15Z" {
				t.Errorf("backups %+v", r.Backups)
			}
			p := pairOf(t, 4)
			if !r.Staged.Present || r.Staged.Fingerprint != p.Fingerprint() || r.Staged.PublicKey != p.PublicBase64() {
				t.Errorf("staged %+v, want %s", r.Staged, p.Fingerprint())
			}
		}},
		{name: "backup-labelled", backend: deploy.BackendSystemd, build: func(tr *tree) {
			// uninstall's backups carry a label after the time.
			tr.key(1)
			tr.rotated(jan1, 2)
			b := tr.path(deploy.StateDirFor(wdPath) + "/backups")
			if err := os.Rename(filepath.Join(b, "20260101T120000Z"), filepath.Join(b, "20260101T120000Z-uninstall")); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, r *Report) {
			if r.Backups.Count != 1 || r.Backups.LastRotation != "20260101T120000Z-uninstall" || r.Backups.LastRotationTime != "2026-01-01T12:00:00Z" {
				t.Errorf("backups %+v", r.Backups)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			tc.build(tr)
			recPath := tr.path(deploy.DefaultRecordPath)
			r, err := Gather(context.Background(), Options{Record: testRecord(tc.backend), RecordPath: recPath, Root: tr.root,
				Tailnet: func(context.Context) (*TailnetSelf, error) { t.Error("tailnet asked under a root"); return nil, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if r.Record != recPath || r.Root != tr.root || r.Key.Dir != tr.path(wdPath) || r.WorkingDir != wdPath {
				t.Errorf("record %q root %q key dir %q working dir %q", r.Record, r.Root, r.Key.Dir, r.WorkingDir)
			}
			if r.Ports != nil || r.PortsError != "" || r.Tailnet != nil {
				t.Errorf("live sources read under a root: ports %v %q tailnet %v", r.Ports, r.PortsError, r.Tailnet)
			}
			tc.check(t, r)
			checkGolden(t, tr, r)
		})
	}
}

func wantUnits(t *testing.T, r *Report, hbbs, hbbr string) {
	t.Helper()
	if len(r.Units) != 2 || r.Units[0].Name != "hbbs.service" || r.Units[1].Name != "hbbr.service" {
		t.Fatalf("units %+v", r.Units)
	}
	if r.Units[0].UnitFileState != hbbs || r.Units[1].UnitFileState != hbbr {
		t.Errorf("unit file states %s %s, want %s %s", r.Units[0].UnitFileState, r.Units[1].UnitFileState, hbbs, hbbr)
	}
	for _, u := range r.Units {
		if u.Restarts != nil || u.ActiveState != "" {
			t.Errorf("%s: systemd asked under a root: %+v", u.Name, u)
		}
	}
	if r.UnitsError != "" {
		t.Errorf("units error %q", r.UnitsError)
	}
}

// checkGolden compares the report's JSON with testdata/<test>.json. The
// key files' owner is the test's user, named rustdesk in the tree: the
// names are checked here and the numbers left out of the file.
func checkGolden(t *testing.T, tr *tree, r *Report) {
	t.Helper()
	for _, f := range []*File{r.Key.Secret, r.Key.Pub} {
		if f == nil {
			continue
		}
		if f.User != "rustdesk" || f.Group != "rustdesk" {
			t.Errorf("%s owned by %s:%s (%d:%d), want rustdesk:rustdesk", f.Path, f.User, f.Group, f.UID, f.GID)
		}
		f.UID, f.GID = 0, 0
	}
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(bytes.ReplaceAll(got, []byte(tr.root), []byte("$ROOT")), '\n')
	file := filepath.Join("testdata", strings.TrimPrefix(t.Name(), "TestGatherRoot/")+".json")
	if *golden.Update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report differs from %s (go test -update rewrites it):\n%s", file, got)
	}
}
