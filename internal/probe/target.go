package probe

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Name names one probe: one real exchange on one port of a target.
type Name string

// The probes, in the order they run and are reported: hbbs/hbbr's default
// ports and the smallest exchange each answers (read from rustdesk-server
// 1.1.16's source, checked against the real servers). P is the target's
// base (rendezvous) port, R its relay port.
const (
	// NATTest: TCP P-1 (21115), TestNatRequest → TestNatResponse. From a
	// loopback source hbbs serves its admin console there instead, which the
	// probe recognises and reports as a note.
	NATTest Name = "nat-test"
	// RendezvousTCP: TCP P (21116), a PunchHoleRequest for a random
	// unregistered id carrying the expected key; its reply gives key_status.
	RendezvousTCP Name = "rendezvous-tcp"
	// RendezvousUDP: UDP P (21116), unframed RegisterPeer{id: random} →
	// RegisterPeerResponse. Never RegisterPk, which would write to the
	// server's database.
	RendezvousUDP Name = "rendezvous-udp"
	// Relay: TCP R (21117), RequestRelay with a random uuid and the
	// expected key; hbbr pairs it with a request carrying the same uuid
	// and the probe sees its own bytes relayed. With RelayWS selected too
	// the partner is RelayWS's connection (RelayAcross), else a second
	// connection to R. From a loopback source hbbr serves its admin console
	// there instead.
	Relay Name = "relay"
	// RendezvousWS: WebSocket P+2 (21118), TestNatRequest → TestNatResponse
	// as one binary message each way.
	RendezvousWS Name = "rendezvous-ws"
	// RelayWS: WebSocket R+2 (21119), the relay pairing over WebSocket:
	// Relay's partner, or a pair of its own.
	RelayWS Name = "relay-ws"
)

// Names lists every probe in run order.
func Names() []Name {
	return []Name{NATTest, RendezvousTCP, RendezvousUDP, Relay, RendezvousWS, RelayWS}
}

// Proto is how the probe reaches its port: "tcp", "udp" or "ws".
func (n Name) Proto() string {
	if p := proxyProto(n); p != "" {
		return p
	}
	switch n {
	case RendezvousUDP:
		return "udp"
	case RendezvousWS, RelayWS:
		return "ws"
	}
	return "tcp"
}

func (n Name) valid() bool {
	for _, m := range allNames() {
		if n == m {
			return true
		}
	}
	return false
}

// ParseNames parses a comma-separated list of probe names (spaces around
// names are ignored, duplicates collapse) and returns them in run order. An
// empty list is an error.
func ParseNames(list string) ([]Name, error) {
	want := map[Name]bool{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !Name(f).valid() {
			return nil, fmt.Errorf("unknown probe %q (probes: %s)", f, joinNames(allNames()))
		}
		want[Name(f)] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no probe named (probes: %s)", joinNames(allNames()))
	}
	var out []Name
	for _, n := range allNames() {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

func joinNames(ns []Name) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// Default ports (hbb_common config.rs).
const (
	DefaultPort      = 21116
	DefaultRelayPort = 21117
)

// Via values: how a target is reached.
const (
	ViaDirect  = "direct"
	ViaTailnet = "tailnet"
)

// Target is one server to check.
type Target struct {
	// Name is the target as the user gave it; results report it unchanged.
	Name string
	// Host is a DNS name or an IP literal (IPv6 without brackets).
	Host string
	// Port is hbbs's base port P (TCP P-1, TCP+UDP P, WebSocket P+2);
	// 0 means 21116.
	Port int
	// RelayHost is hbbr's host when it is not Host; "" means Host.
	RelayHost string
	// RelayPort is hbbr's port R (TCP R, WebSocket R+2); 0 means 21117
	// when Port is 0, else Port+1 (the -p P / -p P+1 pairing).
	RelayPort int
	// Dial reaches the target: nil means DirectDial, with Host (and
	// RelayHost) resolved once per check so every probe hits the same
	// address. A target with its own Dial (a tailnet) is dialled by name;
	// resolving is then the dialler's job. Its connections may reach the
	// server from loopback (a userspace-mode tailscaled hands them over from
	// 127.0.0.1), so the probes check for the admin consoles too.
	Dial DialFunc
	// Via is reported with the results; "" means ViaDirect.
	Via string
	// Proxy is "wss" or "ws" for a server behind a WebSocket reverse proxy
	// (a ws[s]://HOST[:PORT] target, probed as in proxied.go: through the
	// proxy, plus the direct ports at Host and Port); "" for a plain one.
	Proxy string
	// ProxyPort is the proxy's port; 0 means 443 for wss, 80 for ws.
	ProxyPort int
	// Relays are hbbr's endpoints when hbbs hands out several (-r a,b,
	// given to clients in turn with no health check): each gets its own
	// relay probes, so one dead relay fails its own probes only. Empty
	// means the one relay RelayHost:RelayPort; when set, RelayHost and
	// RelayPort are not used.
	Relays []Endpoint
}

// Endpoint is one relay: a host (DNS name or IP literal without brackets)
// and hbbr's port R (TCP R, WebSocket R+2); port 0 means 21117.
type Endpoint struct {
	Host string
	Port int
}

func (e Endpoint) port() int {
	if e.Port == 0 {
		return DefaultRelayPort
	}
	return e.Port
}

// String is host:R.
func (e Endpoint) String() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.port())) }

