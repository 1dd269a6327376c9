package adopt

import (
	"errors"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
)

func TestRequestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       Request
		backend string // after Check
		err     string // "" none, "input", or the conflict's message
	}{
		{name: "nothing", r: Request{Live: true}},
		{name: "origin", r: Request{Origin: OriginDebian}},
		{name: "unknown origin", r: Request{Origin: "compose"}, err: "input"},
		{name: "unknown backend", r: Request{Backend: "podman"}, err: "input"},
		{name: "project implies compose", r: Request{Project: "rd", Live: true}, backend: deploy.BackendCompose},
		{name: "project with systemd", r: Request{Project: "rd", Backend: deploy.BackendSystemd, Live: true},
			err: "--project names a compose project; it cannot be used with --backend systemd"},
		{name: "origin with compose", r: Request{Origin: OriginRdctl, Backend: deploy.BackendCompose, Live: true},
			err: "--origin chooses among systemd installs; it cannot be used with --backend compose"},
		{name: "compose in an image", r: Request{Project: "rd"},
			err: "--backend compose asks the live Docker engine; it cannot be used with --root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.Check()
			var input *deploy.InputError
			var conflict *FlagConflictError
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "input" && !errors.As(err, &input):
				t.Fatalf("err = %v, want an InputError", err)
			case tc.err != "" && tc.err != "input" && (!errors.As(err, &conflict) || err.Error() != tc.err):
				t.Fatalf("err = %v, want %q", err, tc.err)
			case tc.err == "" && got.Backend != tc.backend:
				t.Errorf("backend %q, want %q", got.Backend, tc.backend)
			}
		})
	}
}

func TestComposeFallback(t *testing.T) {
	for _, tc := range []struct {
		r    Request
		want bool
	}{
		{Request{Live: true}, true},
		{Request{}, false},
		{Request{Live: true, Origin: OriginDebian}, false},
		{Request{Live: true, Backend: deploy.BackendSystemd}, false},
	} {
		if got := tc.r.ComposeFallback(); got != tc.want {
			t.Errorf("%+v: %v", tc.r, got)
		}
	}
}

func TestNotFoundError(t *testing.T) {
	err := error(&NotFoundError{Compose: true})
	if !errors.Is(err, ErrNoInstall) || err.Error() != "found no hbbs/hbbr install in this host (looked for rustdesk-hbbs.service, "+
		"rustdesksignal.service and hbbs.service, and compose projects running a rustdesk image)" {
		t.Errorf("%v", err)
	}
	if got := (&NotFoundError{Root: "/img"}).Error(); got != "found no hbbs/hbbr install in /img (looked for rustdesk-hbbs.service, rustdesksignal.service and hbbs.service)" {
		t.Error(got)
	}
}
