//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/rotate"
)

// The compose tests run rdctl on this host against the real Docker engine
// and Compose v2 plugin that scripts/setup-integration installs. The stack
// uses host networking, as RustDesk's docs do, so its ports are the host's:
// the tests run one stack at a time, and first wait until nothing on the
// host listens on 21115-21119.

const (
	image116    = "rustdesk/rustdesk-server:1.1.16"
	image117    = "rustdesk/rustdesk-server:1.1.17"
	imageBroken = "rustdesk/rustdesk-server:1.1.18"
	imageS6     = "rustdesk/rustdesk-server-s6:1.1.16"
	wrongKey    = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)

// serverPorts are the ports a host-networked stack binds.
var serverPorts = []struct {
	proto string
	port  int
}{{"tcp", 21115}, {"tcp", 21116}, {"udp", 21116}, {"tcp", 21117}, {"tcp", 21118}, {"tcp", 21119}}

// waitPortsFree waits (up to 10 minutes: other tests' servers come and go)
// until every server port can be bound on all addresses, which is what
// hbbs and hbbr do with host networking.
func waitPortsFree(t testing.TB) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(10 * time.Minute)
	for {
		busy := portsInUse()
		if len(busy) == 0 {
			if d := time.Since(start); d > time.Second {
				t.Logf("waited %v for ports 21115-21119 to be free", d.Round(time.Second))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("something on this host still listens on %v: the compose stack uses host networking and needs them free", busy)
		}
		time.Sleep(time.Second)
	}
}

func portsInUse() []string {
	var busy []string
	for _, p := range serverPorts {
		addr := fmt.Sprintf(":%d", p.port)
		var err error
		if p.proto == "tcp" {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err == nil {
				ln.Close()
			}
		} else {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				pc.Close()
			}
		}
		if err != nil {
			busy = append(busy, fmt.Sprintf("%d/%s", p.port, p.proto))
		}
	}
	return busy
}

// composeEnv is the engine, the binaries and the images the tests share.
type composeEnv struct {
	d              *harness.DockerEnv
	rdctl, standin string
	imageIDs       map[string]string
}

func newComposeEnv(t *testing.T) *composeEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the compose tests need root (run scripts/setup-integration, then the tests as root)")
	}
	d := harness.Docker(t)
	rdctl, standin := binaries(t)
	waitPortsFree(t)
	return &composeEnv{d: d, rdctl: rdctl, standin: standin, imageIDs: map[string]string{}}
}

// buildServerImage builds a classic-layout image (FROM scratch, the stand-in
// as /usr/bin/hbbs and /usr/bin/hbbr, WORKDIR /root, no entrypoint, no
// command) tagged tag, whose servers report version.
func (c *composeEnv) buildServerImage(t *testing.T, tag, version string, env ...string) string {
	img := harness.ScratchImage{
		Tag: tag,
		Files: []harness.ImageFile{
			{Host: c.standin, Image: "/usr/bin/hbbs"},
			{Host: c.standin, Image: "/usr/bin/hbbr"},
		},
		Workdir: "/root",
		Env:     append([]string{"HOME=/root", "STANDIN_VERSION=" + version}, env...),
	}
	if compose.IsS6Image(tag) {
		// The s6 layout: WORKDIR /data and an /init entrypoint, which this
		// image does not have: the stack must bypass it, as rdctl's does.
		img.Workdir = "/data"
		img.Entrypoint = []string{"/init"}
		img.Volumes = []string{"/data"}
	}
	id := c.d.BuildScratchImage(t, img)
	c.imageIDs[tag] = id
	return id
}

// stack is one rdctl-managed compose stack in a temp dir, with its own
// deployment record (--config), so the host's /etc/rdctl is never touched.
type stack struct {
	env     *composeEnv
	dir     string
	config  string
	project string
}

func (c *composeEnv) newStack(t *testing.T) *stack {
	base := t.TempDir()
	var rnd [4]byte
	rand.Read(rnd[:])
	s := &stack{env: c, dir: filepath.Join(base, fmt.Sprintf("rdit-%x", rnd)), config: filepath.Join(base, "rdctl.toml")}
	s.project = compose.ProjectName(s.dir)
	c.d.TrackProject(t, s.project)
	// rdctl keeps the stack's backups and journal in the host's state
	// directory, keyed by the data directory: remove this stack's.
	t.Cleanup(func() { os.RemoveAll(s.stateDir()) })
	return s
}

// stateDir is rdctl's state directory for the stack (backups, journal).
func (s *stack) stateDir() string { return deploy.StateDirFor(filepath.Join(s.dir, "data")) }

func (s *stack) run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append([]string{"--config", s.config, "--lock-wait", "60s"}, args...)
	cmd := exec.CommandContext(ctx, s.env.rdctl, full...)
	cmd.Env = append(os.Environ(), env...)
	stdout, stderr, code, err := harness.Run(cmd)
	if err != nil && code != -1 {
		t.Fatalf("rdctl %v: %v", args, err)
	}
	return stdout, stderr, code
}

