package fleet

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// cutScheme splits "ws://rest" or "wss://rest" (scheme in any case) and
// reports whether s had one of them.
func cutScheme(s string) (scheme, rest string, ok bool) {
	for _, sc := range []string{"wss", "ws"} {
		if len(s) >= len(sc)+3 && strings.EqualFold(s[:len(sc)+3], sc+"://") {
			return sc, s[len(sc)+3:], true
		}
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return s[:i], "", false
	}
	return "", s, false
}

// errProxyPath: a proxied target names a path, a query or credentials.
// Clients always use /ws/id and /ws/relay, so there is nothing to choose.
var errProxyPath = errors.New("a ws:// or wss:// target is only HOST[:PORT]: clients always use the paths /ws/id and /ws/relay")

// parseProxyTarget parses the part after "ws://" or "wss://": HOST,
// HOST:PORT or [IPv6]:PORT, with at most a trailing "/".
func parseProxyTarget(s, scheme, rest string) (probe.Target, error) {
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@") {
		return probe.Target{}, &TargetError{Target: s, Err: errProxyPath}
	}
	hp, err := deploy.ParseHostPort("target", rest)
	if ie := (*deploy.InputError)(nil); errors.As(err, &ie) {
		return probe.Target{}, &TargetError{Target: s, Err: errors.New(ie.Reason)}
	} else if err != nil {
		return probe.Target{}, err
	}
	if strings.Count(rest, ":") > 1 && !strings.HasPrefix(rest, "[") {
		return probe.Target{}, &TargetError{Target: s, Err: errors.New("an IPv6 address in a URL must be in brackets: [2001:db8::1]:443")}
	}
	t := probe.Target{Name: s, Host: string(hp.Host), Proxy: scheme, ProxyPort: int(hp.Port)}
	if err := t.Validate(); err != nil {
		return probe.Target{}, &TargetError{Target: s, Err: err}
	}
	return t, nil
}

// ResolveError is a --resolve value that is not HOST:ADDR or
// HOST:PORT:ADDR.
type ResolveError struct {
	Value string
	Err   error
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("--resolve %s: %v", textsafe.Echo(e.Value), e.Err)
}
func (e *ResolveError) Unwrap() error { return e.Err }

var errResolveForm = errors.New("want HOST:ADDR or HOST:PORT:ADDR (curl's form; IPv6 in brackets), e.g. rd.example.com:203.0.113.5")

// ParseResolve parses a --resolve value: HOST:ADDR, or curl's
// HOST:PORT:ADDR, whose port is accepted and ignored (check probes several
// ports of one host; the address is used for all of them). ADDR is an IP
// address, IPv6 optionally in brackets. HOST is a DNS name (not an IP).
// The host comes back as probe.NormalizeHost makes it.
func ParseResolve(s string) (host string, addr netip.Addr, err error) {
	h, rest, ok := strings.Cut(s, ":")
	if !ok || h == "" || rest == "" {
		return "", netip.Addr{}, &ResolveError{Value: s, Err: errResolveForm}
	}
	name, err := deploy.ParseHost("--resolve", h)
	if err != nil {
		return "", netip.Addr{}, &ResolveError{Value: s, Err: err}
	}
	if _, err := netip.ParseAddr(string(name)); err == nil {
		return "", netip.Addr{}, &ResolveError{Value: s, Err: errors.New("HOST is already an address")}
	}
	a, err := parseResolveAddr(rest)
	if err != nil {
		// curl's HOST:PORT:ADDR
		port, after, ok := strings.Cut(rest, ":")
		if !ok {
			return "", netip.Addr{}, &ResolveError{Value: s, Err: errResolveForm}
		}
		if _, perr := deploy.ParsePort("--resolve", port); perr != nil {
			return "", netip.Addr{}, &ResolveError{Value: s, Err: errResolveForm}
		}
		if a, err = parseResolveAddr(after); err != nil {
			return "", netip.Addr{}, &ResolveError{Value: s, Err: errResolveForm}
		}
	}
	return probe.NormalizeHost(string(name)), a, nil
}

func parseResolveAddr(s string) (netip.Addr, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, errResolveForm
		}
		return a, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errResolveForm
	}
	return a.Unmap(), nil
}
