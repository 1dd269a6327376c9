package fleet

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseProxyTarget(t *testing.T) {
	cases := []struct {
		in        string
		ok        bool
		host      string
		scheme    string
		port      int
		proxyPort int // as Target.ProxyPort (0 = default)
	}{
		{in: "wss://rd.example.com", ok: true, host: "rd.example.com", scheme: "wss"},
		{in: "wss://rd.example.com/", ok: true, host: "rd.example.com", scheme: "wss"},
		{in: "WSS://rd.example.com:8443", ok: true, host: "rd.example.com", scheme: "wss", proxyPort: 8443},
		{in: "ws://rd.example.com", ok: true, host: "rd.example.com", scheme: "ws"},
		{in: "ws://203.0.113.5:21118", ok: true, host: "203.0.113.5", scheme: "ws", proxyPort: 21118},
		{in: "wss://[2001:db8::1]:443", ok: true, host: "2001:db8::1", scheme: "wss", proxyPort: 443},
		{in: "wss://[2001:db8::1]", ok: true, host: "2001:db8::1", scheme: "wss"},
		{in: "wss://2001:db8::1", ok: false},
		{in: "wss://", ok: false},
		{in: "ws://", ok: false},
		{in: "wss://rd.example.com/ws/id", ok: false},
		{in: "wss://rd.example.com?x=1", ok: false},
		{in: "wss://user@rd.example.com", ok: false},
		{in: "wss://rd.example.com:0", ok: false},
		{in: "wss://rd.example.com:65536", ok: false},
		{in: "wss://bad host", ok: false},
		{in: "https://rd.example.com", ok: false},
		{in: "rd.example.com:21116", ok: true, host: "rd.example.com", port: 21116},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseTarget(c.in)
			if !c.ok {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Host != c.host || got.Proxy != c.scheme || got.Port != c.port || got.ProxyPort != c.proxyPort || got.Name != c.in {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestParseResolve(t *testing.T) {
	cases := []struct {
		in   string
		host string
		addr string // "" = refused
	}{
		{"rd.test:10.231.0.2", "rd.test", "10.231.0.2"},
		{"RD.Test.:10.231.0.2", "rd.test", "10.231.0.2"},
		{"rd.test:443:10.231.0.2", "rd.test", "10.231.0.2"},
		{"rd.test:[2001:db8::1]", "rd.test", "2001:db8::1"},
		{"rd.test:443:[2001:db8::1]", "rd.test", "2001:db8::1"},
		{"rd.test:2001:db8::1", "rd.test", "2001:db8::1"},
		{"rd.test:::ffff:10.0.0.1", "rd.test", "10.0.0.1"},
		{"rd.test", "", ""},
		{"rd.test:", "", ""},
		{":10.0.0.1", "", ""},
		{"rd.test:host.example", "", ""},
		{"rd.test:443:", "", ""},
		{"rd.test:99999:10.0.0.1", "", ""},
		{"10.0.0.1:10.0.0.2", "", ""},
		{"rd.test:fe80::1%eth0", "", ""},
		{"bad host:10.0.0.1", "", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			host, addr, err := ParseResolve(c.in)
			if c.addr == "" {
				if err == nil {
					t.Fatalf("accepted: %s %s", host, addr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if host != c.host || addr != netip.MustParseAddr(c.addr) {
				t.Fatalf("got %s %s", host, addr)
			}
		})
	}
}

// FuzzParseProxyTarget: ParseTarget never panics on a ws:// or wss://
// target, and what it accepts is a valid proxied target whose host
// round-trips through the parser.
func FuzzParseProxyTarget(f *testing.F) {
	for _, s := range []string{"wss://rd.example.com", "ws://[::1]:80/", "wss://a:1", "wss://x/ws", "ws://", "WsS://h:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if tg.Validate() != nil {
			t.Fatalf("%q: invalid target accepted: %+v", s, tg)
		}
		if !tg.Proxied() {
			if strings.Contains(s, "://") {
				t.Fatalf("%q: a URL accepted as a plain target", s)
			}
			return
		}
		again, err := ParseTarget(tg.Proxy + "://" + bracket(tg.Host))
		if err != nil || again.Host != tg.Host {
			t.Fatalf("%q: host %q does not parse again: %v", s, tg.Host, err)
		}
	})
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// FuzzParseResolve: ParseResolve never panics, and an accepted value
// gives a normalised name and a valid address that parse again.
func FuzzParseResolve(f *testing.F) {
	for _, s := range []string{"rd.test:10.0.0.1", "rd.test:443:[::1]", "a:b:c", "x:[::1", "h:1:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, addr, err := ParseResolve(s)
		if err != nil {
			return
		}
		if !addr.IsValid() || host == "" || host != strings.ToLower(host) {
			t.Fatalf("%q: got %q %v", s, host, addr)
		}
		h2, a2, err := ParseResolve(host + ":[" + addr.String() + "]")
		if addr.Is4() {
			h2, a2, err = ParseResolve(host + ":" + addr.String())
		}
		if err != nil || h2 != host || a2 != addr {
			t.Fatalf("%q: %s %s does not parse again: %v", s, host, addr, err)
		}
	})
}
