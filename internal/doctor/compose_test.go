package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// Behind a proxy, a container publishing 21118 or 21119 on every address
// is an error naming the install that publishes them on loopback; on
// loopback they pass; without a proxy there is no such check.
func TestWebSocketsPublished(t *testing.T) {
	dir := "/srv/rd/data"
	rec := &deploy.Record{Format: 1, Backend: "compose", Origin: "rdctl", IDHost: "rd.example.com", Relay: "rd.example.com:21117", WorkingDir: dir,
		Compose: &deploy.ComposeRecord{Dir: "/srv/rd", Image: "rustdesk/rustdesk-server:1.1.16", Network: "bridge", Project: "rd", MountTarget: "/root"},
		Proxy:   &deploy.ProxyRecord{Kind: deploy.ProxyCaddy, Domain: "rd.example.com", TLS: "automatic", Config: "/etc/caddy/rdctl/rustdesk-rd.example.com.caddy"}}
	stack := func(wsIP string) *compose.StackStatus {
		st := composeStack(dir)
		st.Services[0].Published = []compose.PublishedPort{{Port: "21116/tcp", HostPort: "21116"}, {Port: "21118/tcp", HostIP: wsIP, HostPort: "21118"}}
		st.Services[1].Published = []compose.PublishedPort{{Port: "21117/tcp", HostPort: "21117"}, {Port: "21119/tcp", HostIP: wsIP, HostPort: "21119"}}
		return st
	}
	check := func(rec *deploy.Record, st *compose.StackStatus) []Check {
		var cs checks
		(&Input{Root: t.TempDir(), Record: rec}).webSocketsPublished(&cs, st)
		return cs
	}
	c := mustFail(t, check(rec, stack("")), "proxy-ws-published", false,
		"hbbs publishes 21118/tcp on every address, hbbr publishes 21119/tcp on every address")
	if c.Severity != SeverityError || !strings.Contains(c.Message, "rdctl install compose --dir /srv/rd --network bridge --relay rd.example.com:21117 --id-host rd.example.com") {
		t.Errorf("%+v", c)
	}
	if c, ok := byID(check(rec, stack("127.0.0.1")), "proxy-ws-published"); !ok || !c.OK {
		t.Errorf("on loopback: %+v", c)
	}
	plain := *rec
	plain.Proxy = nil
	if cs := check(&plain, stack("")); len(cs) != 0 {
		t.Errorf("without a proxy: %+v", cs)
	}
}
