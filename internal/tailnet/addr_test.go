package tailnet

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIsTailnetAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"100.64.0.0":                  true,
		"100.64.0.1":                  true,
		"100.100.100.100":             true, // MagicDNS resolver, inside the range
		"100.127.255.255":             true,
		"100.63.255.255":              false,
		"100.128.0.0":                 false,
		"10.0.0.1":                    false,
		"127.0.0.1":                   false,
		"::ffff:100.101.102.103":      true, // IPv4-mapped counts as IPv4
		"fd7a:115c:a1e0::1":           true,
		"fd7a:115c:a1e0:ab12::1":      true,
		"fd7a:115c:a1e0:ffff:ffff::1": true,
		"fd7a:115c:a1e1::1":           false,
		"fd7a:115c:a1e0::1%eth0":      true,
		"fe80::1":                     false,
		"::1":                         false,
	} {
		if got := IsTailnetAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsTailnetAddr(%s) = %v, want %v", s, got, want)
		}
	}
	if IsTailnetAddr(netip.Addr{}) {
		t.Error("zero Addr is a tailnet address")
	}
}

func TestLooksTailnet(t *testing.T) {
	for s, want := range map[string]bool{
		"100.101.102.103":              true,
		"100.101.102.103:21116":        true,
		"[fd7a:115c:a1e0::5]:21116":    true,
		"fd7a:115c:a1e0::5":            true,
		"rd-server.tail1234.ts.net":    true,
		"RD-Server.Tail1234.TS.NET.":   true,
		"rd-server.tail1234.ts.net:21": true,
		"ts.net":                       false,
		"evil-ts.net":                  false,
		"ts.net.example.com":           false,
		"rd.example.com":               false,
		"rd-server":                    false, // needs the netmap: Status.LooksTailnet
		"192.0.2.1:21116":              false,
		"":                             false,
	} {
		if got := LooksTailnet(s); got != want {
			t.Errorf("LooksTailnet(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"rd-server":                   "rd-server",
		"RD-Server.":                  "rd-server",
		"rd-server:21116":             "rd-server",
		" rd-server.ts.net. ":         "rd-server.ts.net",
		"100.64.0.1":                  "100.64.0.1",
		"100.64.0.1:21116":            "100.64.0.1",
		"fd7a:115c:a1e0::1":           "fd7a:115c:a1e0::1",
		"[fd7a:115c:a1e0::1]":         "fd7a:115c:a1e0::1",
		"[fd7a:115c:a1e0::1]:21116":   "fd7a:115c:a1e0::1",
		"FD7A:115C:A1E0:0:0:0:0:1":    "fd7a:115c:a1e0::1",
		"rd-server.tail-scale.ts.net": "rd-server.tail-scale.ts.net",
		"":                            "",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzHostOf(f *testing.F) {
	for _, s := range []string{
		"rd-server", "rd-server:21116", "100.64.0.1", "[fd7a:115c:a1e0::1]:1", "A.ts.net..",
		"[::1]", "[[::1]]:5", "::ffff:100.64.0.1", "host:port:extra", "%", "[", "]:", ".",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := hostOf(s)
		if again := hostOf(h); again != h {
			t.Fatalf("hostOf not idempotent: %q -> %q -> %q", s, h, again)
		}
		if strings.HasSuffix(h, ".") {
			t.Fatalf("hostOf(%q) = %q keeps a trailing dot", s, h)
		}
		// LooksTailnet agrees with IsTailnetAddr on anything that is an IP.
		if a, err := netip.ParseAddr(h); err == nil && LooksTailnet(s) != IsTailnetAddr(a) {
			t.Fatalf("LooksTailnet(%q) = %v but IsTailnetAddr(%v) = %v", s, LooksTailnet(s), a, IsTailnetAddr(a))
		}
	})
}
