package compose

import (
	"bytes"
	"context"
	"errors"
	"github.com/rdctl/rdctl/internal/golden"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/rdctl/rdctl/internal/deploy"
)

var update = golden.Update

func mustSpec(t testing.TB, dir, image, network, relay string) Spec {
	t.Helper()
	hp, err := deploy.ParseHostPort("--relay", relay)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSpec(dir, image, network, "", hp)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGolden renders the three layouts rdctl writes and compares them with
// testdata/*.yaml (go test -update rewrites them). Each golden file is also
// loaded with compose-go's loader, as Docker Compose would read it.
func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
	}{
		{"host", mustSpec(t, DefaultDir, DefaultImage, "", "rd.example.com")},
		{"bridge", mustSpec(t, "/srv/RustDesk_Server", "rustdesk/rustdesk-server:1.1.17", NetworkBridge, "[2001:db8::1]:443")},
		{"s6", mustSpec(t, DefaultDir, "ghcr.io/rustdesk/rustdesk-server-s6:1.1.16", NetworkHost, "203.0.113.7")},
		{"bridge-proxy", withWSLoopback(mustSpec(t, DefaultDir, DefaultImage, NetworkBridge, "rd.example.com"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered compose file differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			again, _ := Render(context.Background(), c.spec)
			if !bytes.Equal(again, got) {
				t.Error("rendering is not deterministic")
			}
			p, err := Load(context.Background(), c.spec.File(), want, c.spec.Project)
			if err != nil {
				t.Fatalf("the loader rejects %s: %v", golden, err)
			}
			for _, name := range []string{ServiceHBBS, ServiceHBBR} {
				svc := p.Services[name]
				if svc.Image != string(c.spec.Image) || svc.Restart != "unless-stopped" || svc.PullPolicy != "missing" {
					t.Errorf("%s: image %q restart %q pull_policy %q", name, svc.Image, svc.Restart, svc.PullPolicy)
				}
				if len(svc.Volumes) != 1 || svc.Volumes[0].Source != c.spec.DataDir() || svc.Volumes[0].Target != c.spec.MountTarget() {
					t.Errorf("%s: volumes %+v", name, svc.Volumes)
				}
			}
			if cmd := p.Services[ServiceHBBS].Command; !reflect.DeepEqual([]string(cmd), []string{"hbbs", "-r", c.spec.RelayArg(), "-k", "_"}) {
				t.Errorf("hbbs command %q", cmd)
			}
			if cmd := p.Services[ServiceHBBR].Command; !reflect.DeepEqual([]string(cmd), []string{"hbbr", "-k", "_"}) {
				t.Errorf("hbbr command %q", cmd)
			}
			if !strings.HasPrefix(string(got), "# RustDesk server") || !WrittenByRdctl(got) {
				t.Error("no rdctl header")
			}
		})
	}
}

// The relay gets port 21117 when it has none; an IPv6 relay keeps its
// brackets in the command line.
func TestRelayPort(t *testing.T) {
	if got := mustSpec(t, DefaultDir, DefaultImage, "", "rd.example.com").Commands()[ServiceHBBS][2]; got != "rd.example.com:21117" {
		t.Errorf("relay %q", got)
	}
	if got := mustSpec(t, DefaultDir, DefaultImage, "", "[2001:db8::1]:443").Commands()[ServiceHBBS][2]; got != "[2001:db8::1]:443" {
		t.Errorf("relay %q", got)
	}
}