func (s *stack) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.run(t, nil, args...)
	if code != 0 {
		t.Fatalf("rdctl %v: exit %d\nstdout: %s\nstderr: %s\nlogs:\n%s", args, code, out, errOut, s.logs(t))
	}
	return out
}

func (s *stack) logs(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, _, _ := s.env.d.Exec(ctx, "compose", "-f", filepath.Join(s.dir, "compose.yaml"), "-p", s.project, "logs", "--tail", "20")
	return out + errOut
}

func (s *stack) down(t *testing.T) {
	t.Helper()
	s.env.d.MustExec(t, "compose", "-f", filepath.Join(s.dir, "compose.yaml"), "-p", s.project, "down")
}

func (s *stack) livePub(t *testing.T) string {
	t.Helper()
	var k struct {
		PublicKey  string `json:"public_key"`
		Valid      bool   `json:"valid"`
		PubMatches bool   `json:"pub_file_matches"`
	}
	if err := json.Unmarshal([]byte(s.must(t, "--json", "key", "show")), &k); err != nil {
		t.Fatal(err)
	}
	if !k.Valid || !k.PubMatches {
		t.Fatalf("key not valid/consistent: %+v", k)
	}
	return k.PublicKey
}

// hostKeyStatus probes hbbs on this host's loopback.
func hostKeyStatus(t *testing.T, key string) probe.KeyStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := probe.Key(ctx, probe.DirectDial, "127.0.0.1:21116", key, false)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return st
}

// containerState is what `docker inspect` says of the stack's containers.
type containerState struct {
	Name  string
	Image string // the image ID
	State struct {
		Status       string
		Running      bool
		RestartCount int
	}
	RestartCount int
	Config       struct {
		Image      string
		WorkingDir string
		Cmd        []string
		Entrypoint []string
	}
	HostConfig struct {
		NetworkMode  string
		PortBindings map[string][]struct{ HostIP, HostPort string }
	}
	Mounts []struct {
		Type, Source, Destination string
		RW                        bool
	}
}

func (s *stack) containers(t *testing.T) map[string]containerState {
	t.Helper()
	ids := strings.Fields(s.env.d.MustExec(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+s.project))
	if len(ids) == 0 {
		return nil
	}
	var all []containerState
	if err := json.Unmarshal([]byte(s.env.d.MustExec(t, append([]string{"inspect"}, ids...)...)), &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]containerState{}
	for _, c := range all {
		svc := strings.TrimPrefix(c.Name, "/"+s.project+"-")
		svc = strings.TrimSuffix(svc, "-1")
		out[svc] = c
	}
	return out
}

