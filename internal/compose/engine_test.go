package compose

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/keys"
)

// fakeEngine serves the part of the Docker Engine API rdctl uses, at API
// version 1.41 only, as Debian 12's Engine 20.10 does, on a real unix
// socket. It lets the unit tests drive the real moby client through
// negotiation, label filters and container state changes (crash loops
// included) that a real engine cannot be made to show on demand; the
// integration tests run the same code against a real engine.
type fakeEngine struct {
	mu         sync.Mutex
	containers []*fakeContainer
	calls      []string // "start hbbr", "stop hbbs", ...
	stopWaits  []string // the t (seconds to SIGKILL) of each stop
	badPaths   []string // requests not at /v1.41/
	nextID     int
	// hangInspectAfter > 0: inspects after that many hang until the
	// client gives up (an engine too slow for the caller's deadline).
	hangInspectAfter int
	inspects         int
}

type fakeContainer struct {
	id, name, project, service, image string
	oneoff                            bool
	status                            container.ContainerState
	restarts, exitCode                int
	cmd                               []string
	workdir, network                  string
	env                               []string
	mounts                            []container.MountPoint
	crashOnStart                      bool
	logs                              string
	created                           int64
}

func (f *fakeEngine) add(c *fakeContainer) *fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	c.id = fmt.Sprintf("%064x", f.nextID)
	c.created = int64(f.nextID)
	if c.name == "" {
		c.name = c.project + "-" + c.service + "-1"
	}
	if c.status == "" {
		c.status = container.StateRunning
	}
	f.containers = append(f.containers, c)
	return c
}

func (f *fakeEngine) labels(c *fakeContainer) map[string]string {
	l := map[string]string{}
	if c.project != "" {
		l[LabelProject] = c.project
		l[LabelService] = c.service
		l[LabelOneOff] = map[bool]string{true: "True", false: "False"}[c.oneoff]
		l[LabelWorkingDir] = "/srv/" + c.project
		l[LabelConfigFiles] = "/srv/" + c.project + "/compose.yaml"
	}
	return l
}

func (f *fakeEngine) find(id string) *fakeContainer {
	for _, c := range f.containers {
		if c.id == id || c.name == id {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) serve(t *testing.T) string {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("GET /v1.41/version", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
	})
	mux.HandleFunc("GET /v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var filters map[string]map[string]bool
		if s := r.URL.Query().Get("filters"); s != "" {
			if err := json.Unmarshal([]byte(s), &filters); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		}
		all := r.URL.Query().Get("all") == "1"
		out := []container.Summary{}
	next:
		for _, c := range f.containers {
			if !all && c.status != container.StateRunning && c.status != container.StateRestarting {
				continue
			}
			l := f.labels(c)
			for want := range filters["label"] {
				k, v, hasV := strings.Cut(want, "=")
				got, ok := l[k]
				if !ok || (hasV && got != v) {
					continue next
				}
			}
			out = append(out, container.Summary{ID: c.id, Names: []string{"/" + c.name}, Image: c.image, ImageID: "sha256:" + c.image,
				Labels: l, State: c.status, Created: c.created})
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /v1.41/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.inspects++
		if f.hangInspectAfter > 0 && f.inspects > f.hangInspectAfter {
			f.mu.Unlock()
			<-r.Context().Done()
			return
		}
		defer f.mu.Unlock()
		c := f.find(r.PathValue("id"))
		if c == nil {
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(map[string]string{"message": "No such container"})
			return
		}
		json.NewEncoder(w).Encode(container.InspectResponse{
			ID: c.id, Name: "/" + c.name, Path: c.cmd[0], Args: c.cmd[1:], Image: "sha256:" + c.image, RestartCount: c.restarts,
			State: &container.State{Status: c.status, Running: c.status == container.StateRunning || c.status == container.StateRestarting,
				Restarting: c.status == container.StateRestarting, ExitCode: c.exitCode},
			Config:     &container.Config{Image: c.image, WorkingDir: c.workdir, Labels: f.labels(c), Env: c.env, Cmd: c.cmd},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(c.network)},
			Mounts:     c.mounts,
		})
	})
	act := func(verb string, do func(c *fakeContainer)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			c := f.find(r.PathValue("id"))
			if c == nil {
				w.WriteHeader(404)
				return
			}
			f.calls = append(f.calls, verb+" "+c.service)
			do(c)
			w.WriteHeader(204)
		}
	}
	mux.HandleFunc("POST /v1.41/containers/{id}/start", act("start", func(c *fakeContainer) {
		if c.crashOnStart {
			c.status, c.exitCode, c.restarts = container.StateRestarting, 1, c.restarts+1
			return
		}
		c.status, c.exitCode = container.StateRunning, 0
	}))
	stop := act("stop", func(c *fakeContainer) {
		c.status, c.exitCode = container.StateExited, 0
	})
	mux.HandleFunc("POST /v1.41/containers/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.stopWaits = append(f.stopWaits, r.URL.Query().Get("t"))
		f.mu.Unlock()
		stop(w, r)
	})
	mux.HandleFunc("GET /v1.41/containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		c := f.find(r.PathValue("id"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
		if c == nil {
			return
		}
		// One stderr frame: stream 2, three zero bytes, big-endian length.
		hdr := make([]byte, 8)
		hdr[0] = 2
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(c.logs)))
		w.Write(append(hdr, c.logs...))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.badPaths = append(f.badPaths, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		w.WriteHeader(404)
		json.NewEncoder(w).Encode(map[string]string{"message": "page not found"})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.badPaths) > 0 {
			t.Errorf("requests outside API 1.41: %v", f.badPaths)
		}
	})
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	t.Setenv("DOCKER_API_VERSION", "")
	return sock
}

