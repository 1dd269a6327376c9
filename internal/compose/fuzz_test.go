package compose

import (
	"context"
	"strings"
	"testing"
	"unicode"

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
		if got := p.Services[ServiceHBBS].Command[2]; got != s.Relay.String() {
			t.Fatalf("relay %q came back as %q", s.Relay, got)
		}
	})
}

// FuzzParseServerArgs: the hbbs/hbbr argument reader never panics, and
// finds an option however it is spelled.
func FuzzParseServerArgs(f *testing.F) {
	f.Add("hbbs -r rd.example.com:21117 -k _", "relay.example.net")
	f.Add("hbbs --relay-servers=a -k", "b")
	f.Add("hbbr -kX --", "y")
	f.Fuzz(func(t *testing.T, line, val string) {
		argv := strings.Fields(line)
		parseServerArgs(argv)
		// strings.Fields splits at unicode.IsSpace, NEL and NBSP included; a
		// value holding one is not one argument.
		if val == "" || strings.HasPrefix(val, "-") || strings.HasPrefix(val, "=") || strings.ContainsFunc(val, unicode.IsSpace) {
			return
		}
		for _, form := range [][]string{{"-r", val}, {"-r" + val}, {"-r=" + val}, {"--relay-servers", val}, {"--relay-servers=" + val}} {
			full := append(append([]string{"hbbs"}, form...), "-k", "_")
			if got := parseServerArgs(full)["relay-servers"]; got != val {
				t.Fatalf("%q: relay %q, want %q", full, got, val)
			}
		}
	})
}

func TestParseServerArgs(t *testing.T) {
	cases := []struct {
		argv []string
		want map[string]string
	}{
		{[]string{"hbbs"}, map[string]string{}},
		{[]string{"hbbs", "-r", "a:21117", "-k", "_"}, map[string]string{"relay-servers": "a:21117", "key": "_"}},
		{[]string{"/usr/bin/hbbs", "--relay-servers=a", "--key", "_", "-p", "21116"}, map[string]string{"relay-servers": "a", "key": "_", "port": "21116"}},
		{[]string{"hbbr", "-k_"}, map[string]string{"key": "_"}},
		{[]string{"hbbs", "-r"}, map[string]string{}},
		{[]string{"hbbs", "--", "-r", "x"}, map[string]string{}},
		{[]string{"hbbs", "--unknown", "-r", "b", "-r", "c"}, map[string]string{"relay-servers": "c"}},
	}
	for _, c := range cases {
		got := parseServerArgs(c.argv)
		if len(got) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.argv, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", c.argv, k, got[k], v)
			}
		}
	}
}