func (s *stack) checkRunning(t *testing.T, image string) map[string]containerState {
	t.Helper()
	cs := s.containers(t)
	for _, svc := range []string{"hbbs", "hbbr"} {
		c, ok := cs[svc]
		if !ok {
			t.Fatalf("no %s container in project %s (have %v)", svc, s.project, cs)
		}
		if !c.State.Running || c.State.Status != "running" {
			t.Errorf("%s is %s\n%s", svc, c.State.Status, s.logs(t))
		}
		if image != "" && c.Image != s.env.imageIDs[image] {
			t.Errorf("%s runs image %s, want %s (%s)", svc, c.Image, image, s.env.imageIDs[image])
		}
	}
	return cs
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// TestComposeEngineAPI141 shows the Engine client negotiating down from
// its own API version to the Debian engine's.
func TestComposeEngineAPI141(t *testing.T) {
	d := harness.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := compose.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Logf("engine %s (API %s), client max API %s, negotiated %s, compose %s", d.ServerVersion, d.APIVersion, client.MaxAPIVersion, e.APIVersion(), d.ComposeVersion)
	if e.APIVersion() != d.APIVersion {
		t.Errorf("negotiated API %s, the engine speaks %s", e.APIVersion(), d.APIVersion)
	}
	if e.APIVersion() == client.MaxAPIVersion {
		t.Logf("note: the engine speaks the client's newest API; nothing was negotiated down")
	}
	if v, err := e.ServerVersion(ctx); err != nil || v != d.ServerVersion {
		t.Errorf("server version %q (%v), docker says %q", v, err, d.ServerVersion)
	}
	// Calls that use API-versioned paths work at the negotiated version.
	if _, err := e.Inspect(ctx, "rdit-nonexistent"); err != nil {
		t.Error(err)
	}
	if _, err := e.Detect(ctx); err != nil {
		t.Error(err)
	}
}

// TestCompose installs a stack with rdctl, rotates its key (also through
// crashes), upgrades its image (and rolls back a broken one), and detects
// it and hand-written stacks, on the real engine.
func TestCompose(t *testing.T) {
	c := newComposeEnv(t)
	c.buildServerImage(t, image116, "1.1.16")
	c.buildServerImage(t, image117, "1.1.17")
	s := c.newStack(t)

	var pub string
	ok := t.Run("install", func(t *testing.T) {
		var out string
		wall := timed(func() {
			out = s.must(t, "--json", "install", "compose", "--dir", s.dir, "--relay", "rd.example.com", "--image", image116)
		})
		var res struct {
			Changed     bool   `json:"changed"`
			Started     bool   `json:"started"`
			ServingMS   int64  `json:"serving_ms"`
			PublicKey   string `json:"public_key"`
			Project     string `json:"project"`
			MountTarget string `json:"mount_target"`
			APIVersion  string `json:"api_version"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err, out)
		}
		t.Logf("FIGURE compose install-to-serving: %d ms by rdctl (wall %v incl. process start), API %s", res.ServingMS, wall.Round(time.Millisecond), res.APIVersion)
		if !res.Changed || !res.Started || res.Project != s.project || res.MountTarget != "/root" || res.APIVersion != c.d.APIVersion {
			t.Errorf("install: %s", out)
		}
		cs := s.checkRunning(t, image116)
		for svc, c := range cs {
			if len(c.Mounts) != 1 || c.Mounts[0].Source != filepath.Join(s.dir, "data") || c.Mounts[0].Destination != "/root" || !c.Mounts[0].RW {
				t.Errorf("%s mounts %+v", svc, c.Mounts)
			}
			if c.HostConfig.NetworkMode != "host" || c.Config.WorkingDir != "/root" {
				t.Errorf("%s: network %s workdir %s", svc, c.HostConfig.NetworkMode, c.Config.WorkingDir)
			}
		}
		if got := strings.Join(cs["hbbs"].Config.Cmd, " "); got != "hbbs -r rd.example.com:21117 -k _" {
			t.Errorf("hbbs command %q", got)
		}
		pub = s.livePub(t)
		if pub != res.PublicKey {
			t.Errorf("install printed %s, the key file holds %s", res.PublicKey, pub)
		}
		if st := hostKeyStatus(t, pub); st != probe.KeyMatch {
			t.Fatalf("hbbs does not serve rdctl's key from the mounted dir: %s", st)
		}
		if st := hostKeyStatus(t, wrongKey); st != probe.KeyMismatch {
			t.Errorf("hbbs does not enforce its key: %s", st)
		}
		fi, err := os.Stat(filepath.Join(s.dir, "data", "id_ed25519"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("secret: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(filepath.Join(s.dir, "data")); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir: %v %v", fi.Mode(), err)
		}
		// re-run: unchanged, nothing recreated
		before := cs["hbbs"].State
		out = s.must(t, "install", "compose", "--dir", s.dir, "--relay", "rd.example.com", "--image", image116)
		if !strings.Contains(out, "unchanged") {
			t.Errorf("re-install not unchanged:\n%s", out)
		}
		if after := s.containers(t)["hbbs"]; after.Name != cs["hbbs"].Name || after.State != before {
			t.Errorf("re-install touched hbbs: %+v -> %+v", before, after.State)
		}
	})
	if !ok {
		t.FailNow()
	}

	t.Run("rotate", func(t *testing.T) {
		var raw string
		wall := timed(func() { raw = s.must(t, "--json", "rotate") })
		var res struct {
			Old      string  `json:"old_public_key"`
			New      string  `json:"new_public_key"`
			Verified bool    `json:"verified"`
			Outage   float64 `json:"outage_ms"`
		}
		if err := json.Unmarshal([]byte(raw), &res); err != nil {
			t.Fatal(err, raw)
		}
		t.Logf("FIGURE compose rotation: wall %v (stop + renames + start + verify), renames+fsync %.3f ms", wall.Round(time.Millisecond), res.Outage)
		if !res.Verified || res.Old != pub || res.New == pub {
			t.Fatalf("rotate: %s", raw)
		}
		if st := hostKeyStatus(t, res.New); st != probe.KeyMatch {
			t.Errorf("new key: %s", st)
		}
		if st := hostKeyStatus(t, pub); st != probe.KeyMismatch {
			t.Errorf("old key after rotation: %s", st)
		}
		s.checkRunning(t, image116)
		pub = res.New
	})

	t.Run("crash", func(t *testing.T) {
		for _, point := range rotate.Points {
			t.Run(point, func(t *testing.T) {
				old := s.livePub(t)
				_, errOut, code := s.run(t, []string{"RDCTL_FAULT_KILL_AT=" + point}, "rotate")
				if code != -1 {
					t.Fatalf("rotate not killed at %s: exit %d %s", point, code, errOut)
				}
				if _, errOut, code = s.run(t, nil, "rotate", "--resume"); code != 0 {
					t.Fatalf("resume after %s: exit %d\n%s\n%s", point, code, errOut, s.logs(t))
				}
				live := s.livePub(t)
				s.checkRunning(t, image116)
				if st := hostKeyStatus(t, live); st != probe.KeyMatch {
					t.Errorf("after %s hbbs does not serve the live key: %s", point, st)
				}
				if live != old {
					if st := hostKeyStatus(t, old); st != probe.KeyMismatch {
						t.Errorf("after %s (finished) the old key is still accepted: %s", point, st)
					}
				}
				var left []string
				for _, dir := range []string{filepath.Join(s.dir, "data"), s.stateDir()} {
					filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
						if err == nil && (strings.Contains(p, "rdctl-tmp") || strings.HasSuffix(p, ".rdctl-new") ||
							strings.HasSuffix(p, "rotation-journal.json") || strings.HasSuffix(p, ".rdctl-rotation.json")) {
							left = append(left, p)
						}
						return nil
					})
				}
				if len(left) > 0 {
					t.Errorf("leftovers after %s: %v", point, left)
				}
				if list := s.must(t, "--json", "backups", "list"); !strings.Contains(list, old) {
					t.Errorf("no backup of the old key after %s", point)
				}
				t.Logf("%s: %s", point, map[bool]string{true: "rolled back (old key live)", false: "finished (new key live)"}[live == old])
			})
		}
		pub = s.livePub(t)
	})

	t.Run("upgrade", func(t *testing.T) {
		var raw string
		wall := timed(func() { raw = s.must(t, "--json", "upgrade", "--image", image117) })
		var res struct {
			Old, New   string
			NewID      string `json:"new_image_id"`
			Verified   bool   `json:"verified"`
			Unchanged  bool   `json:"unchanged"`
			Pulled     bool   `json:"pulled"`
			RolledBack bool   `json:"rolled_back"`
		}
		if err := json.Unmarshal([]byte(raw), &res); err != nil {
			t.Fatal(err, raw)
		}
		t.Logf("FIGURE compose upgrade 1.1.16 -> 1.1.17: wall %v", wall.Round(time.Millisecond))
		if !res.Verified || res.Unchanged || res.Pulled || res.RolledBack || res.NewID != c.imageIDs[image117] {
			t.Errorf("upgrade: %s", raw)
		}
		s.checkRunning(t, image117)
		if live := s.livePub(t); live != pub {
			t.Errorf("upgrade changed the key: %s -> %s", pub, live)
		}
		if st := hostKeyStatus(t, pub); st != probe.KeyMatch {
			t.Errorf("after upgrade: %s", st)
		}
		if data, _ := os.ReadFile(filepath.Join(s.dir, "compose.yaml")); strings.Count(string(data), "image: "+image117) != 2 {
			t.Errorf("compose.yaml does not name %s twice:\n%s", image117, data)
		}
		if rec, _ := os.ReadFile(s.config); !strings.Contains(string(rec), "image = '"+image117+"'") {
			t.Errorf("record:\n%s", rec)
		}
		out := s.must(t, "upgrade", "--image", image117)
		if !strings.Contains(out, "unchanged") {
			t.Errorf("second upgrade: %s", out)
		}
		// Re-running the install without --image keeps the upgraded image.
		out = s.must(t, "install", "compose", "--dir", s.dir, "--relay", "rd.example.com")
		if !strings.Contains(out, "unchanged") {
			t.Errorf("install after upgrade: %s", out)
		}
		s.checkRunning(t, image117)
	})

	t.Run("upgrade-rollback", func(t *testing.T) {
		// An image whose hbbs refuses the live key: the upgrade must fail
		// its verification and put 1.1.17 back.
		c.buildServerImage(t, imageBroken, "1.1.18", "STANDIN_REFUSE_KEY="+pub)
		out, errOut, code := s.run(t, nil, "upgrade", "--image", imageBroken)
		if code != 1 || !strings.Contains(errOut, "rolled back") {
			t.Fatalf("broken upgrade: exit %d\n%s\n%s", code, out, errOut)
		}
		t.Logf("rollback message:\n%s", errOut)
		s.checkRunning(t, image117)
		if st := hostKeyStatus(t, pub); st != probe.KeyMatch {
			t.Errorf("after rollback: %s", st)
		}
		if rec, _ := os.ReadFile(s.config); !strings.Contains(string(rec), "image = '"+image117+"'") {
			t.Errorf("record after rollback:\n%s", rec)
		}
		if data, _ := os.ReadFile(filepath.Join(s.dir, "compose.yaml")); strings.Contains(string(data), imageBroken) {
			t.Error("compose.yaml still names the broken image")
		}
	})

	t.Run("upgrade-crash", func(t *testing.T) {
		// Killed after the containers were recreated on 1.1.16 but before
		// the record was written: running the same upgrade again finds the
		// stack already on it, verifies the key and records it.
		_, errOut, code := s.run(t, []string{"RDCTL_FAULT_KILL_UPGRADE_AT=recreated"}, "upgrade", "--image", image116)
		if code != -1 {
			t.Fatalf("upgrade not killed: exit %d %s", code, errOut)
		}
		s.checkRunning(t, image116)
		if rec, _ := os.ReadFile(s.config); !strings.Contains(string(rec), "image = '"+image117+"'") {
			t.Errorf("the record changed before the upgrade finished:\n%s", rec)
		}
		out := s.must(t, "upgrade", "--image", image116)
		if !strings.Contains(out, "unchanged") || !strings.Contains(out, "verified") {
			t.Errorf("upgrade after the crash: %s", out)
		}
		if rec, _ := os.ReadFile(s.config); !strings.Contains(string(rec), "image = '"+image116+"'") {
			t.Errorf("record after the repeated upgrade:\n%s", rec)
		}
		s.must(t, "upgrade", "--image", image117)
		s.checkRunning(t, image117)
		if st := hostKeyStatus(t, pub); st != probe.KeyMatch {
			t.Errorf("after the upgrades: %s", st)
		}
	})

	t.Run("rotate-after-upgrade", func(t *testing.T) {
		var res struct {
			New      string `json:"new_public_key"`
			Verified bool   `json:"verified"`
		}
		json.Unmarshal([]byte(s.must(t, "--json", "rotate")), &res)
		if !res.Verified || hostKeyStatus(t, res.New) != probe.KeyMatch {
			t.Errorf("rotation on the upgraded stack: %+v", res)
		}
		pub = res.New
	})

	t.Run("status", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := compose.Inspect(ctx, s.project)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Running() || len(st.Services) != 2 || st.APIVersion != c.d.APIVersion {
			t.Fatalf("%+v", st)
		}
		for _, svc := range st.Services {
			if svc.KeyDir != filepath.Join(s.dir, "data") || svc.WorkingDir != "/root" || svc.Image != image117 || svc.Restarts != 0 {
				t.Errorf("%s: %+v", svc.Service, svc)
			}
		}
	})

	t.Run("detect-rdctl-stack", func(t *testing.T) {
		d := detect(t, s.project)
		if d == nil {
			t.Fatal("rdctl's own stack not detected")
		}
		if d.DataDir != filepath.Join(s.dir, "data") || d.MountTarget != "/root" || !d.KeysPresent || len(d.Warnings) != 0 ||
			d.Relay != "rd.example.com:21117" || d.Network != "host" || d.Image != image117 {
			t.Errorf("%+v", d)
		}
	})
	s.down(t)

	t.Run("detect-guide-stacks", func(t *testing.T) {
		waitPortsFree(t)
		// The official docs' stack, written by hand: host network,
		// ./data:/root shared by both, no -r; hbbs makes its own key.
		guide := c.d.NewProject(t, guideStack(image116, "hbbs"))
		guide.MustCompose(t, "up", "-d")
		// The guide's mistake: ./data:/data on the classic image, which
		// works in /root (bridge network, no ports published, so it does
		// not collide with the first).
		wrong := c.d.NewProject(t, wrongMountStack(image116))
		wrong.MustCompose(t, "up", "-d")
		waitAnswer(t, "127.0.0.1:21116")

		g := detect(t, guide.Name)
		if g == nil {
			t.Fatal("the guide's stack was not detected")
		}
		if g.DataDir != filepath.Join(guide.Dir, "data") || g.MountTarget != "/root" || g.WorkingDir != "/root" || !g.KeysPresent ||
			len(g.Warnings) != 0 || g.Network != "host" || len(g.Services) != 2 || g.Relay != "" {
			t.Errorf("guide stack: %+v", g)
		}
		w := detect(t, wrong.Name)
		if w == nil {
			t.Fatal("the ./data:/data stack was not detected")
		}
		if w.DataDir != "" || len(w.Warnings) != 1 || !strings.Contains(w.Warnings[0].Message, "container layer") || w.Warnings[0].ID != "keys-in-container-layer" || w.Relay != "rd.example.com:21117" {
			t.Errorf("./data:/data stack: %+v", w)
		}
		t.Logf("warning for ./data:/data: %s", w.Warnings)
		guide.MustCompose(t, "down")
		wrong.MustCompose(t, "down")
	})

	t.Run("adopt-relayless-rotate", func(t *testing.T) {
		// The docs' current stack runs plain `hbbs` (no -r): adopted, it has
		// no relay, and rotation must still stop and start it.
		waitPortsFree(t)
		guide := c.d.NewProject(t, guideStack(image116, "hbbs"))
		guide.MustCompose(t, "up", "-d")
		defer guide.MustCompose(t, "down")
		waitAnswer(t, "127.0.0.1:21116")
		a := &stack{env: c, dir: guide.Dir, project: guide.Name, config: filepath.Join(t.TempDir(), "rdctl.toml")}
		a.must(t, "adopt", "--backend", "compose", "--project", guide.Name, "--id-host", "127.0.0.1")
		out := a.must(t, "--json", "rotate")
		var r struct {
			New      string `json:"new_public_key"`
			Verified bool   `json:"verified"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Verified {
			t.Fatalf("rotate on an adopted relay-less stack: %v\n%s", err, out)
		}
	})

	t.Run("adopt-guide-stacks", func(t *testing.T) {
		waitPortsFree(t)
		// With -r (adopt-relayless-rotate covers plain hbbs). The relay is an
		// IP address, so doctor's relay-resolves check sends no DNS query
		// off the host.
		guide := c.d.NewProject(t, guideStack(image116, "hbbs -r 127.0.0.1:21117"))
		guide.MustCompose(t, "up", "-d")
		wrong := c.d.NewProject(t, wrongMountStack(image116))
		wrong.MustCompose(t, "up", "-d")
		waitAnswer(t, "127.0.0.1:21116")
		// Its own record; logs on failure come from the guide's project.
		a := &stack{env: c, dir: guide.Dir, project: guide.Name, config: filepath.Join(t.TempDir(), "rdctl.toml")}
		data := filepath.Join(guide.Dir, "data")

		// Two stacks run: adopt asks which (a usage error, exit 2).
		out, errOut, code := a.run(t, nil, "adopt", "--id-host", "rd.example.com")
		if code != 2 || !strings.Contains(errOut, guide.Name) || !strings.Contains(errOut, wrong.Name) || !strings.Contains(errOut, "rdctl adopt --project ") {
			t.Errorf("two stacks: exit %d\n%s\n%s", code, out, errOut)
		}

		// ./data:/data on the classic image: reported as an error and not
		// recorded without --force.
		out, errOut, code = a.run(t, nil, "--json", "adopt", "--project", wrong.Name, "--id-host", "rd.example.com")
		var refused struct {
			Written bool `json:"written"`
			Compose struct {
				Refused  bool `json:"refused"`
				Findings []struct{ ID, Severity, Message string }
			} `json:"compose"`
		}
		if err := json.Unmarshal([]byte(out), &refused); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		f := refused.Compose.Findings
		if code != 1 || refused.Written || !refused.Compose.Refused || len(f) == 0 || f[0].ID != "keys-in-container-layer" ||
			f[0].Severity != "error" || !strings.Contains(f[0].Message, "container layer") || !strings.Contains(errOut, "rdctl adopt --force") {
			t.Errorf("./data:/data stack: exit %d\n%s\n%s", code, out, errOut)
		}
		if _, err := os.Stat(a.config); !os.IsNotExist(err) {
			t.Errorf("a record was written for the ./data:/data stack (%v)", err)
		}
		out, _, _ = a.run(t, nil, "adopt", "--project", wrong.Name, "--id-host", "rd.example.com")
		if !strings.Contains(out, "UNSAFE: the data is mounted at /data") {
			t.Errorf("human output lacks the warning:\n%s", out)
		}
		t.Logf("adopt on ./data:/data:\n%s", out)

		// The docs' stack is recorded.
		var res struct {
			Written      bool   `json:"written"`
			IDHostSource string `json:"id_host_source"`
			Recorded     struct {
				Backend, Origin, Relay string
				IDHost                 string `json:"id_host"`
				WorkingDir             string `json:"working_dir"`
				Compose                struct {
					Dir, Image, Network, Project string
					MountTarget                  string `json:"mount_target"`
				}
			} `json:"recorded"`
		}
		// The ID server comes from hbbs's -r.
		out = a.must(t, "--json", "adopt", "--backend", "compose", "--project", guide.Name)
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err, out)
		}
		r := res.Recorded
		if !res.Written || r.Backend != "compose" || r.Origin != "compose" || r.WorkingDir != data || r.Compose.Dir != guide.Dir ||
			r.Compose.Project != guide.Name || r.Compose.MountTarget != "/root" || r.Compose.Network != "host" || r.Compose.Image != image116 ||
			r.Relay != "127.0.0.1:21117" || r.IDHost != "127.0.0.1" || res.IDHostSource != "relay" {
			t.Errorf("adopt of the guide's stack: %s", out)
		}
		if rec, _ := os.ReadFile(a.config); !strings.Contains(string(rec), "backend = 'compose'") || !strings.Contains(string(rec), "working_dir = '"+data+"'") {
			t.Errorf("record:\n%s", rec)
		}

		var st struct {
			Containers []struct {
				Service, State, Image string
				Running               bool
				Restarts              int
				Mounts                []struct{ Source, Destination string }
			} `json:"containers"`
			Key struct{ Present, Valid bool }
		}
		out = a.must(t, "--json", "status")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err, out)
		}
		if len(st.Containers) != 2 || !st.Key.Present || !st.Key.Valid {
			t.Fatalf("status: %s", out)
		}
		for i, svc := range []string{"hbbs", "hbbr"} {
			c := st.Containers[i]
			if c.Service != svc || !c.Running || c.State != "running" || c.Restarts != 0 || c.Image != image116 ||
				len(c.Mounts) != 1 || c.Mounts[0].Source != data || c.Mounts[0].Destination != "/root" {
				t.Errorf("status of %s: %+v", svc, c)
			}
		}
		if out := a.must(t, "status"); !strings.Contains(out, "containers:") {
			t.Errorf("status:\n%s", out)
		}

		// doctor: hbbs made its key with its own mode, which doctor --fix
		// repairs; after that nothing is wrong.
		type check struct {
			OK                bool
			Severity, Message string
		}
		doctor := func() (int, map[string]check, string) {
			out, _, code := a.run(t, nil, "--json", "doctor")
			var d struct {
				Checks []struct {
					ID, Severity, Message string
					OK                    bool
				}
			}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err, out)
			}
			m := map[string]check{}
			var bad []string
			for _, c := range d.Checks {
				m[c.ID] = check{c.OK, c.Severity, c.Message}
				// The stand-in stack advertises its relay on loopback
				// (hbbs -r 127.0.0.1:21117, host network), which doctor
				// rightly warns about and --fix cannot change: it must be
				// reported, and is not counted against the stack.
				if c.ID == "setting-relay-address" {
					if c.OK {
						t.Errorf("setting-relay-address passed for -r 127.0.0.1:21117: %s", c.Message)
					}
					continue
				}
				if !c.OK && c.Severity != "info" {
					bad = append(bad, c.ID+": "+c.Message)
				}
			}
			if code == 1 && len(bad) == 0 {
				code = 0 // only the loopback relay warning above
			}
			return code, m, strings.Join(bad, "\n")
		}
		code, checks, bad := doctor()
		if code != 0 {
			// hbbs writes id_ed25519 0644 (umask), which doctor reports
			// as secret-mode; nothing else may fail.
			t.Logf("doctor on the guide's stack as hbbs left it: exit %d\n%s", code, bad)
			if strings.Count(bad, "\n") != 0 || !strings.HasPrefix(bad, "secret-mode: ") {
				t.Errorf("doctor found more than the secret's mode:\n%s", bad)
			}
			// --fix repairs the mode; the loopback relay warning stays
			// (exit 1), as nothing may rewrite hbbs's -r on its own.
			if out, errOut, fcode := a.run(t, nil, "doctor", "--fix"); !strings.Contains(out, "fixed secret-mode") || (fcode != 0 && fcode != 1) {
				t.Fatalf("doctor --fix: exit %d\n%s%s", fcode, out, errOut)
			}
			code, checks, bad = doctor()
		}
		if code != 0 {
			t.Errorf("doctor after --fix: exit %d\n%s", code, bad)
		}
		for _, id := range []string{"containers-running", "containers-restarting", "data-mounted", "ports-listening"} {
			if !checks[id].OK {
				t.Errorf("%s: %+v", id, checks[id])
			}
		}

		// A stopped container is an error.
		guide.MustCompose(t, "stop", "hbbr")
		code, checks, _ = doctor()
		if c := checks["containers-running"]; code != 1 || c.OK || c.Severity != "error" || !strings.Contains(c.Message, "hbbr-1 is exited") {
			t.Errorf("doctor with hbbr stopped: exit %d %+v", code, c)
		}
		guide.MustCompose(t, "down")
		wrong.MustCompose(t, "down")
	})

	t.Run("bridge", func(t *testing.T) {
		waitPortsFree(t)
		b := c.newStack(t)
		b.must(t, "install", "compose", "--dir", b.dir, "--relay", "rd.example.com", "--image", image116, "--network", "bridge")
		cs := b.checkRunning(t, image116)
		want := map[string][]string{"hbbs": {"21115/tcp", "21116/tcp", "21116/udp", "21118/tcp"}, "hbbr": {"21117/tcp", "21119/tcp"}}
		for svc, ports := range want {
			got := cs[svc].HostConfig.PortBindings
			if len(got) != len(ports) {
				t.Errorf("%s publishes %v, want %v", svc, got, ports)
			}
			for _, p := range ports {
				if b := got[p]; len(b) != 1 || b[0].HostPort != strings.Split(p, "/")[0] {
					t.Errorf("%s: %s bound as %+v", svc, p, b)
				}
			}
			if cs[svc].HostConfig.NetworkMode == "host" {
				t.Errorf("%s uses host networking", svc)
			}
		}
		if st := hostKeyStatus(t, b.livePub(t)); st != probe.KeyMatch {
			t.Errorf("bridge stack: %s", st)
		}

		// Behind a proxy (the [proxy] table rdctl proxy --apply writes,
		// added here without a proxy on this host) an install again
		// publishes the WebSocket ports on 127.0.0.1 only, and keeps the table.
		f, err := os.OpenFile(b.config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, "\n[proxy]\nkind = 'caddy'\ndomain = 'rd.example.com'\ntls = 'automatic'\nconfig = '/etc/caddy/rdctl/rustdesk-rd.example.com.caddy'\n")
		f.Close()
		// doctor reads the engine's bindings: 21118 and 21119 on every address is an error
		wsPublished := func() (bool, string) {
			out, _, _ := b.run(t, nil, "--json", "doctor")
			var d struct {
				Checks []struct {
					ID, Message string
					OK          bool
				}
			}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err, out)
			}
			for _, c := range d.Checks {
				if c.ID == "proxy-ws-published" {
					return c.OK, c.Message
				}
			}
			t.Fatalf("doctor has no proxy-ws-published check:\n%s", out)
			return false, ""
		}
		if ok, msg := wsPublished(); ok || !strings.Contains(msg, "hbbs publishes 21118/tcp on every address") {
			t.Errorf("doctor before the install: ok %v: %s", ok, msg)
		}
		b.must(t, "install", "compose", "--dir", b.dir, "--relay", "rd.example.com", "--image", image116, "--network", "bridge")
		if ok, msg := wsPublished(); !ok {
			t.Errorf("doctor after the install: %s", msg)
		}
		cs = b.checkRunning(t, image116)
		for svc, ports := range map[string]map[string]string{
			"hbbs": {"21115/tcp": "", "21116/tcp": "", "21116/udp": "", "21118/tcp": "127.0.0.1"},
			"hbbr": {"21117/tcp": "", "21119/tcp": "127.0.0.1"},
		} {
			for p, ip := range ports {
				if got := cs[svc].HostConfig.PortBindings[p]; len(got) != 1 || got[0].HostIP != ip {
					t.Errorf("behind a proxy, %s: %s bound as %+v, want host IP %q", svc, p, got, ip)
				}
			}
		}
		if rec, err := os.ReadFile(b.config); err != nil || !strings.Contains(string(rec), "[proxy]") {
			t.Errorf("the install dropped the record's [proxy] table: %v\n%s", err, rec)
		}
		if st := hostKeyStatus(t, b.livePub(t)); st != probe.KeyMatch {
			t.Errorf("bridge stack behind a proxy: %s", st)
		}
		b.down(t)
	})

	t.Run("s6", func(t *testing.T) {
		waitPortsFree(t)
		c.buildServerImage(t, imageS6, "1.1.16")
		s6 := c.newStack(t)
		out := s6.must(t, "--json", "install", "compose", "--dir", s6.dir, "--relay", "rd.example.com", "--image", imageS6)
		if !strings.Contains(out, `"mount_target": "/data"`) {
			t.Errorf("s6 install: %s", out)
		}
		cs := s6.checkRunning(t, imageS6)
		if m := cs["hbbs"].Mounts; len(m) != 1 || m[0].Destination != "/data" || m[0].Source != filepath.Join(s6.dir, "data") {
			t.Errorf("s6 mounts %+v", m)
		}
		if st := hostKeyStatus(t, s6.livePub(t)); st != probe.KeyMatch {
			t.Errorf("s6 stack does not serve rdctl's key from /data: %s", st)
		}
		s6.down(t)
	})
}