// MaxRelays bounds a target's relay list.
const MaxRelays = 8

// MaxAddresses bounds the addresses probed for one name: a name with more
// A and AAAA records than that has its first MaxAddresses probed (in the
// resolver's order, RFC 6724's preference).
const MaxAddresses = 8

// relays is t's relay list: Relays, or the one relay RelayHost:RelayPort.
func (t Target) relays() []Endpoint {
	if len(t.Relays) > 0 {
		return t.Relays
	}
	return []Endpoint{{Host: t.relayHost(), Port: t.relayPort()}}
}

func (t Target) basePort() int {
	if t.Port == 0 {
		return DefaultPort
	}
	return t.Port
}

func (t Target) relayPort() int {
	switch {
	case t.RelayPort != 0:
		return t.RelayPort
	case t.Port == 0:
		return DefaultRelayPort
	}
	return t.Port + 1
}

func (t Target) relayHost() string {
	if t.RelayHost == "" {
		return t.Host
	}
	return t.RelayHost
}

func (t Target) via() string {
	if t.Via == "" {
		return ViaDirect
	}
	return t.Via
}

// PortOf returns the port probe n uses on t.
func (t Target) PortOf(n Name) int {
	switch n {
	case NATTest:
		return t.basePort() - 1
	case RendezvousTCP, RendezvousUDP:
		return t.basePort()
	case RendezvousWS:
		return t.basePort() + 2
	case Relay:
		return t.relayPort()
	case RelayWS:
		return t.relayPort() + 2
	}
	return 0
}

// Validate checks that t names a host and that every port its probes use
// is a valid port: P-1 ≥ 1, P+2 ≤ 65535, R+2 ≤ 65535.
func (t Target) Validate() error {
	if t.Host == "" {
		return errors.New("no host")
	}
	if strings.HasPrefix(t.Host, "[") {
		return errors.New("host must not be bracketed")
	}
	if p := t.basePort(); p < 2 || p > 65533 {
		return fmt.Errorf("base port %d: hbbs needs ports P-1 to P+2, so P must be 2–65533", p)
	}
	if len(t.Relays) > MaxRelays {
		return fmt.Errorf("%d relays, more than %d", len(t.Relays), MaxRelays)
	}
	seen := map[Endpoint]bool{}
	for _, e := range t.relays() {
		if e.Host == "" || strings.HasPrefix(e.Host, "[") {
			return fmt.Errorf("relay %q: no host, or a bracketed one", e.Host)
		}
		if r := e.port(); r < 1 || r > 65533 {
			return fmt.Errorf("relay port %d: hbbr needs ports R and R+2, so R must be 1–65533", r)
		}
		e.Port = e.port()
		if seen[e] {
			return fmt.Errorf("relay %s named twice", e)
		}
		seen[e] = true
	}
	return t.validateProxy()
}

