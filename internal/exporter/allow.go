package exporter

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// AllowList says which targets the exporter probes, so that it cannot be
// used to probe arbitrary hosts. A target is allowed when it is a host
// named in the list, or when every address it resolves to lies in one of
// the list's prefixes (an IP literal resolves to itself). The nil list
// allows every target except unspecified and multicast addresses, which
// no list allows.
type AllowList struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
}

// ParseAllowList parses "CIDR|IP|host,..." (spaces around entries are
// ignored). An empty string is an error: no flag means no list.
func ParseAllowList(s string) (*AllowList, error) {
	a := &AllowList{hosts: map[string]bool{}}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(f); err == nil {
			ip = ip.Unmap()
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		if strings.Contains(f, "/") {
			return nil, fmt.Errorf("--allow-targets: %s is not a CIDR prefix", textsafe.Echo(f))
		}
		hp, err := deploy.ParseHostPort("--allow-targets", f)
		if err != nil || hp.Port != 0 {
			return nil, fmt.Errorf("--allow-targets: %s is not a CIDR prefix, an IP address or a host name", textsafe.Echo(f))
		}
		a.hosts[strings.ToLower(strings.TrimSuffix(string(hp.Host), "."))] = true
	}
	if len(a.prefixes) == 0 && len(a.hosts) == 0 {
		return nil, errors.New("--allow-targets: empty list")
	}
	return a, nil
}

// hostAllowed reports whether host is named in the list.
func (a *AllowList) hostAllowed(host string) bool {
	return a != nil && a.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// addrAllowed reports whether ip may be probed.
func (a *AllowList) addrAllowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() || !ip.IsValid() {
		return false
	}
	if a == nil {
		return true
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// String lists the entries, for the log.
func (a *AllowList) String() string {
	if a == nil {
		return "any"
	}
	var out []string
	for _, p := range a.prefixes {
		out = append(out, p.String())
	}
	for h := range a.hosts {
		out = append(out, h)
	}
	return strings.Join(out, ",")
}