// guideStack is the official docs' stack, written by hand: host network,
// ./data:/root shared by both, hbbs run as hbbsCommand (the docs' is
// "hbbs", older ones add -r), hbbr without -k; hbbs makes its own key.
func guideStack(image, hbbsCommand string) string {
	return `services:
  hbbs:
    image: ` + image + `
    command: ` + hbbsCommand + `
    volumes:
      - ./data:/root
    network_mode: host
    depends_on:
      - hbbr
    restart: unless-stopped
  hbbr:
    image: ` + image + `
    command: hbbr
    volumes:
      - ./data:/root
    network_mode: host
    restart: unless-stopped
`
}

// wrongMountStack is the guides' mistake: ./data:/data on the classic
// image, which works in /root (bridge network, no ports published, so it
// does not collide with a host-networked stack).
func wrongMountStack(image string) string {
	return `services:
  hbbs:
    image: ` + image + `
    command: hbbs -r rd.example.com:21117
    volumes:
      - ./data:/data
`
}

// detect runs compose.Detect and returns the entry for project.
func detect(t *testing.T, project string) *compose.Detected {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := compose.Detect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if all[i].Project == project {
			return &all[i]
		}
	}
	return nil
}

// waitAnswer waits until hbbs at addr answers a TestNatRequest.
func waitAnswer(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := probe.TestNat(ctx, probe.DirectDial, addr)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkRotateCompose rotates the key of an rdctl-installed compose
// stack b.N times through the rdctl binary and reports the wall time of a
// whole rotation (stop both containers, renames, start, wait for hbbs,
// verify the new key and the old key's rejection) and rdctl's outage
// window (renames and fsync only).
func BenchmarkRotateCompose(b *testing.B) {
	run := benchComposeStack(b)
	var outage float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var r struct {
			Outage   float64 `json:"outage_ms"`
			Verified bool    `json:"verified"`
		}
		json.Unmarshal([]byte(run("--json", "rotate")), &r)
		if !r.Verified {
			b.Fatal("not verified")
		}
		outage += r.Outage
	}
	b.ReportMetric(outage/float64(b.N), "outage-ms/op")
}

