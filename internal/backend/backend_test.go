package backend

import (
	"errors"
	"testing"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	_ "github.com/rdctl/rdctl/internal/golden" // -update, as every rdctl test package accepts
	"github.com/rdctl/rdctl/internal/systemd"
)

func TestLocalRendezvous(t *testing.T) {
	for bind, want := range map[string]string{
		"":            "127.0.0.1:21116",
		"0.0.0.0":     "127.0.0.1:21116",
		"::":          "127.0.0.1:21116",
		"10.0.0.5":    "10.0.0.5:21116",
		"fd7a:115c::": "[fd7a:115c::]:21116",
	} {
		if got := LocalRendezvous(&deploy.Record{Bind: bind}); got != want {
			t.Errorf("bind %q: %s, want %s", bind, got, want)
		}
	}
}

func TestRuntime(t *testing.T) {
	systemdRec := &deploy.Record{Backend: deploy.BackendSystemd, HBBSUnit: "hbbs.service", HBBRUnit: "hbbr.service"}
	composeRec := &deploy.Record{Backend: deploy.BackendCompose, Compose: &deploy.ComposeRecord{Dir: "/srv/rustdesk", Project: "rd"}}
	tests := []struct {
		name    string
		rec     *deploy.Record
		root    string
		check   func(t *testing.T, rt deploy.Runtime)
		wantErr func(error) bool
	}{
		{name: "image tree", rec: systemdRec, root: "/img", check: func(t *testing.T, rt deploy.Runtime) {
			if _, ok := rt.(deploy.NoRuntime); !ok {
				t.Errorf("%T, want NoRuntime", rt)
			}
		}},
		{name: "compose image tree", rec: &deploy.Record{Backend: deploy.BackendCompose}, root: "/img", check: func(t *testing.T, rt deploy.Runtime) {
			if _, ok := rt.(deploy.NoRuntime); !ok {
				t.Errorf("%T, want NoRuntime", rt)
			}
		}},
		{name: "systemd", rec: systemdRec, check: func(t *testing.T, rt deploy.Runtime) {
			s, ok := rt.(*systemd.Runtime)
			if !ok || s.HBBS != "hbbs.service" || s.HBBR != "hbbr.service" || s.Ready == nil {
				t.Errorf("%#v", rt)
			}
		}},
		{name: "compose", rec: composeRec, check: func(t *testing.T, rt deploy.Runtime) {
			c, ok := rt.(*compose.Runtime)
			if !ok || c.Project != "rd" || c.File != "/srv/rustdesk/"+compose.FileName || c.Ready == nil {
				t.Errorf("%#v", rt)
			}
		}},
		{name: "compose without a stack", rec: &deploy.Record{Backend: deploy.BackendCompose},
			wantErr: func(err error) bool { return errors.Is(err, ErrNoComposeStack) }},
		{name: "unknown backend", rec: &deploy.Record{Backend: "podman"}, wantErr: func(err error) bool {
			var u *UnsupportedError
			return errors.As(err, &u) && u.Backend == "podman"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := Runtime(tc.rec, tc.root)
			if tc.wantErr != nil {
				// A nil interface, not a nil *compose.Runtime inside a non-nil one.
				if !tc.wantErr(err) || rt != nil {
					t.Errorf("Runtime = %#v, %v", rt, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, rt)
			// Only a runtime that runs something is verified after a rotation.
			if v := Verifier(tc.rec, rt); (v == nil) != (tc.root != "") {
				t.Errorf("verifier %v for %T", v != nil, rt)
			}
		})
	}
}

// A compose record without a project uses the name compose derives from
// the stack's directory.
func TestComposeDefaultProject(t *testing.T) {
	rt, err := Compose(&deploy.Record{Backend: deploy.BackendCompose, Compose: &deploy.ComposeRecord{Dir: "/srv/RustDesk"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := compose.ProjectName("/srv/RustDesk"); rt.Project != want || want == "" {
		t.Errorf("project %q, want %q", rt.Project, want)
	}
}
