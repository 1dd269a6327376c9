package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
)

// composeStack is a healthy classic-image stack: dir mounted at /root in
// both containers, both running.
func composeStack(dir string) *compose.StackStatus {
	m := compose.Mount{Type: "bind", Source: dir, Destination: "/root", RW: true}
	svc := func(name string) compose.ServiceStatus {
		return compose.ServiceStatus{Service: name, Container: "rd-" + name + "-1", State: "running", Running: true,
			Image: "rustdesk/rustdesk-server:1.1.16", WorkingDir: "/root", Mounts: []compose.Mount{m}, KeyDir: dir, KeyMount: &m}
	}
	return &compose.StackStatus{Project: "rd", Services: []compose.ServiceStatus{svc("hbbs"), svc("hbbr")}}
}

func TestContainerChecks(t *testing.T) {
	root := t.TempDir()
	dir := "/srv/rd/data"
	p, _ := keys.Generate(nil)
	writeFile(t, root, dir+"/id_ed25519", string(p.SecretFileBytes()), 0o600)
	rec := &deploy.Record{Format: 1, Backend: "compose", Origin: "compose", IDHost: "rd.example.com", WorkingDir: dir,
		Compose: &deploy.ComposeRecord{Dir: "/srv/rd", Image: "rustdesk/rustdesk-server:1.1.16", Network: "host", Project: "rd", MountTarget: "/root"}}
	check := func(st *compose.StackStatus, err error) []Check {
		in := Input{Root: root, Record: rec, Containers: st, ContainersErr: err}
		var cs checks
		in.containerChecks(&cs)
		return cs
	}
	mustOK := func(cs []Check, id string) {
		t.Helper()
		if c, ok := byID(cs, id); !ok || !c.OK || c.Skipped {
			t.Errorf("%s: %+v (present %v)", id, c, ok)
		}
	}

	cs := check(composeStack(dir), nil)
	for _, id := range []string{"containers-running", "containers-restarting", "data-mounted"} {
		mustOK(cs, id)
	}

	st := composeStack(dir)
	st.Services[1].State, st.Services[1].Running, st.Services[1].ExitCode = "exited", false, 2
	st.Services[0].Restarts = 4
	cs = check(st, nil)
	if c := mustFail(t, cs, "containers-running", false, "rd-hbbr-1 is exited (exit code 2)"); c.Severity != SeverityError {
		t.Errorf("severity %s", c.Severity)
	}
	if c := mustFail(t, cs, "containers-restarting", false, "rd-hbbs-1 restarted 4 times"); c.Severity != SeverityWarning {
		t.Errorf("severity %s", c.Severity)
	}

	st = composeStack(dir)
	st.Services[1] = compose.ServiceStatus{Service: "hbbr", State: "missing"}
	mustFail(t, check(st, nil), "containers-running", false, "hbbr is missing")

	// The guide's ./data:/data on the classic image: nothing covers /root.
	st = composeStack(dir)
	st.Services[0].Mounts = []compose.Mount{{Type: "bind", Source: dir, Destination: "/data"}}
	st.Services[0].KeyMount, st.Services[0].KeyDir = nil, ""
	mustFail(t, check(st, nil), "data-mounted", false, "container layer")

	// A mount of a parent: the keys are on the host, but not where the
	// record says.
	st = composeStack(dir)
	parent := compose.Mount{Type: "bind", Source: "/srv", Destination: "/"}
	st.Services[0].KeyMount, st.Services[0].KeyDir = &parent, "/srv/root"
	mustFail(t, check(st, nil), "data-mounted", false, "mount the data directory at /root itself")

	st = composeStack("/elsewhere")
	mustFail(t, check(st, nil), "data-mounted", false, "mounted from /elsewhere")

	if err := os.Remove(filepath.Join(root, dir, "id_ed25519")); err != nil {
		t.Fatal(err)
	}
	mustFail(t, check(composeStack(dir), nil), "data-mounted", false, "holds no id_ed25519")

	cs = check(nil, errors.New("cannot reach the Docker engine"))
	mustFail(t, cs, "containers-running", false, "cannot reach the Docker engine")
	if c, _ := byID(cs, "data-mounted"); !c.Skipped {
		t.Errorf("data-mounted without a state: %+v", c)
	}
}

// On a live host the compose backend gets the container checks instead of
// the unit ones.
func TestLiveChecksComposeBackend(t *testing.T) {
	rec := &deploy.Record{Format: 1, Backend: "compose", WorkingDir: "/srv/rd/data", Compose: &deploy.ComposeRecord{Project: "rd"}}
	in := Input{Record: rec, ContainersErr: compose.ErrNoEngine}
	var cs checks
	in.liveChecks(&cs)
	mustFail(t, cs, "containers-running", false, "compose project rd")
	if _, ok := byID(cs, "units-running"); ok {
		t.Errorf("units-running on the compose backend: %v", ids(cs))
	}
}
