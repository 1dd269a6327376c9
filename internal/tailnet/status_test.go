package tailnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tailscale.com/ipn/ipnstate"
	"tailscale.com/types/key"
	"tailscale.com/types/views"
)

// sampleStatus is what tailscaled returns, as tailscale.com's ipnstate
// types, for a tailnet with a MagicDNS domain and two peers whose OS host
// names collide. Node keys are fixed so that its JSON is a stable golden
// file (testdata/status.json).
func sampleStatus() *ipnstate.Status {
	ps := func(host, dns string, ips ...string) *ipnstate.PeerStatus {
		p := &ipnstate.PeerStatus{HostName: host, DNSName: dns, OS: "linux", Relay: "fra"}
		for _, ip := range ips {
			p.TailscaleIPs = append(p.TailscaleIPs, netip.MustParseAddr(ip))
		}
		return p
	}
	srv := ps("rd-server", "rd-server.tail-scale.ts.net.", "100.64.0.1", "fd7a:115c:a1e0::1")
	srv.Online, srv.Active, srv.CurAddr = true, true, "192.0.2.10:41641"
	routes := views.SliceOf([]netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")})
	srv.PrimaryRoutes = &routes
	dup := ps("rd-server", "rd-server-1.tail-scale.ts.net.", "100.64.0.3")
	dup.LastSeen = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	laptop := ps("Laptop", "laptop.tail-scale.ts.net.", "100.64.0.4")
	laptop.Online, laptop.PeerRelay = true, "198.51.100.7:7777:vni:3"
	v6only := ps("v6", "v6.tail-scale.ts.net.", "fd7a:115c:a1e0::6")
	v6only.Online = true
	return &ipnstate.Status{
		BackendState:   "Running",
		TUN:            true,
		TailscaleIPs:   []netip.Addr{netip.MustParseAddr("100.64.0.2")},
		Self:           ps("rd-client", "rd-client.tail-scale.ts.net.", "100.64.0.2", "fd7a:115c:a1e0::2"),
		Health:         []string{"sample health warning"},
		CurrentTailnet: &ipnstate.TailnetStatus{MagicDNSSuffix: "tail-scale.ts.net"},
		Peer: map[key.NodePublic]*ipnstate.PeerStatus{
			nodeKey(1): srv,
			nodeKey(2): dup,
			nodeKey(3): laptop,
			nodeKey(4): v6only,
		},
	}
}

// nodeKey is a fixed node public key; tailscaled keys its peer map by them.
func nodeKey(n int) key.NodePublic {
	var k key.NodePublic
	if err := k.UnmarshalText(fmt.Appendf(nil, "nodekey:%064x", n)); err != nil {
		panic(err)
	}
	return k
}

// decodeStatus puts st through the wire: tailscale.com's JSON encoding of
// it, decoded the way rdctl decodes tailscaled's answer.
func decodeStatus(st *ipnstate.Status) *lapiStatus {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err)
	}
	var out lapiStatus
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

// sample is [sampleStatus] as rdctl sees it.
func sample() *Status { return convertStatus(decodeStatus(sampleStatus())) }

func TestConvertStatus(t *testing.T) {
	st := sample()
	if st.Mode() != "tun" || st.Ready() != nil || st.MagicDNSSuffix != "tail-scale.ts.net" {
		t.Errorf("status = %+v", st)
	}
	if !st.Self.Self || !st.Self.Online || st.Self.DNSName != "rd-client.tail-scale.ts.net" {
		t.Errorf("Self = %+v", st.Self)
	}
	var names []string
	for _, p := range st.Peers {
		names = append(names, p.Name())
		if strings.HasSuffix(p.DNSName, ".") {
			t.Errorf("DNSName %q keeps its trailing dot", p.DNSName)
		}
	}
	if got := strings.Join(names, " "); got != "laptop.tail-scale.ts.net rd-server-1.tail-scale.ts.net rd-server.tail-scale.ts.net v6.tail-scale.ts.net" {
		t.Errorf("peers not sorted by name: %s", got)
	}
}

