package compose

import (
	"errors"
	"testing"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
)

// A stack with its keys in the container layer is refused unless forced;
// the ID server comes from the relay, the hostname asked only without one.
func TestAdopt(t *testing.T) {
	classic := func() *Detected {
		m := Mount{Type: "bind", Source: "/srv/rd/data", Destination: "/data", RW: true}
		d := &Detected{Project: "rd", ProjectDir: "/srv/rd", Image: "rustdesk/rustdesk-server:1.1.16", Network: "rd_default",
			Relay: "rd.example.com:21117", WorkingDir: "/root", ConfigFiles: []string{"/srv/rd/compose.yaml"},
			Services: []ServiceStatus{{Service: "hbbs", Command: []string{"hbbs"}, Mounts: []Mount{m}, WorkingDir: "/root"},
				{Service: "hbbr", Command: []string{"hbbr", "-k", "_"}, Mounts: []Mount{m}, WorkingDir: "/root"}}}
		d.Warnings = warnings(d)
		return d
	}
	noHostname := func() (string, string) { t.Error("hostname asked although the relay names the host"); return "", "" }

	a, err := Adopt(classic(), adopt.Request{}, noHostname)
	if err != nil {
		t.Fatal(err)
	}
	var refused *RefusedError
	if !a.Refused || !errors.As(a.Refusal(), &refused) || refused.MountTarget != "/root" || refused.WorkingDir != "/root" ||
		len(refused.ConfigFiles) != 1 {
		t.Errorf("refused %v: %+v", a.Refused, refused)
	}
	if a.Record.IDHost != "rd.example.com" || a.IDHostSource != adopt.IDHostFromRelay {
		t.Errorf("id host %q from %q", a.Record.IDHost, a.IDHostSource)
	}

	a, err = Adopt(classic(), adopt.Request{Force: true, Relay: "relay.example.org", IDHost: deploy.HostPort{Host: "id.example.org"}}, noHostname)
	if err != nil || a.Refused || a.Refusal() != nil {
		t.Fatalf("forced: %+v %v", a, err)
	}
	if a.Record.Relay != "relay.example.org:21117" || a.Record.IDHost != "id.example.org" || a.IDHostSource != adopt.IDHostFromFlag {
		t.Errorf("record %+v from %q", a.Record, a.IDHostSource)
	}

	d := classic()
	d.Relay = ""
	if _, err := Adopt(d, adopt.Request{}, func() (string, string) { return "localhost", "hostname -f" }); !errors.Is(err, adopt.ErrNoIDHost) {
		t.Errorf("no ID host: %v", err)
	}
}
