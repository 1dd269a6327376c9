package systemd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
)

var testBins = &Binaries{HBBS: []byte("\x7fELF hbbs"), HBBR: []byte("\x7fELF hbbr")}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// installWithBinaries installs testRecord with binaries into a fresh tree
// and returns the record as written.
func installWithBinaries(t *testing.T, bins *Binaries) (root string, rec *deploy.Record) {
	t.Helper()
	root = t.TempDir()
	p, _, err := InstallPlan(InstallOptions{Root: root, Record: testRecord(false), RecordPath: Under(root, deploy.DefaultRecordPath),
		Binaries: bins, KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	rec, err = deploy.LoadRecord(Under(root, deploy.DefaultRecordPath))
	if err != nil {
		t.Fatal(err)
	}
	return root, rec
}

// install records the binaries it wrote with their sha256; an install
// without --binaries keeps that list.
func TestInstallRecordsBinaries(t *testing.T) {
	root, rec := installWithBinaries(t, testBins)
	want := []deploy.InstalledBinary{
		{Path: "/usr/local/bin/hbbr", SHA256: hexSum(testBins.HBBR)},
		{Path: "/usr/local/bin/hbbs", SHA256: hexSum(testBins.HBBS)},
	}
	if !reflect.DeepEqual(rec.InstalledBinaries, want) {
		t.Fatalf("recorded %+v", rec.InstalledBinaries)
	}
	p, _, err := InstallPlan(InstallOptions{Root: root, Record: testRecord(false), RecordPath: Under(root, deploy.DefaultRecordPath),
		KeyOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := p.Run(false); err != nil || plan.Changed(rs) != 0 {
		t.Errorf("reinstall without binaries: %+v %v", rs, err)
	}
	if again, _ := deploy.LoadRecord(Under(root, deploy.DefaultRecordPath)); !reflect.DeepEqual(again.InstalledBinaries, want) {
		t.Errorf("after a reinstall: %+v", again.InstalledBinaries)
	}
	// a record with a bad hash or a relative path is refused
	for _, b := range []deploy.InstalledBinary{{Path: "/usr/local/bin/hbbs", SHA256: "abc"}, {Path: "hbbs", SHA256: hexSum(nil)}} {
		bad := *rec
		bad.InstalledBinaries = []deploy.InstalledBinary{b}
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", b)
		}
	}
}

// --purge on an image tree removes the binaries rdctl installed, only
// while they are what it installed; a dry run removes nothing.
func TestUninstallPurgeBinaries(t *testing.T) {
	root, rec := installWithBinaries(t, testBins)
	hbbs, hbbr := Under(root, "/usr/local/bin/hbbs"), Under(root, "/usr/local/bin/hbbr")
	// hbbs replaced since: it stays
	must(t, os.WriteFile(hbbs, []byte("\x7fELF other hbbs"), 0o755))
	o := uninstallOptions(root, rec)
	o.PurgeInstall = true
	res, err := runUninstall(t, o, true)
	if err != nil || len(res.Removed) != 0 {
		t.Fatalf("dry run: removed %v, %v", res.Removed, err)
	}
	if len(res.Notes) != 1 || res.Notes[0].Kind != NoteBinaryChanged || res.Notes[0].Path != hbbs {
		t.Errorf("dry run notes %+v", res.Notes)
	}
	for _, p := range []string{hbbs, hbbr} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("dry run: %v", err)
		}
	}
	res, err = runUninstall(t, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Removed, hbbr) || slices.Contains(res.Removed, hbbs) {
		t.Errorf("removed %v", res.Removed)
	}
	if _, err := os.Stat(hbbr); !os.IsNotExist(err) {
		t.Errorf("hbbr still there: %v", err)
	}
	if _, err := os.Stat(hbbs); err != nil {
		t.Errorf("removed a binary rdctl did not install: %v", err)
	}
	if len(res.Notes) != 1 || res.Notes[0].Kind != NoteBinaryChanged {
		t.Errorf("notes %+v", res.Notes)
	}
	// keys stay without Purge; no user or firewall step in an image tree
	if !res.KeptWorkingDir || res.DeletedUser != "" || res.Firewall != nil {
		t.Errorf("kept %v, user %q, firewall %v", res.Kept, res.DeletedUser, res.Firewall)
	}
}

// Without PurgeInstall the binaries stay, as before.
func TestUninstallWithoutPurgeKeepsBinaries(t *testing.T) {
	root, rec := installWithBinaries(t, testBins)
	if _, err := runUninstall(t, uninstallOptions(root, rec), false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/usr/local/bin/hbbs", "/usr/local/bin/hbbr"} {
		if _, err := os.Stat(Under(root, p)); err != nil {
			t.Error(err)
		}
	}
}

type fakeAccounts struct {
	users   map[string]string // name -> comment
	deleted []string
}

func (f *fakeAccounts) Comment(name string) (string, bool, error) {
	c, ok := f.users[name]
	return c, ok, nil
}

func (f *fakeAccounts) Delete(_ context.Context, name string) error {
	delete(f.users, name)
	f.deleted = append(f.deleted, name)
	return nil
}

// fakeUFW is an active ufw holding rdctl's open rules.
type fakeUFW struct {
	added []string
	ran   []string
}

func (f *fakeUFW) LookPath(name string) (string, error) {
	if name != "ufw" {
		return "", &fs.PathError{Op: "lookpath", Path: name, Err: fs.ErrNotExist}
	}
	return "/usr/sbin/ufw", nil
}

func (f *fakeUFW) Run(_ context.Context, argv []string, _ string) (string, int, error) {
	line := strings.Join(argv, " ")
	if line == "ufw show added" {
		return "Added user rules:\n" + strings.Join(f.added, "\n") + "\n", 0, nil
	}
	f.ran = append(f.ran, line)
	f.added = slices.DeleteFunc(f.added, func(l string) bool {
		return strings.HasPrefix(l, "ufw "+strings.Join(argv[2:], " ")+" comment ")
	})
	return "Rule deleted\n", 0, nil
}

// A live --purge, through fakes for systemd, the user database and ufw:
// the firewall rules and rdctl's user go, in plan order, before the
// files; a user rdctl did not make (another comment) stays.
func TestUninstallPurgeLive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		comment  string
		sysusers bool
		deleted  bool
	}{
		{"rdctl's user", UserComment, true, true},
		{"a user of the same name, not rdctl's", "RustDesk", true, false},
		{"no sysusers entry of rdctl's", UserComment, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, rec := installWithBinaries(t, testBins)
			if !tc.sysusers {
				must(t, os.WriteFile(Under(root, SysusersPath), []byte("u rustdesk - \"RustDesk server (rdctl)\" /var/lib/rustdesk -\n"), 0o644))
			}
			m := &fakeManager{states: map[string]UnitState{
				"hbbs.service": {Name: "hbbs.service", LoadState: "loaded", ActiveState: "active"},
				"hbbr.service": {Name: "hbbr.service", LoadState: "loaded", ActiveState: "active"}}}
			acc := &fakeAccounts{users: map[string]string{"rustdesk": tc.comment}}
			fw := &fakeUFW{added: []string{"ufw allow 22/tcp", "ufw allow 21115:21119/tcp comment 'rdctl: RustDesk server'", "ufw allow 21116/udp comment 'rdctl: RustDesk server'"}}
			o := uninstallOptions(root, rec)
			o.Live, o.Connect, o.PurgeInstall, o.Accounts, o.Firewall = true, m.connect, true, acc, fw

			steps, _, err := UninstallPlan(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			var p plan.Plan
			p.Add(steps...)
			drs, err := p.Run(true)
			if err != nil || len(fw.ran) != 0 || len(acc.deleted) != 0 || len(m.calls) != 0 {
				t.Fatalf("dry run: %v, ran %v, deleted %v, calls %v", err, fw.ran, acc.deleted, m.calls)
			}
			steps, res, err := UninstallPlan(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			p = plan.Plan{}
			p.Add(steps...)
			rrs, err := p.Run(false)
			if err != nil {
				t.Fatal(err)
			}
			res.Finish()
			var order []string
			for i, r := range rrs {
				if r.Action != drs[i].Action || r.Target != drs[i].Target {
					t.Errorf("step %d: real %s %s, dry %s %s", i, r.Action, r.Target, drs[i].Action, drs[i].Target)
				}
				order = append(order, r.Action+" "+r.Target)
			}
			head := []string{"stop and disable hbbs.service and hbbr.service",
				"run ufw delete allow 21115:21119/tcp", "run ufw delete allow 21116/udp",
				"run ufw delete allow in on tailscale0 to any port 21115:21119 proto tcp",
				"run ufw delete allow in on tailscale0 to any port 21116 proto udp",
				// the firewall --proxy variants
				"run ufw delete allow 21115:21117/tcp", "run ufw delete deny 21118:21119/tcp",
				"run ufw delete allow in on tailscale0 to any port 21115:21117 proto tcp"}
			if tc.sysusers {
				head = append(head, "delete the system user rustdesk")
			}
			if !slices.Equal(order[1:len(head)+1], head) || order[len(order)-1] != "remove "+Under(root, deploy.DefaultRecordPath) {
				t.Errorf("steps:\n%s", strings.Join(order, "\n"))
			}
			if !slices.Equal(fw.added, []string{"ufw allow 22/tcp"}) || len(res.Firewall) != 2 {
				t.Errorf("ufw left %v, results %+v", fw.added, res.Firewall)
			}
			if tc.deleted != (res.DeletedUser == "rustdesk") || tc.deleted != slices.Equal(acc.deleted, []string{"rustdesk"}) {
				t.Errorf("deleted %q %v", res.DeletedUser, acc.deleted)
			}
			if !tc.deleted && (len(res.Notes) == 0 || res.Notes[len(res.Notes)-1].Kind != NoteUserNotOurs) {
				t.Errorf("notes %+v", res.Notes)
			}
			for _, b := range rec.InstalledBinaries {
				if _, err := os.Stat(Under(root, b.Path)); !os.IsNotExist(err) {
					t.Errorf("%s: %v", b.Path, err)
				}
			}
			if !res.KeptWorkingDir {
				t.Error("the keys went without Purge")
			}
		})
	}
}