// benchComposeStack installs an rdctl compose stack of the stand-in image
// (host networking) on the real Docker engine for a benchmark and returns
// the function that runs the rdctl binary against its record (fatal on
// any failure); the project and rdctl's state dir go with the benchmark.
func benchComposeStack(b *testing.B) (run func(args ...string) string) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	d := harness.Docker(b)
	rdctl, standin := binaries(b)
	waitPortsFree(b)
	d.BuildScratchImage(b, harness.ScratchImage{Tag: image116, Workdir: "/root",
		Files: []harness.ImageFile{{Host: standin, Image: "/usr/bin/hbbs"}, {Host: standin, Image: "/usr/bin/hbbr"}}})
	base := b.TempDir()
	var rnd [4]byte
	rand.Read(rnd[:])
	dir := filepath.Join(base, fmt.Sprintf("rdit-%x", rnd))
	d.TrackProject(b, compose.ProjectName(dir))
	b.Cleanup(func() { os.RemoveAll(deploy.StateDirFor(filepath.Join(dir, "data"))) })
	run = func(args ...string) string {
		cmd := exec.Command(rdctl, append([]string{"--config", filepath.Join(base, "rdctl.toml")}, args...)...)
		out, errOut, code, err := harness.Run(cmd)
		if err != nil || code != 0 {
			b.Fatalf("rdctl %v: %d %v %s", args, code, err, errOut)
		}
		return out
	}
	run("install", "compose", "--dir", dir, "--relay", "rd.example.com", "--image", image116)
	return run
}
