package systemd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
)

// fakeManager records what a step asks of systemd.
type fakeManager struct {
	states   map[string]UnitState // absent: not-found
	calls    []string
	failStop string
}

func (f *fakeManager) connect(context.Context) (UnitManager, error) { return f, nil }

func (f *fakeManager) State(_ context.Context, u string) (UnitState, error) {
	if st, ok := f.states[u]; ok {
		return st, nil
	}
	return UnitState{Name: u, LoadState: "not-found"}, nil
}

func (f *fakeManager) Start(_ context.Context, u string) error {
	f.calls = append(f.calls, "start "+u)
	return nil
}

func (f *fakeManager) Restart(_ context.Context, u string) error {
	f.calls = append(f.calls, "restart "+u)
	return nil
}

func (f *fakeManager) Stop(_ context.Context, u string) error {
	if u == f.failStop {
		return &UnitError{Unit: u, Verb: "stop", Result: "failed"}
	}
	f.calls = append(f.calls, "stop "+u)
	return nil
}

func (f *fakeManager) Enable(_ context.Context, us []string) error {
	f.calls = append(f.calls, "enable "+strings.Join(us, " "))
	return nil
}

func (f *fakeManager) Disable(_ context.Context, us []string) error {
	f.calls = append(f.calls, "disable "+strings.Join(us, " "))
	return nil
}

func (f *fakeManager) Reload(context.Context) error {
	f.calls = append(f.calls, "reload")
	return nil
}

func (f *fakeManager) Close() {}

// lookupEtc finds units only in /etc/systemd/system, as the tests write them.
func lookupEtc(root, name string) (string, bool, error) {
	p := path.Join(UnitDir, name)
	data, err := os.ReadFile(Under(root, p))
	if err != nil {
		return "", false, err
	}
	return p, bytes.HasPrefix(data, []byte("# Written by rdctl")), nil
}