// install exporter's files go with PurgeInstall only (the exporter may
// watch other servers too): without it they stay, with a note; a unit by
// that name that rdctl did not write stays either way.
func TestUninstallExporter(t *testing.T) {
	files := []string{path.Join(UnitDir, ExporterUnitName), path.Join(WantsDir, ExporterUnitName), ExporterScrapeConfigPath}
	withExporter := func(t *testing.T) (string, *deploy.Record) {
		root, rec := installedTree(t)
		if _, err := ExporterPlan(root, ExporterSpecFromRecord(rec, "/usr/bin/rdctl", "127.0.0.1:9752")).Run(false); err != nil {
			t.Fatal(err)
		}
		return root, rec
	}
	exists := func(root, p string) bool { _, err := os.Lstat(Under(root, p)); return err == nil }

	root, rec := withExporter(t)
	res, err := runUninstall(t, uninstallOptions(root, rec), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !exists(root, f) {
			t.Errorf("without --purge %s was removed", f)
		}
	}
	if len(res.Notes) != 1 || res.Notes[0].Kind != NoteExporterKept || res.Notes[0].Path != Under(root, files[0]) {
		t.Errorf("notes %+v", res.Notes)
	}

	root, rec = withExporter(t)
	o := uninstallOptions(root, rec)
	o.PurgeInstall = true
	res, err = runUninstall(t, o, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if exists(root, f) {
			t.Errorf("with --purge %s is still there", f)
		}
		if !slices.Contains(res.Removed, Under(root, f)) {
			t.Errorf("%s not reported removed: %v", f, res.Removed)
		}
	}

	// Someone else's unit by that name.
	root, rec = withExporter(t)
	must(t, os.WriteFile(Under(root, files[0]), []byte("[Service]\nExecStart=/opt/other/exporter\n"), 0o644))
	o = uninstallOptions(root, rec)
	o.PurgeInstall = true
	res, err = runUninstall(t, o, false)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(root, files[0]) || slices.Contains(res.Removed, Under(root, files[0])) {
		t.Errorf("removed a %s rdctl did not write", ExporterUnitName)
	}
}