// String is the target's name, or host:P (scheme://host[:port] for a
// proxied one) when it has none.
func (t Target) String() string {
	if t.Name != "" {
		return t.Name
	}
	if t.Proxied() {
		return t.proxyURL()
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(t.basePort()))
}

// Defaults of Options.
const (
	DefaultTimeout     = 3 * time.Second
	DefaultConcurrency = 64
)

// Options configures Check.
type Options struct {
	// Key is the public key the server should enforce (standard base64, as
	// in id_ed25519.pub). "" means none is known: the punch-hole probe then
	// presents an empty key, which only a server enforcing no key accepts
	// (key_status unenforced; otherwise unknown), and hbbr's key check, if
	// any, rejects the relay probes.
	Key string
	// Strict adds a punch-hole with a wrong key, to tell a server enforcing
	// Key (match) from one enforcing nothing (unenforced). It costs one
	// logged authentication failure on the server.
	Strict bool
	// Rand is where Strict's wrong keys come from, a fresh one for every
	// target; nil means crypto/rand. It must be safe for concurrent use.
	Rand io.Reader
	// Timeout bounds each probe, from dial to verdict (and a target's name
	// resolution); 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency bounds the probes in flight across all targets; 0 means
	// DefaultConcurrency. The relay probes' pairing across hbbr's two ports
	// counts as two (it is split into its two probes at 1). A target's
	// probes run independently, so a black-holed target holds at most its
	// probes' slots, each for at most Timeout (the relay pair, two: see
	// RelayAcross).
	Concurrency int
	// Probes selects the probes to run, in any order; nil means all.
	Probes []Name
	// Deadline bounds the whole check; probes not finished by then fail
	// with "stopped at the overall deadline". 0 means no bound beyond ctx.
	Deadline time.Duration
	// WSOnly skips the direct ports of proxied targets (see proxied.go).
	WSOnly bool
	// RootCAs verifies wss targets' certificates; nil means the system's.
	RootCAs *x509.CertPool
	// Resolve pins host names (lower case, no trailing dot) to an
	// address, as curl's --resolve: the name is still sent in SNI and
	// Host, and the system resolver is not asked.
	Resolve map[string]netip.Addr
	// Resolver looks up the names of direct targets and relays; nil means
	// net.DefaultResolver (the system's). Tests hand in one that asks a
	// DNS server on loopback.
	Resolver Resolver
	// FirstAddress probes only the first address a target's name resolves
	// to. By default every A and AAAA record is probed (at most
	// MaxAddresses), each address giving its own TargetResult: a client
	// picks any of them, so one that does not reach the server breaks the
	// clients that pick it.
	FirstAddress bool
	// SharedUDP sends the rendezvous-udp probes from the process's one
	// long-lived UDP socket per address family instead of from sockets
	// made for this check and closed after it: for a long-running caller
	// (the exporter) whose checks are one target each, making and closing
	// the socket was a sizeable share of every check.
	SharedUDP bool
}

// Resolver looks up a name's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func (o Options) normalize() (Options, error) {
	if o.Timeout < 0 || o.Concurrency < 0 || o.Deadline < 0 {
		return o, errors.New("probe: negative timeout, concurrency or deadline")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Probes == nil {
		o.Probes = Names()
	} else {
		var list []string
		for _, n := range o.Probes {
			list = append(list, string(n))
		}
		ns, err := ParseNames(strings.Join(list, ","))
		if err != nil {
			return o, fmt.Errorf("probe: %w", err)
		}
		o.Probes = ns
	}
	return o, nil
}
