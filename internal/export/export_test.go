package export

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/golden"
	"github.com/rdctl/rdctl/internal/keys"
)

var update = golden.Update

// Fixed secret keys (those of the export testscripts): nice's public key
// fits in the host= installer name, slash's has a '/' and rules it out.
const (
	niceSecret  = "JCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkOPYUjScqSsEUljtQoNAliEA5MJ8A4FTKJvLXr216ZbdA=="
	slashSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8DoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA=="
)

// pair is a fixed key pair: nice (1), slash (0), or one from a seed.
func pair(t *testing.T, which byte) keys.Pair {
	t.Helper()
	var (
		p   keys.Pair
		err error
	)
	switch which {
	case 0:
		p, err = keys.ParseSecret([]byte(slashSecret))
	case 1:
		p, err = keys.ParseSecret([]byte(niceSecret))
	default:
		p, err = keys.FromSeed(bytes.Repeat([]byte{which}, 32))
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hp(t *testing.T, s string) deploy.HostPort {
	t.Helper()
	if s == "" {
		return deploy.HostPort{}
	}
	v, err := deploy.ParseHostPort("test", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClientEndpoints(t *testing.T) {
	hp := func(s string) deploy.HostPort {
		t.Helper()
		if s == "" {
			return deploy.HostPort{}
		}
		v, err := deploy.ParseHostPort("test", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ id, relay, host, relayOut string }{
		{"rd.example.com", "", "rd.example.com", ""},
		{"rd.example.com", "rd.example.com:21117", "rd.example.com", ""},
		{"rd.example.com:21116", "rd.example.com", "rd.example.com", ""},
		{"RD.example.com", "rd.EXAMPLE.com:21117", "RD.example.com", ""},
		{"rd.example.com", "relay.example.com:21117", "rd.example.com", "relay.example.com"},
		{"rd.example.com", "rd.example.com:31117", "rd.example.com", "rd.example.com:31117"},
		// a non-default ID port: the client would derive the next port up
		{"rd.example.com:31116", "rd.example.com:21117", "rd.example.com:31116", "rd.example.com"},
		{"rd.example.com:31116", "rd.example.com:31117", "rd.example.com:31116", "rd.example.com:31117"},
		{"203.0.113.10", "203.0.113.10:21117", "203.0.113.10", ""},
		{"2001:db8::1", "[2001:db8::1]:21117", "[2001:db8::1]", ""},
		{"[2001:db8::1]:21116", "[2001:db8::2]:21117", "[2001:db8::1]", "[2001:db8::2]"},
		{"[2001:db8::1]:1234", "", "[2001:db8::1]:1234", ""},
	} {
		host, relay := ClientEndpoints(hp(c.id), hp(c.relay))
		if host != c.host || relay != c.relayOut {
			t.Errorf("ClientEndpoints(%q, %q) = %q, %q; want %q, %q", c.id, c.relay, host, relay, c.host, c.relayOut)
		}
	}
}

func TestParseAPI(t *testing.T) {
	for in, want := range map[string]string{
		"https://rd.example.com":        "https://rd.example.com",
		"https://rd.example.com/":       "https://rd.example.com",
		"http://203.0.113.10:21114":     "http://203.0.113.10:21114",
		"https://[2001:db8::1]:21114/":  "https://[2001:db8::1]:21114",
		"https://rd.example.com/api/v1": "https://rd.example.com/api/v1",
	} {
		if got, err := ParseAPI("--api", in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "rd.example.com", "ftp://rd.example.com", "HTTPS://rd.example.com", "https://",
		"https://u@rd.example.com", "https://rd.example.com/?q", "https://rd.example.com/#f", "https://rd example.com",
		"https://rd.example.com/'", "https://rd.example.com/\\", "https://rd.example.com\n", "https://rdé.example.com",
		"https://rd.example.com:0", "https://rd.example.com:99999", "https://rd;x.example.com"} {
		_, err := ParseAPI("--api", in)
		var ie *deploy.InputError
		if !errors.As(err, &ie) {
			t.Errorf("%q: accepted or not an input error: %v", in, err)
		}
	}
}

func TestForProxy(t *testing.T) {
	cases := []struct {
		id, relay, api string
		wantAPI        string
		warnings       int
		errField       string
	}{
		{"rd.example.com", "", "", "https://rd.example.com", 0, ""},
		{"rd.example.com:21116", "rd.example.com:21117", "", "https://rd.example.com", 0, ""},
		{"RD.example.com", "", "", "https://rd.example.com", 0, ""},
		{"id.example.com", "relay.example.com", "", "https://rd.example.com", 2, ""},
		{"rd.example.com", "", "https://api.example.com", "https://api.example.com", 0, ""},
		{"rd.example.com", "", "http://rd.example.com", "http://rd.example.com", 1, ""},
		{"203.0.113.10", "", "", "", 0, "id_host"},
		{"rd.example.com", "[2001:db8::1]:21117", "", "", 0, "relay"},
	}
	for _, c := range cases {
		s := Source{Endpoints: Endpoints{ID: mustHP(t, c.id), API: c.api}}
		if c.relay != "" {
			s.Relay = mustHP(t, c.relay)
		}
		w, err := s.ForProxy("rd.example.com")
		var ie *deploy.InputError
		switch {
		case c.errField != "":
			if !errors.As(err, &ie) || ie.Field != c.errField || s.WebSocket {
				t.Errorf("%+v: %v, want an InputError for %s", c, err, c.errField)
			}
		case err != nil || len(w) != c.warnings || s.API != c.wantAPI || !s.WebSocket:
			t.Errorf("%+v: api %q websocket %v warnings %q %v", c, s.API, s.WebSocket, w, err)
		}
	}
}

func mustHP(t *testing.T, s string) deploy.HostPort {
	t.Helper()
	hp, err := deploy.ParseHostPort("test", s)
	if err != nil {
		t.Fatal(err)
	}
	return hp
}