// fakeFirewalld answers firewall-cmd's queries for a host with rdctl's
// service in the default zone and a guide's port rules.
type fakeFirewalld struct{ ran []string }

func (f *fakeFirewalld) LookPath(name string) (string, error) {
	if name != "firewall-cmd" {
		return "", &fs.PathError{Op: "lookpath", Path: name, Err: fs.ErrNotExist}
	}
	return "/usr/bin/firewall-cmd", nil
}

func (f *fakeFirewalld) Run(_ context.Context, argv []string, _ string) (string, int, error) {
	switch line := strings.Join(argv, " "); line {
	case "firewall-cmd --state":
		return "running\n", 0, nil
	case "firewall-cmd --get-default-zone":
		return "public\n", 0, nil
	case "firewall-cmd --permanent --zone=public --list-ports":
		return "21115-21117/tcp 21117/udp 21118-21119/tcp\n", 0, nil
	case "firewall-cmd --permanent --get-services":
		return "ssh rdctl-rustdesk\n", 0, nil
	case "firewall-cmd --permanent --get-zones":
		return "public\n", 0, nil
	case "firewall-cmd --permanent --query-service=rdctl-rustdesk":
		return "yes\n", 0, nil
	default:
		f.ran = append(f.ran, line)
		return "success\n", 0, nil
	}
}

// A live --purge on firewalld removes rdctl's service and leaves the port
// rules that admit the same ports, with a note naming them.
func TestUninstallPurgeKeepsFirewalldPortRules(t *testing.T) {
	root, rec := installWithBinaries(t, testBins)
	m := &fakeManager{states: map[string]UnitState{
		"hbbs.service": {Name: "hbbs.service", LoadState: "loaded", ActiveState: "active"},
		"hbbr.service": {Name: "hbbr.service", LoadState: "loaded", ActiveState: "active"}}}
	fw := &fakeFirewalld{}
	o := uninstallOptions(root, rec)
	o.Live, o.Connect, o.PurgeInstall, o.Accounts, o.Firewall = true, m.connect, true, &fakeAccounts{users: map[string]string{}}, fw
	steps, res, err := UninstallPlan(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	p.Add(steps...)
	if _, err := p.Run(false); err != nil {
		t.Fatal(err)
	}
	want := []string{"firewall-cmd --permanent --remove-service=rdctl-rustdesk", "firewall-cmd --permanent --delete-service=rdctl-rustdesk", "firewall-cmd --reload"}
	if !slices.Equal(fw.ran, want) {
		t.Errorf("ran %v, want %v", fw.ran, want)
	}
	var note *UninstallNote
	for i := range res.Notes {
		if res.Notes[i].Kind == NoteFirewallPortRulesKept {
			note = &res.Notes[i]
		}
	}
	if note == nil || fmt.Sprint(note.PortRules) != "[21115-21117/tcp 21118-21119/tcp]" {
		t.Errorf("notes %+v", res.Notes)
	}
}
