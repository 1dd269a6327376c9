package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDomain(t *testing.T) {
	good := map[string]Domain{
		"rd.example.com":   "rd.example.com",
		"RD.Example.COM.":  "rd.example.com",
		"localhost":        "localhost",
		"xn--bcher-kva.ch": "xn--bcher-kva.ch",
	}
	for in, want := range good {
		if got, err := ParseDomain("--domain", in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	bad := map[string]string{
		"192.0.2.1":          "IP address",
		"2001:db8::1":        "IP address",
		"":                   "empty",
		"rd.example.com:443": "not a host name",
		"rd example.com":     "space",
		"rd.example.com{":    "not allowed",
		"-rd.example.com":    "RFC 1123",
		"1.2.3":              "IPv4",
		"bücher.ch":          "non-ASCII",
	}
	for in, reason := range bad {
		_, err := ParseDomain("--domain", in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != "--domain" || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want %q", in, err, reason)
		}
	}
}

func FuzzParseDomain(f *testing.F) {
	for _, s := range []string{"rd.example.com", "192.0.2.1", "::1", "a..b", "x{y}", "localhost."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDomain("--domain", s)
		if err != nil {
			return
		}
		// What is accepted renders into nginx and Caddyfile syntax as is:
		// lower-case letters, digits, dots and hyphens, and no IP.
		if strings.Trim(string(d), "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" || d == "" {
			t.Fatalf("%q accepted as %q", s, d)
		}
		if Host(d).IsIP() {
			t.Fatalf("%q: an IP accepted", s)
		}
		again, err := ParseDomain("--domain", string(d))
		if err != nil || again != d {
			t.Fatalf("%q -> %q does not parse to itself: %q %v", s, d, again, err)
		}
	})
}

// Records written before the [proxy] table existed still load, a record
// with one round-trips, and each bad proxy field is refused by name.
func TestRecordProxyTable(t *testing.T) {
	base := "format = 1\nbackend = 'systemd'\nid_host = 'rd.example.com'\nrelay = 'rd.example.com'\ntailnet_only = false\nworking_dir = '/var/lib/rustdesk'\nhbbr_enforces_key = true\norigin = 'rdctl'\n"
	r, err := DecodeRecord([]byte(base))
	if err != nil || r.Proxy != nil {
		t.Fatalf("old record: %+v %v", r, err)
	}
	withProxy := base + "\n[proxy]\nkind = 'nginx'\ndomain = 'rd.example.com'\ntls = 'files'\nconfig = '/etc/nginx/conf.d/rustdesk-rd.example.com.conf'\n"
	r, err = DecodeRecord([]byte(withProxy))
	if err != nil || r.Proxy == nil || r.Proxy.Kind != "nginx" || r.Proxy.Domain != "rd.example.com" {
		t.Fatalf("with proxy: %+v %v", r, err)
	}
	enc, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := DecodeRecord(enc)
	if err != nil || *r2.Proxy != *r.Proxy {
		t.Fatalf("round trip: %+v %v", r2, err)
	}
	for _, c := range []struct{ from, to, field string }{
		{"kind = 'nginx'", "kind = 'traefik'", "proxy.kind"},
		{"domain = 'rd.example.com'", "domain = '192.0.2.1'", "proxy.domain"},
		{"tls = 'files'", "tls = 'none'", "proxy.tls"},
		{"tls = 'files'", "tls = 'automatic'", "proxy.tls"}, // nginx gets no certificate itself
		{"config = '/etc/nginx/conf.d/rustdesk-rd.example.com.conf'", "config = 'conf.d/x'", "proxy.config"},
		{"domain = 'rd.example.com'", "domain = \"rd.example.com\\n\"", "proxy.domain"},
	} {
		_, err := DecodeRecord([]byte(strings.Replace(withProxy, c.from, c.to, 1)))
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: %v, want an InputError for %s", c.to, err, c.field)
		}
	}
}
