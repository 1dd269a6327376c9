package adopt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
)

func TestIDHost(t *testing.T) {
	given, _ := deploy.ParseHostPort("--id-host", "id.example.net:21116")
	for _, tc := range []struct {
		name         string
		given        deploy.HostPort
		relay        string
		hostname     string
		want, source string
		asked        bool // whether the host's name was asked
	}{
		{"flag wins", given, "rd.example.com:21117", "box.example.org", "id.example.net:21116", "--id-host", false},
		{"relay's host, its port dropped", deploy.HostPort{}, "rd.example.com:21117", "box.example.org", "rd.example.com", "relay", false},
		{"host name", deploy.HostPort{}, "", "box.example.org", "box.example.org", "test", true},
		{"localhost is useless to clients", deploy.HostPort{}, "", "localhost", "", "", true},
		{"no name", deploy.HostPort{}, "", "", "", "", true},
		{"invalid relay", deploy.HostPort{}, "bad host", "box.example.org", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			hp, source, err := IDHost(tc.given, tc.relay, func() (string, string) { asked = true; return tc.hostname, "test" })
			if tc.want == "" {
				if !errors.Is(err, ErrNoIDHost) {
					t.Errorf("got %s (%s) %v, want ErrNoIDHost", hp, source, err)
				}
			} else if err != nil || hp.String() != tc.want || source != tc.source {
				t.Errorf("got %s (%s) %v, want %s (%s)", hp, source, err, tc.want, tc.source)
			}
			if asked != tc.asked {
				t.Errorf("host name asked: %v, want %v", asked, tc.asked)
			}
		})
	}
}

func TestHostnameUnderRoot(t *testing.T) {
	root := t.TempDir()
	if name, source := Hostname(context.Background(), root); name != "" || source != "" {
		t.Errorf("no /etc/hostname: %q %q", name, source)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("rd.example.org\n"), 0o644)
	if name, source := Hostname(context.Background(), root); name != "rd.example.org" || source != "/etc/hostname" {
		t.Errorf("got %q %q", name, source)
	}
}

func TestSelectOrigin(t *testing.T) {
	found := []*Install{{Origin: OriginDebian}, {Origin: OriginCustom}, {Origin: OriginInstallerScript}}
	for origin, want := range map[string]int{"": 3, OriginDebian: 1, OriginRdctl: 1, OriginInstallerScript: 1, "nope": 0} {
		if got := SelectOrigin(found, origin); len(got) != want {
			t.Errorf("%q: %d installs, want %d", origin, len(got), want)
		}
	}
}

// Find picks the one install, the one of an origin, or says why not with
// a typed error.
func TestFind(t *testing.T) {
	root := t.TempDir()
	unit := func(rel, exec string) {
		full := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("[Service]\nExecStart="+exec+"\nWorkingDirectory=/opt/rustdesk\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Find(root, ""); !errors.Is(err, ErrNoInstall) {
		t.Errorf("nothing: %v", err)
	}
	unit("lib/systemd/system/rustdesk-hbbs.service", "/usr/bin/hbbs")
	unit("lib/systemd/system/rustdesk-hbbr.service", "/usr/bin/hbbr")
	if in, err := Find(root, ""); err != nil || in.Origin != OriginDebian {
		t.Errorf("debian: %+v %v", in, err)
	}
	unit("etc/systemd/system/rustdesksignal.service", "/opt/rustdesk/hbbs")
	unit("etc/systemd/system/rustdeskrelay.service", "/opt/rustdesk/hbbr")
	var several *SeveralInstallsError
	if _, err := Find(root, ""); !errors.As(err, &several) || len(several.Installs) != 2 {
		t.Errorf("two: %v", err)
	}
	if in, err := Find(root, OriginInstallerScript); err != nil || in.Origin != OriginInstallerScript {
		t.Errorf("--origin installer-script: %+v %v", in, err)
	}
	if _, err := Find(root, OriginRdctl); !errors.Is(err, ErrNoInstall) {
		t.Errorf("--origin rdctl: %v", err)
	}
}
