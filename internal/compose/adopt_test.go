package compose

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
)

// The guide's ./data:/data on the classic image: the error finding that
// stops the record, and what --force records (the mount's host directory
// and its real target, so doctor's data-mounted check fires on it).
// (Moved from cmd/rdctl, where the findings used to be classified.)
func TestComposeAdoptRecord(t *testing.T) {
	m := Mount{Type: "bind", Source: "/srv/rd/data", Destination: "/data", RW: true}
	d := &Detected{Project: "rd", ProjectDir: "/srv/rd", Image: "rustdesk/rustdesk-server:1.1.16", Network: "rd_default",
		Relay: "rd.example.com:21117", WorkingDir: "/root",
		Services: []ServiceStatus{{Service: "hbbs", Command: []string{"hbbs", "-r", "rd.example.com:21117"}, Mounts: []Mount{m}, WorkingDir: "/root"},
			{Service: "hbbr", Command: []string{"hbbr"}, Mounts: []Mount{m}, WorkingDir: "/root"}}}
	d.Warnings = warnings(d)
	fs := d.Findings()
	if len(fs) != 2 || fs[0].ID != "keys-in-container-layer" || fs[0].Severity != adopt.SeverityError ||
		fs[1].ID != "hbbr-enforces-key" || fs[1].Severity != adopt.SeverityWarning {
		t.Errorf("findings %+v", fs)
	}
	if !strings.Contains(fs[0].Message, "(/srv/rd/data:/data) but the classic image works in /root") || !adopt.HasError(fs) {
		t.Errorf("findings %+v", fs)
	}
	rec, err := d.Record("")
	if err != nil {
		t.Fatal(err)
	}
	rec.IDHost = "rd.example.com"
	if err := rec.Validate(); err != nil {
		t.Fatal(err)
	}
	want := deploy.ComposeRecord{Dir: "/srv/rd", Image: d.Image, Network: "bridge", Project: "rd", MountTarget: "/data"}
	if rec.WorkingDir != "/srv/rd/data" || *rec.Compose != want || rec.Origin != "compose" || rec.Backend != "compose" ||
		rec.Relay != "rd.example.com:21117" || rec.HBBREnforcesKey {
		t.Errorf("record %+v %+v", rec, rec.Compose)
	}

	// The docs' stack: ./data:/root, host network, -k _ on hbbr.
	m.Destination = "/root"
	d = &Detected{Project: "rd", ProjectDir: "/srv/rd", Image: "rustdesk/rustdesk-server:1.1.16", Network: "host",
		WorkingDir: "/root", DataDir: "/srv/rd/data", MountTarget: "/root", KeysPresent: true, HBBRKey: "_",
		Services: []ServiceStatus{{Service: "hbbr", Command: []string{"hbbr", "-k", "_"}, Mounts: []Mount{m}}}}
	d.Warnings = warnings(d)
	if fs := d.Findings(); len(fs) != 0 || adopt.HasError(fs) {
		t.Errorf("findings on a sound stack: %+v", fs)
	}
	if rec, err = d.Record("relay.example.com"); err != nil || rec.WorkingDir != "/srv/rd/data" || rec.Compose.Network != "host" ||
		rec.Compose.MountTarget != "/root" || rec.Relay != "relay.example.com:21117" || !rec.HBBREnforcesKey {
		t.Errorf("record %+v (%v)", rec, err)
	}

	// No mount at all: nothing on the host to record, even with --force.
	d.DataDir, d.Services = "", []ServiceStatus{{Service: "hbbs"}}
	if _, err := d.Record(""); err == nil || !strings.Contains(err.Error(), "mounts no host directory") {
		t.Errorf("no mounts: %v", err)
	}
}

// Each risk is a finding with its own ID and severity, made where it is
// detected, so nobody downstream reads the message to tell them apart.
func TestWarningsAreTyped(t *testing.T) {
	hbbs := func(keyDir string) ServiceStatus {
		return ServiceStatus{Service: "hbbs", Command: []string{"hbbs"}, KeyDir: keyDir}
	}
	hbbr := func(keyDir string) ServiceStatus {
		return ServiceStatus{Service: "hbbr", Command: []string{"hbbr", "-k", "_"}, KeyDir: keyDir}
	}
	for _, tc := range []struct {
		name string
		d    Detected
		want []string // ID/severity
	}{
		{"sound", Detected{WorkingDir: "/root", DataDir: "/srv/data", KeysPresent: true, HBBRKey: "_",
			Services: []ServiceStatus{hbbs("/srv/data"), hbbr("/srv/data")}}, nil},
		{"container layer", Detected{WorkingDir: "/root", HBBRKey: "_", Services: []ServiceStatus{hbbs(""), hbbr("")}},
			[]string{"keys-in-container-layer/error"}},
		{"split dirs", Detected{WorkingDir: "/root", DataDir: "/srv/a", KeysPresent: true, HBBRKey: "_",
			Services: []ServiceStatus{hbbs("/srv/a"), hbbr("/srv/b")}}, []string{"split-working-dirs/warning"}},
		{"no key yet, split", Detected{WorkingDir: "/root", DataDir: "/srv/a", HBBRKey: "_",
			Services: []ServiceStatus{hbbs("/srv/a"), hbbr("/srv/b")}}, []string{"split-working-dirs/warning", "no-secret-key/warning"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range warnings(&tc.d) {
				if f.Message == "" {
					t.Errorf("%s has no message", f.ID)
				}
				got = append(got, f.ID+"/"+string(f.Severity))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FindStack picks the one running stack, the named one, or says why not
// with a typed error.
func TestFindStack(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	ctx := context.Background()
	if _, err := FindStack(ctx, ""); !errors.Is(err, ErrNoStack) {
		t.Errorf("no stacks: %v", err)
	}
	f.stack("one", t.TempDir())
	if d, err := FindStack(ctx, ""); err != nil || d.Project != "one" {
		t.Errorf("one stack: %+v %v", d, err)
	}
	f.stack("two", t.TempDir())
	var several *SeveralStacksError
	if _, err := FindStack(ctx, ""); !errors.As(err, &several) || len(several.Stacks) != 2 || !strings.Contains(err.Error(), "found 2 compose projects running RustDesk: one (") {
		t.Errorf("two stacks: %v", err)
	}
	if d, err := FindStack(ctx, "two"); err != nil || d.Project != "two" {
		t.Errorf("--project two: %+v %v", d, err)
	}
	if _, err := FindStack(ctx, "three"); !errors.Is(err, ErrNoStack) {
		t.Errorf("--project three: %v", err)
	}
}