func TestStatusFindPeer(t *testing.T) {
	st := sample()
	for target, want := range map[string]string{
		"rd-server":                    "rd-server.tail-scale.ts.net", // short name beats the colliding host name
		"rd-server-1":                  "rd-server-1.tail-scale.ts.net",
		"rd-server.tail-scale.ts.net.": "rd-server.tail-scale.ts.net",
		"RD-SERVER.tail-scale.ts.net":  "rd-server.tail-scale.ts.net",
		"rd-server:21116":              "rd-server.tail-scale.ts.net",
		"100.64.0.3":                   "rd-server-1.tail-scale.ts.net",
		"[fd7a:115c:a1e0::1]:21116":    "rd-server.tail-scale.ts.net",
		"::ffff:100.64.0.4":            "laptop.tail-scale.ts.net",
		"laptop":                       "laptop.tail-scale.ts.net",
		"rd-client":                    "rd-client.tail-scale.ts.net", // self
		"fd7a:115c:a1e0::2":            "rd-client.tail-scale.ts.net",
		"v6.tail-scale.ts.net":         "v6.tail-scale.ts.net",
	} {
		p, err := st.FindPeer(target)
		if err != nil {
			t.Errorf("FindPeer(%q): %v", target, err)
			continue
		}
		if p.DNSName != want {
			t.Errorf("FindPeer(%q) = %s, want %s", target, p.DNSName, want)
		}
	}
	for _, target := range []string{"", "nope", "100.64.0.99", "192.0.2.10", "rd-server.other.ts.net", "tail-scale.ts.net"} {
		if _, err := st.FindPeer(target); !errors.Is(err, ErrPeerNotFound) {
			t.Errorf("FindPeer(%q) = %v, want ErrPeerNotFound", target, err)
		}
	}
	if p, _ := st.FindPeer("v6"); p.Addr() != netip.MustParseAddr("fd7a:115c:a1e0::6") {
		t.Errorf("Addr of a v6-only peer = %v", p.Addr())
	}
	// Offline peers are found; OnlineErr says they are offline.
	p, err := st.FindPeer("rd-server-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.OnlineErr(); !errors.Is(err, ErrPeerOffline) || !strings.Contains(err.Error(), "2026-01-02T03:04:05Z") || Hint(err) == "" {
		t.Errorf("OnlineErr = %v (hint %q)", err, Hint(err))
	}
}

func TestStatusFindPeerAmbiguous(t *testing.T) {
	// Without a MagicDNS domain DNS names are bare host names; two nodes
	// with the same host name make the name ambiguous.
	raw := sampleStatus()
	for _, p := range raw.Peer {
		p.DNSName = ""
	}
	st := convertStatus(decodeStatus(raw))
	_, err := st.FindPeer("rd-server")
	if !errors.Is(err, ErrAmbiguousPeer) || Hint(err) == "" {
		t.Fatalf("FindPeer(rd-server) = %v, want ErrAmbiguousPeer with a hint", err)
	}
	if !st.LooksTailnet("rd-server") {
		t.Error("an ambiguous peer name should still look like a tailnet name")
	}
}

func TestStatusReady(t *testing.T) {
	for state, hint := range map[string]string{
		"NeedsLogin":       "tailscale up",
		"Stopped":          "tailscale up",
		"NeedsMachineAuth": "admin console",
		"Starting":         "retry",
		"":                 "retry",
	} {
		st := &Status{BackendState: state}
		if state == "" {
			st.BackendState = "NoState"
		}
		err := st.Ready()
		if !errors.Is(err, ErrNotRunning) || !strings.Contains(Hint(err), hint) {
			t.Errorf("Ready() in %q = %v (hint %q), want ErrNotRunning with %q", state, err, Hint(err), hint)
		}
	}
}

func FuzzStatusFindPeer(f *testing.F) {
	st := sample()
	for _, s := range []string{"rd-server", "rd-server-1:1", "100.64.0.3", "[fd7a:115c:a1e0::1]:2", "LAPTOP.", "x.tail-scale.ts.net", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		p, err := st.FindPeer(target)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		// Whatever matched must match by one of the documented rules.
		h := hostOf(target)
		a, ipErr := netip.ParseAddr(h)
		switch {
		case ipErr == nil:
			if !containsAddr(p.IPs, a.Unmap()) {
				t.Fatalf("FindPeer(%q) = %v, which lacks that address", target, p.IPs)
			}
		case !strings.EqualFold(p.DNSName, h) && !strings.EqualFold(p.ShortName(), h) && !strings.EqualFold(p.HostName, h):
			t.Fatalf("FindPeer(%q) = %+v, which has no such name", target, p)
		}
	})
}
