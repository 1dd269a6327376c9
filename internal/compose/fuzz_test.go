package compose

import (
	"context"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
)

// FuzzImageRef: for every reference rdctl accepts, the name has no tag or
// digest, the mount-target rule agrees with the name, and a spec renders
// to a file the loader accepts with that image and target.
func FuzzImageRef(f *testing.F) {
	for _, s := range []string{
		"rustdesk/rustdesk-server:1.1.16", "rustdesk/rustdesk-server-s6", "ghcr.io/rustdesk/rustdesk-server-s6:1",
		"registry.local:5000/a/rustdesk-server-s6:x@sha256:" + hex64, "localhost/rustdesk-server", "a", "a/b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		name, tag := ImageName(ref), ImageTag(ref)
		if _, err := deploy.ParseImageRef("--image", ref); err != nil {
			return
		}
		if strings.Contains(name, "@") || strings.Contains(name, ":") || name == "" {
			t.Fatalf("ImageName(%q) = %q", ref, name)
		}
		if strings.ContainsAny(tag, "/@") {
			t.Fatalf("ImageTag(%q) = %q", ref, tag)
		}
		want := "/root"
		if strings.HasSuffix(name, "/rustdesk-server-s6") || name == "rustdesk-server-s6" {
			want = "/data"
		}
		if got := MountTargetFor(ref); got != want {
			t.Fatalf("MountTargetFor(%q) = %s, want %s", ref, got, want)
		}
		s, err := NewSpec(DefaultDir, ref, "", "", deploy.HostPort{Host: "rd.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Render(context.Background(), s); err != nil {
			t.Fatalf("%q: %v", ref, err)
		}
	})
}

// FuzzRender: every relay, directory and network rdctl's input parsers
// accept renders to a compose file that compose-go loads back to the same
// services (Render checks that itself).
func FuzzRender(f *testing.F) {
	f.Add("rd.example.com", "/opt/rustdesk-server", true)
	f.Add("[2001:db8::1]:443", "/srv/x_y-z", false)
	f.Add("203.0.113.7:21117", "/a", true)
	f.Fuzz(func(t *testing.T, relay, dir string, host bool) {
		hp, err := deploy.ParseHostPort("--relay", relay)
		if err != nil {
			return
		}
		network := NetworkBridge
		if host {
			network = NetworkHost
		}
		s, err := NewSpec(dir, DefaultImage, network, "", hp)
		if err != nil {
			return
		}
		data, err := Render(context.Background(), s)
		if err != nil {
			t.Fatalf("relay %q dir %q: %v", relay, dir, err)
		}
		p, err := Load(context.Background(), s.File(), data, s.Project)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Services[ServiceHBBS].Command[2]; got != s.RelayArg() {
			t.Fatalf("relay %q came back as %q", s.Relays, got)
		}
	})
}