func TestMountTargetRule(t *testing.T) {
	cases := map[string]string{
		"rustdesk/rustdesk-server":                         "/root",
		"rustdesk/rustdesk-server:1.1.16":                  "/root",
		"rustdesk/rustdesk-server:latest@sha256:" + hex64:  "/root",
		"docker.io/rustdesk/rustdesk-server:1":             "/root",
		"ghcr.io/rustdesk/rustdesk-server:1.1.16":          "/root",
		"rustdesk/rustdesk-server-s6":                      "/data",
		"rustdesk/rustdesk-server-s6:1.1.16":               "/data",
		"rustdesk/rustdesk-server-s6:1.1.16-amd64":         "/data",
		"ghcr.io/rustdesk/rustdesk-server-s6:latest":       "/data",
		"registry.local:5000/mirror/rustdesk-server-s6:1":  "/data",
		"rustdesk/rustdesk-server-s6@sha256:" + hex64:      "/data",
		"localhost:5000/rustdesk-server-s6":                "/data",
		"example/rustdesk-server-s6-custom:1":              "/root", // not the s6 image
		"example/my-hbbs:1":                                "/root",
		"rustdesk/rustdesk-server:s6":                      "/root", // a tag is not a name
		"registry.local:5000/rustdesk/rustdesk-server:1.0": "/root",
	}
	for ref, want := range cases {
		if _, err := deploy.ParseImageRef("--image", ref); err != nil {
			t.Errorf("%s: test case is not a valid reference: %v", ref, err)
		}
		if got := MountTargetFor(ref); got != want {
			t.Errorf("MountTargetFor(%q) = %s, want %s", ref, got, want)
		}
		spec := mustSpec(t, DefaultDir, ref, "", "rd.example.com")
		if spec.MountTarget() != want || spec.Record().MountTarget != want {
			t.Errorf("%s: spec mount target %s", ref, spec.MountTarget())
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestImageName(t *testing.T) {
	cases := map[string][2]string{
		"rustdesk/rustdesk-server:1.1.16":                 {"rustdesk/rustdesk-server", "1.1.16"},
		"rustdesk/rustdesk-server":                        {"rustdesk/rustdesk-server", "latest"},
		"docker.io/library/busybox:stable":                {"busybox", "stable"},
		"registry.local:5000/a/b:c":                       {"a/b", "c"},
		"registry.local:5000/a/b":                         {"a/b", "latest"},
		"localhost/x":                                     {"x", "latest"},
		"rustdesk/rustdesk-server@sha256:" + hex64:        {"rustdesk/rustdesk-server", ""},
		"rustdesk/rustdesk-server:1.1.16@sha256:" + hex64: {"rustdesk/rustdesk-server", "1.1.16"},
	}
	for ref, want := range cases {
		if got := ImageName(ref); got != want[0] {
			t.Errorf("ImageName(%q) = %q, want %q", ref, got, want[0])
		}
		if got := ImageTag(ref); got != want[1] {
			t.Errorf("ImageTag(%q) = %q, want %q", ref, got, want[1])
		}
	}
	for ref, want := range map[string]bool{
		"rustdesk/rustdesk-server:1": true, "ghcr.io/rustdesk/rustdesk-server-s6": true,
		"rustdesk/rustdesk": false, "busybox": false, "example/rustdesk-server-fork": false,
	} {
		if got := IsRustDeskImage(ref); got != want {
			t.Errorf("IsRustDeskImage(%q) = %v", ref, got)
		}
	}
}

func withWSLoopback(s Spec) Spec {
	s.WebSocketLoopback = true
	return s
}

// Bridge mode publishes exactly 21115-21119/tcp and 21116/udp, each once,
// on the service that listens there, on every address; behind a proxy
// (WebSocketLoopback) the WebSocket ports 21118 and 21119 on 127.0.0.1
// only. Host mode publishes nothing.
func TestBridgePorts(t *testing.T) {
	for _, loopback := range []bool{false, true} {
		s := mustSpec(t, DefaultDir, DefaultImage, NetworkBridge, "rd.example.com")
		s.WebSocketLoopback = loopback
		got := map[string]string{}
		for name, svc := range s.ComposeProject().Services {
			if svc.NetworkMode != "" {
				t.Errorf("%s: network_mode %q in bridge mode", name, svc.NetworkMode)
			}
			for _, port := range svc.Ports {
				key := port.Published + "/" + port.Protocol
				if prev, dup := got[key]; dup {
					t.Errorf("%s published twice (%s, %s)", key, prev, name)
				}
				wantIP := ""
				if loopback && (port.Target == 21118 || port.Target == 21119) {
					wantIP = "127.0.0.1"
				}
				if port.Published != strings.TrimSpace(port.Published) || port.Target == 0 || port.HostIP != wantIP {
					t.Errorf("loopback %v, %s: %+v", loopback, name, port)
				}
				got[key] = name
			}
		}
		want := map[string]string{
			"21115/tcp": "hbbs", "21116/tcp": "hbbs", "21116/udp": "hbbs", "21118/tcp": "hbbs",
			"21117/tcp": "hbbr", "21119/tcp": "hbbr",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("bridge ports %v, want %v", got, want)
		}
	}
	host := mustSpec(t, DefaultDir, DefaultImage, NetworkHost, "rd.example.com").ComposeProject()
	for name, svc := range host.Services {
		if svc.NetworkMode != "host" || len(svc.Ports) != 0 {
			t.Errorf("host mode %s: network_mode %q ports %v", name, svc.NetworkMode, svc.Ports)
		}
	}
}

func TestS6BypassesInit(t *testing.T) {
	p := mustSpec(t, DefaultDir, "rustdesk/rustdesk-server-s6:1.1.16", "", "rd.example.com").ComposeProject()
	for name, svc := range p.Services {
		if svc.Entrypoint == nil || len(svc.Entrypoint) != 0 {
			t.Errorf("%s: entrypoint %v, want [] (no /init)", name, svc.Entrypoint)
		}
		if svc.HealthCheck == nil || !svc.HealthCheck.Disable {
			t.Errorf("%s: the s6 healthcheck is not disabled", name)
		}
	}
	classic := mustSpec(t, DefaultDir, DefaultImage, "", "rd.example.com").ComposeProject()
	for name, svc := range classic.Services {
		if svc.Entrypoint != nil || svc.HealthCheck != nil {
			t.Errorf("classic %s: entrypoint %v healthcheck %v", name, svc.Entrypoint, svc.HealthCheck)
		}
	}
}

func TestProjectName(t *testing.T) {
	for dir, want := range map[string]string{
		"/opt/rustdesk-server": "rustdesk-server",
		"/srv/RustDesk_Server": "rustdesk_server",
		"/srv/-x.y":            "xy",
		"/srv/...":             "rustdesk-server",
		"/tmp/rdit-0a1b":       "rdit-0a1b",
	} {
		if got := ProjectName(dir); got != want {
			t.Errorf("ProjectName(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestNewSpecRejects(t *testing.T) {
	relay := deploy.HostPort{Host: "rd.example.com"}
	cases := []struct{ dir, image, network, project, field string }{
		{"relative/dir", DefaultImage, "", "", "--dir"},
		{"/", DefaultImage, "", "", "--dir"},
		{"/opt/x/../y", DefaultImage, "", "", "--dir"},
		{"/opt/a b", DefaultImage, "", "", "--dir"},
		{DefaultDir, "Rustdesk/Server", "", "", "--image"},
		{DefaultDir, "rustdesk/rustdesk-server:1.1.16\nx", "", "", "--image"},
		{DefaultDir, "rustdesk/rustdesk-server;rm", "", "", "--image"},
		{DefaultDir, DefaultImage, "macvlan", "", "--network"},
		{DefaultDir, DefaultImage, "", "Bad Name", "compose.project"},
	}
	for _, c := range cases {
		_, err := NewSpec(c.dir, c.image, c.network, c.project, relay)
		var ie *deploy.InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("NewSpec(%q, %q, %q, %q): %v, want an input error for %s", c.dir, c.image, c.network, c.project, err, c.field)
		}
	}
	if _, err := NewSpec(DefaultDir, DefaultImage, "", "", deploy.HostPort{}); err == nil {
		t.Error("empty relay accepted")
	}
}

// The loader really validates: a file with a wrong type or an unknown
// attribute is refused, so Render's check is not a formality.
func TestLoadRejects(t *testing.T) {
	for name, y := range map[string]string{
		"unknown attribute": "services:\n  hbbs:\n    image: x\n    imagee: y\n",
		"bad restart type":  "services:\n  hbbs:\n    image: x\n    restart: [1]\n",
		"bad port":          "services:\n  hbbs:\n    image: x\n    ports: [\"99999999:1\"]\n",
		"no services":       "name: x\nservices: 3\n",
	} {
		if _, err := Load(context.Background(), "/opt/x/compose.yaml", []byte(y), "x"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// sameServices catches a file that loads but describes something else.
func TestSameServicesDetectsDrift(t *testing.T) {
	s := mustSpec(t, DefaultDir, DefaultImage, NetworkBridge, "rd.example.com")
	want := s.ComposeProject()
	mutations := map[string]func(p *types.Project){
		"image":   func(p *types.Project) { x := p.Services["hbbs"]; x.Image = "other"; p.Services["hbbs"] = x },
		"command": func(p *types.Project) { x := p.Services["hbbr"]; x.Command = []string{"hbbr"}; p.Services["hbbr"] = x },
		"mount":   func(p *types.Project) { x := p.Services["hbbs"]; x.Volumes[0].Target = "/data"; p.Services["hbbs"] = x },
		"port":    func(p *types.Project) { x := p.Services["hbbs"]; x.Ports = x.Ports[:1]; p.Services["hbbs"] = x },
		"service": func(p *types.Project) { delete(p.Services, "hbbr") },
	}
	for name, mutate := range mutations {
		got := s.ComposeProject()
		mutate(got)
		if err := sameServices(want, got); err == nil {
			t.Errorf("%s: drift not detected", name)
		}
	}
	if err := sameServices(want, s.ComposeProject()); err != nil {
		t.Errorf("identical projects differ: %v", err)
	}
}