func (f *fakeEngine) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// stack adds a running hbbs and hbbr of project, as rdctl installs them.
func (f *fakeEngine) stack(project, dataDir string) (hbbs, hbbr *fakeContainer) {
	m := []container.MountPoint{{Type: mount.TypeBind, Source: dataDir, Destination: "/root", RW: true}}
	hbbr = f.add(&fakeContainer{project: project, service: "hbbr", image: DefaultImage, cmd: []string{"hbbr", "-k", "_"},
		workdir: "/root", network: "host", mounts: m})
	hbbs = f.add(&fakeContainer{project: project, service: "hbbs", image: DefaultImage, cmd: []string{"hbbs", "-r", "rd.example.com:21117", "-k", "_"},
		workdir: "/root", network: "host", mounts: m})
	return hbbs, hbbr
}

// The client starts at its newest API version and negotiates down to the
// engine's 1.41; every request after the ping goes to /v1.41/ (the fake
// answers nothing else, and the cleanup fails the test otherwise).
func TestConnectNegotiatesAPI141(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	e, err := Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.APIVersion() != "1.41" {
		t.Errorf("negotiated API %s, want 1.41", e.APIVersion())
	}
	if client.MaxAPIVersion == "1.41" {
		t.Error("the client's own version is 1.41: the test would not show a negotiation")
	}
	if v, err := e.ServerVersion(context.Background()); err != nil || v != "20.10.24+dfsg1" {
		t.Errorf("server version %q, %v", v, err)
	}
	if _, err := e.Inspect(context.Background(), "nothing"); err != nil {
		t.Error(err)
	}
}

func TestConnectFails(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	_, err := Connect(context.Background())
	if !errors.Is(err, ErrNoEngine) {
		t.Fatalf("err %v, want ErrNoEngine", err)
	}
}

// Stop goes hbbr then hbbs, Start hbbs then hbbr (hbbs, which clients reach
// first, is down for the shortest time) and waits for Ready; only
// the project's own containers are touched (not another project's hbbs,
// not a one-off `compose run` container).
func TestRuntimeStopStart(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	f.stack("rdstack", "/srv/rdstack/data")
	other, _ := f.stack("other", "/srv/other/data")
	oneoff := f.add(&fakeContainer{project: "rdstack", service: "hbbs", oneoff: true, image: DefaultImage, cmd: []string{"hbbs"}, workdir: "/root"})

	readyCalls := 0
	rt := &Runtime{Project: "rdstack", Timeout: 5 * time.Second, Ready: func(ctx context.Context) error {
		readyCalls++
		for _, c := range f.snapshot() {
			if c.project == "rdstack" && !c.oneoff && c.status != container.StateRunning {
				t.Errorf("Ready called while %s is %s", c.service, c.status)
			}
		}
		if readyCalls < 3 {
			return errors.New("not yet")
		}
		return nil
	}}
	ctx := context.Background()
	if ok, err := rt.Running(ctx); !ok || err != nil {
		t.Fatalf("running %v %v", ok, err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, []string{"stop hbbr", "stop hbbs"}) {
		t.Errorf("stop order %v", got)
	}
	// 2 s from SIGTERM to SIGKILL (DefaultStopGrace), not Docker's 10 s.
	if !reflect.DeepEqual(f.stopWaits, []string{"2", "2"}) {
		t.Errorf("stop timeouts %v, want 2 s each", f.stopWaits)
	}
	if ok, err := rt.Running(ctx); ok || err != nil {
		t.Errorf("running after stop: %v %v", ok, err)
	}
	if err := rt.Stop(ctx); err != nil || len(f.takeCalls()) != 0 {
		t.Errorf("a second stop: %v", err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, []string{"start hbbs", "start hbbr"}) {
		t.Errorf("start order %v", got)
	}
	if readyCalls != 3 {
		t.Errorf("Ready called %d times, want 3 (retried until it passed)", readyCalls)
	}
	if other.status != container.StateRunning || oneoff.status != container.StateRunning {
		t.Error("another project's container or a one-off container was touched")
	}

	// Prepared, as a rotation does: the same stops and starts over the
	// connection and the containers Prepare found, though the containers
	// it listed were running then; a second Start after that lists again.
	release, err := rt.Prepare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); !reflect.DeepEqual(got, []string{"stop hbbr", "stop hbbs", "start hbbs", "start hbbr"}) {
		t.Errorf("prepared stop and start %v", got)
	}
	if err := rt.Start(ctx); err != nil || len(f.takeCalls()) != 0 {
		t.Errorf("a second start after Prepare started a running container: %v", err)
	}
	release()
	if ok, err := rt.Running(ctx); !ok || err != nil {
		t.Errorf("running after release: %v %v", ok, err)
	}
	if other.status != container.StateRunning || oneoff.status != container.StateRunning {
		t.Error("another project's container or a one-off container was touched")
	}
}

func (f *fakeEngine) snapshot() []fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeContainer
	for _, c := range f.containers {
		out = append(out, *c)
	}
	return out
}

