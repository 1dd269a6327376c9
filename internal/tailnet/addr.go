package tailnet

import (
	"net"
	"net/netip"
	"strings"
)

// The address ranges Tailscale assigns node addresses from.
var (
	// cgnatRange is 100.64.0.0/10, Tailscale's IPv4 range (shared with
	// carrier-grade NAT, so an address here is a strong hint, not proof).
	cgnatRange = netip.MustParsePrefix("100.64.0.0/10")
	// ula6Range is fd7a:115c:a1e0::/48, Tailscale's IPv6 ULA range.
	ula6Range = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// IsTailnetAddr reports whether a is in a range Tailscale assigns node
// addresses from: 100.64.0.0/10 or fd7a:115c:a1e0::/48. IPv4-mapped IPv6
// addresses count as their IPv4 address.
func IsTailnetAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	return cgnatRange.Contains(a) || ula6Range.Contains(a)
}

// LooksTailnet reports whether target (a host, host:port, IP or [IPv6]:port)
// names a tailnet node without asking tailscaled: a tailnet address
// ([IsTailnetAddr]) or a name under Tailscale's ts.net domain. Use
// [Status.LooksTailnet] to also recognise the tailnet's own MagicDNS suffix
// (headscale and custom domains) and peers' short names.
func LooksTailnet(target string) bool {
	h := hostOf(target)
	if a, err := netip.ParseAddr(h); err == nil {
		return IsTailnetAddr(a)
	}
	return h != "ts.net" && strings.HasSuffix(h, ".ts.net")
}

// hostOf extracts the host from a target: it drops a ":port", IPv6
// brackets, surrounding space and trailing dots, lower-cases names and
// canonicalises IPs. It never fails; a string it cannot split is returned
// cleaned as it is. hostOf is idempotent: the steps repeat until nothing
// changes, because each can expose work for another ("[ x] " -> " x" -> "x").
func hostOf(target string) string {
	t := target
	for range len(target) + 2 {
		n := hostStep(t)
		if n == t {
			break
		}
		t = n
	}
	return t
}

func hostStep(t string) string {
	t = strings.TrimSpace(t)
	if a, err := netip.ParseAddr(t); err == nil {
		return a.String()
	}
	if h, _, err := net.SplitHostPort(t); err == nil {
		t = h
	}
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		t = t[1 : len(t)-1]
	}
	return strings.ToLower(strings.TrimRight(t, "."))
}