// installedTree installs testRecord into a fresh image tree.
func installedTree(t *testing.T) (root string, rec *deploy.Record) {
	t.Helper()
	root, rec = t.TempDir(), testRecord(false)
	p, _, err := InstallPlan(InstallOptions{Root: root, Record: rec, RecordPath: Under(root, deploy.DefaultRecordPath),
		KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	return root, rec
}

func runUninstall(t *testing.T, o UninstallOptions, dryRun bool) (*UninstallResult, error) {
	t.Helper()
	steps, res, err := UninstallPlan(t.Context(), o)
	if err != nil {
		return nil, err
	}
	var p plan.Plan
	p.Add(steps...)
	if _, err := p.Run(dryRun); err != nil {
		return res, err
	}
	res.Finish()
	return res, nil
}

func uninstallOptions(root string, rec *deploy.Record) UninstallOptions {
	return UninstallOptions{Root: root, Record: rec, RecordPath: Under(root, deploy.DefaultRecordPath),
		StateDir:    Under(root, deploy.StateDirFor(rec.WorkingDir)),
		BackupOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}, LookupUnit: lookupEtc}
}

func TestUninstallImageTree(t *testing.T) {
	root, rec := installedTree(t)
	wd := Under(root, rec.WorkingDir)
	secret, _ := os.ReadFile(filepath.Join(wd, keys.SecretFile))

	res, err := runUninstall(t, uninstallOptions(root, rec), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 0 || res.Backup != "" {
		t.Errorf("dry run removed %v, backed up %q", res.Removed, res.Backup)
	}
	if _, err := os.Stat(Under(root, deploy.DefaultRecordPath)); err != nil {
		t.Fatal("dry run removed the record")
	}

	res, err = runUninstall(t, uninstallOptions(root, rec), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		Under(root, path.Join(UnitDir, "hbbs.service")), Under(root, path.Join(WantsDir, "hbbs.service")),
		Under(root, path.Join(UnitDir, "hbbr.service")), Under(root, path.Join(WantsDir, "hbbr.service")),
		Under(root, SysusersPath), Under(root, deploy.DefaultRecordPath),
	}
	if !slices.Equal(res.Removed, want) {
		t.Errorf("removed %v, want %v", res.Removed, want)
	}
	for _, p := range want {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if !strings.HasSuffix(res.Backup, "-uninstall") || !res.KeptWorkingDir || !slices.Equal(res.Kept, []string{wd}) {
		t.Errorf("backup %q, kept %v (%v)", res.Backup, res.Kept, res.KeptWorkingDir)
	}
	if got, _ := os.ReadFile(filepath.Join(wd, keys.SecretFile)); !bytes.Equal(got, secret) {
		t.Error("the key changed")
	}
	if len(res.Notes) != 0 || len(res.Stopped) != 0 || len(res.Disabled) != 0 {
		t.Errorf("notes %v, stopped %v, disabled %v in an image tree", res.Notes, res.Stopped, res.Disabled)
	}
}

func TestUninstallPurge(t *testing.T) {
	root, rec := installedTree(t)
	o := uninstallOptions(root, rec)
	o.Purge = true
	res, err := runUninstall(t, o, false)
	if err != nil {
		t.Fatal(err)
	}
	wd := Under(root, rec.WorkingDir)
	if !res.PurgedKeys || res.KeptWorkingDir || !slices.Equal(res.Kept, []string{o.StateDir + "/backups"}) {
		t.Errorf("purged %v, kept %v", res.PurgedKeys, res.Kept)
	}
	if _, err := os.Lstat(filepath.Join(wd, keys.SecretFile)); !os.IsNotExist(err) {
		t.Errorf("secret still there: %v", err)
	}
}

func TestUninstallLeavesForeignUnits(t *testing.T) {
	root, rec := installedTree(t)
	foreign := Under(root, path.Join(UnitDir, "hbbr.service"))
	if err := os.WriteFile(foreign, []byte("[Service]\nExecStart=/usr/bin/hbbr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := runUninstall(t, uninstallOptions(root, rec), false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.LeftUnits, []string{"/etc/systemd/system/hbbr.service"}) || res.Kept[0] != "/etc/systemd/system/hbbr.service" {
		t.Errorf("left %v, kept %v", res.LeftUnits, res.Kept)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Error("removed a unit rdctl did not write")
	}
}

// Without a key to back up, uninstall notes it and goes on; with Purge it
// refuses, in a dry run too, before anything changed.
func TestUninstallWithoutKey(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, wd string)
		purge   bool
		note    UninstallNoteKind
		refuses bool
	}{
		{name: "no working dir", setup: func(t *testing.T, wd string) { must(t, os.RemoveAll(wd)) }, note: NoteNoWorkingDir},
		{name: "unusable key", setup: writeBadKey, note: NoteKeyNotBackedUp},
		{name: "unusable key, purge", setup: writeBadKey, purge: true, refuses: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, rec := installedTree(t)
			tc.setup(t, Under(root, rec.WorkingDir))
			o := uninstallOptions(root, rec)
			o.Purge = tc.purge
			for _, dry := range []bool{true, false} {
				res, err := runUninstall(t, o, dry)
				if tc.refuses {
					if err == nil || !errors.Is(err, rotate.ErrNoLiveKey) {
						t.Fatalf("dry run %v: %v", dry, err)
					}
					if _, err := os.Stat(Under(root, path.Join(UnitDir, "hbbs.service"))); err != nil {
						t.Fatal("units removed although uninstall refused")
					}
					continue
				}
				if err != nil {
					t.Fatalf("dry run %v: %v", dry, err)
				}
				if dry {
					continue
				}
				if len(res.Notes) != 1 || res.Notes[0].Kind != tc.note || res.Backup != "" {
					t.Errorf("notes %+v, backup %q", res.Notes, res.Backup)
				}
			}
		})
	}
}

func TestUninstallLive(t *testing.T) {
	active := UnitState{LoadState: "loaded", ActiveState: "active"}
	inactive := UnitState{LoadState: "loaded", ActiveState: "inactive"}
	for _, tc := range []struct {
		name      string
		states    map[string]UnitState
		failStop  string
		wantCalls []string
		stopped   []string
		disabled  []string
		stage     UninstallStage
	}{
		{name: "both running", states: map[string]UnitState{"hbbs.service": active, "hbbr.service": active},
			wantCalls: []string{"stop hbbs.service", "stop hbbr.service", "disable hbbs.service hbbr.service", "reload"},
			stopped:   []string{"hbbs.service", "hbbr.service"}, disabled: []string{"hbbs.service", "hbbr.service"}},
		{name: "hbbr stopped", states: map[string]UnitState{"hbbs.service": active, "hbbr.service": inactive},
			wantCalls: []string{"stop hbbs.service", "disable hbbs.service hbbr.service", "reload"},
			stopped:   []string{"hbbs.service"}, disabled: []string{"hbbs.service", "hbbr.service"}},
		{name: "unknown to systemd", states: map[string]UnitState{},
			wantCalls: []string{"reload"}, stopped: []string{}, disabled: []string{}},
		{name: "stop fails", states: map[string]UnitState{"hbbs.service": active, "hbbr.service": active}, failStop: "hbbr.service",
			wantCalls: []string{"stop hbbs.service"}, stopped: []string{"hbbs.service"}, disabled: []string{}, stage: StageStop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, rec := installedTree(t)
			m := &fakeManager{states: tc.states, failStop: tc.failStop}
			o := uninstallOptions(root, rec)
			o.Live, o.Connect = true, m.connect
			res, err := runUninstall(t, o, false)
			var ue *UninstallError
			switch {
			case tc.stage == 0 && err != nil:
				t.Fatal(err)
			case tc.stage != 0 && (!errors.As(err, &ue) || ue.Stage != tc.stage || ue.Unit != tc.failStop):
				t.Fatalf("error %v, want stage %d for %s", err, tc.stage, tc.failStop)
			}
			if !slices.Equal(m.calls, tc.wantCalls) {
				t.Errorf("calls %q, want %q", m.calls, tc.wantCalls)
			}
			if !slices.Equal(res.Stopped, tc.stopped) || !slices.Equal(res.Disabled, tc.disabled) {
				t.Errorf("stopped %v, disabled %v", res.Stopped, res.Disabled)
			}
			_, statErr := os.Stat(Under(root, path.Join(UnitDir, "hbbs.service")))
			if removed := os.IsNotExist(statErr); removed != (tc.stage == 0) {
				t.Errorf("unit file removed: %v", removed)
			}
		})
	}
}

func TestUninstallOtherBackend(t *testing.T) {
	rec := testRecord(false)
	rec.Backend = deploy.BackendCompose
	var ns *NotSystemdError
	if _, _, err := UninstallPlan(t.Context(), UninstallOptions{Record: rec, LookupUnit: lookupEtc}); !errors.As(err, &ns) {
		t.Fatalf("err = %v", err)
	}
}

func writeBadKey(t *testing.T, wd string) {
	must(t, os.WriteFile(filepath.Join(wd, keys.SecretFile), []byte("not a key"), 0o600))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