// A container that crash-loops after Start fails the Start at once, with
// its last log lines, instead of waiting out the timeout.
func TestRuntimeStartCrashLoop(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	hbbs, _ := f.stack("rdstack", "/srv/rdstack/data")
	hbbs.status = container.StateExited
	hbbs.crashOnStart = true
	hbbs.logs = "ERROR refusing to start: key is refused\n"
	rt := &Runtime{Project: "rdstack", Timeout: 20 * time.Second, Ready: func(context.Context) error { return nil }}
	start := time.Now()
	err := rt.Start(context.Background())
	var se *ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("err %v, want a ServiceError", err)
	}
	if se.Service != "hbbs" || se.State != "restarting" || se.Restarts != 1 || !strings.Contains(se.Logs, "refusing to start") {
		t.Errorf("service error %+v", se)
	}
	if !strings.Contains(err.Error(), "last log lines of rdstack-hbbs-1") {
		t.Errorf("message %q", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to notice the crash loop", d)
	}
}

func TestRuntimeNoContainers(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	rt := &Runtime{Project: "empty", Timeout: 2 * time.Second}
	var nc *NoContainerError
	if err := rt.Start(context.Background()); !errors.As(err, &nc) || nc.Service != "hbbs" {
		t.Errorf("start without containers: %v", err)
	}
	if ok, err := rt.Running(context.Background()); ok || err != nil {
		t.Errorf("running: %v %v", ok, err)
	}
	if err := rt.Stop(context.Background()); err != nil {
		t.Errorf("stop without containers: %v", err)
	}
}

// A Ready that never passes ends in a timeout error that says hbbs does not
// answer.
func TestRuntimeReadyTimeout(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	f.stack("rdstack", "/srv/rdstack/data")
	refused := errors.New("connection refused")
	rt := &Runtime{Project: "rdstack", Timeout: 2 * time.Second, Ready: func(context.Context) error { return refused }}
	err := rt.WaitServing(context.Background())
	var ns *NotServingError
	var na *NoAnswerError
	if !errors.As(err, &ns) || !errors.As(err, &na) || !errors.Is(err, refused) {
		t.Errorf("err %v", err)
	}
	if err != nil && (!strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "connection refused")) {
		t.Errorf("message %q", err)
	}
}

// The wait running out while an inspect is in flight still reports why
// the stack was not serving (the last answer), not the cut-off inspect
// (CI saw "inspecting hbbr ...: context deadline exceeded" once).
func TestRuntimeReadyTimeoutDuringInspect(t *testing.T) {
	f := &fakeEngine{hangInspectAfter: 2} // the first look (hbbs, hbbr) answers
	f.serve(t)
	f.stack("rdstack", "/srv/rdstack/data")
	refused := errors.New("connection refused")
	rt := &Runtime{Project: "rdstack", Timeout: time.Second, Ready: func(context.Context) error { return refused }}
	err := rt.WaitServing(context.Background())
	var ns *NotServingError
	var na *NoAnswerError
	if !errors.As(err, &ns) || !errors.As(err, &na) || !errors.Is(err, refused) {
		t.Errorf("err %v", err)
	}
}

func TestInspect(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	f.stack("rdstack", "/srv/rdstack/data")
	st, err := Inspect(context.Background(), "rdstack")
	if err != nil {
		t.Fatal(err)
	}
	if st.APIVersion != "1.41" || st.EngineVersion != "20.10.24+dfsg1" || !st.Running() || len(st.Services) != 2 {
		t.Fatalf("%+v", st)
	}
	hbbs, _ := st.Service("hbbs")
	if hbbs.KeyDir != "/srv/rdstack/data" || hbbs.WorkingDir != "/root" || hbbs.Image != DefaultImage || hbbs.Container != "rdstack-hbbs-1" ||
		!reflect.DeepEqual(hbbs.Command, []string{"hbbs", "-r", "rd.example.com:21117", "-k", "_"}) {
		t.Errorf("hbbs %+v", hbbs)
	}
	st, _ = Inspect(context.Background(), "absent")
	if st.Running() || len(st.Services) != 2 || st.Services[0].State != "missing" {
		t.Errorf("absent project %+v", st)
	}
}

func TestMountCovering(t *testing.T) {
	ms := []Mount{{Source: "/a", Destination: "/"}, {Source: "/b", Destination: "/root"}, {Source: "/c", Destination: "/root/sub"}, {Source: "/d", Destination: "/rootx"}}
	for dir, want := range map[string]string{"/root": "/b", "/root/sub/x": "/c", "/rootx": "/d", "/data": "/a"} {
		if m := mountCovering(ms, dir); m == nil || m.Source != want {
			t.Errorf("%s: %+v, want source %s", dir, m, want)
		}
	}
	if m := mountCovering(ms[1:], "/data"); m != nil {
		t.Errorf("/data covered by %+v", m)
	}
}

// Detect finds compose projects running RustDesk and says where their keys
// are, warning about the guide's ./data:/data on the classic image.
func TestDetect(t *testing.T) {
	f := &fakeEngine{}
	f.serve(t)
	good := t.TempDir()
	if err := os.WriteFile(filepath.Join(good, keys.SecretFile), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.stack("guide", good)
	bad := []container.MountPoint{{Type: mount.TypeBind, Source: "/srv/bad/data", Destination: "/data", RW: true}}
	f.add(&fakeContainer{project: "bad", service: "hbbs", image: "rustdesk/rustdesk-server:latest", cmd: []string{"hbbs"}, workdir: "/root", network: "bad_default", mounts: bad})
	f.add(&fakeContainer{project: "bad", service: "hbbr", image: "rustdesk/rustdesk-server:latest", cmd: []string{"hbbr"}, workdir: "/root", network: "bad_default", mounts: bad})
	f.add(&fakeContainer{project: "s6", service: "rustdesk", image: "rustdesk/rustdesk-server-s6:1.1.16", cmd: []string{"/init"}, workdir: "/data",
		env: []string{"RELAY=relay.example.net:21117", "ENCRYPTED_ONLY=1"}, network: "host",
		mounts: []container.MountPoint{{Type: mount.TypeVolume, Name: "s6_data", Source: "/var/lib/docker/volumes/s6_data/_data", Destination: "/data"}}})
	f.add(&fakeContainer{project: "web", service: "nginx", image: "nginx:1", cmd: []string{"nginx"}, workdir: "/"})
	f.add(&fakeContainer{project: "stopped", service: "hbbs", image: DefaultImage, cmd: []string{"hbbs"}, workdir: "/root", status: container.StateExited})
	f.add(&fakeContainer{name: "loose", image: DefaultImage, cmd: []string{"hbbs"}, workdir: "/root"})

	got, err := Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Project)
	}
	if !reflect.DeepEqual(names, []string{"bad", "guide", "s6"}) {
		t.Fatalf("detected %v, want [bad guide s6]", names)
	}
	bd, gd, sd := got[0], got[1], got[2]
	if gd.DataDir != good || gd.MountTarget != "/root" || !gd.KeysPresent || len(gd.Warnings) != 0 || gd.Relay != "rd.example.com:21117" ||
		gd.HBBSKey != "_" || gd.HBBRKey != "_" || gd.Network != "host" || gd.ProjectDir != "/srv/guide" || len(gd.Services) != 2 {
		t.Errorf("guide stack %+v", gd)
	}
	if bd.DataDir != "" || len(bd.Warnings) != 1 || !strings.Contains(bd.Warnings[0].Message, "container layer") || !strings.Contains(bd.Warnings[0].Message, "/srv/bad/data:/data") ||
		bd.Warnings[0].ID != adopt.FindingKeysInContainerLayer || bd.Warnings[0].Severity != adopt.SeverityError {
		t.Errorf("./data:/data on the classic image: %+v", bd)
	}
	if sd.DataDir != "/var/lib/docker/volumes/s6_data/_data" || sd.MountTarget != "/data" || sd.Relay != "relay.example.net:21117" || sd.HBBSKey != "_" ||
		sd.WorkingDir != "/data" || len(sd.Warnings) != 1 || !strings.Contains(sd.Warnings[0].Message, "no id_ed25519") ||
		sd.Warnings[0].ID != adopt.FindingNoSecretKey || sd.Warnings[0].Severity != adopt.SeverityWarning {
		t.Errorf("s6 stack %+v", sd)
	}
}
