// Package hbbstest is a stand-in for the RustDesk OSS servers hbbs and hbbr
// that behaves like them wherever a client can observe it: key loading from
// the working directory (gen_sk), the -k rules, the port layout, the bytes of
// every reply a client can provoke without registered peers, which messages
// close a connection, the key checks, the WebSocket handshake and proxy
// headers, the loopback admin consoles and the log lines rdctl looks for.
// Facts: read from rustdesk-server's source (1.1.16 and HEAD) and measured
// against the real 1.1.16 built from that source, the measurements winning
// where the two differ; by default it is 1.1.16 (see DefaultVersion).
//
// It is test code. Only tests and its own main (./standin, a static binary
// for systemd and container tests) may import it; rdctl's shipped code must not.
//
// What it does not emulate: the peer database beyond AddPeer and a minimal
// UDP RegisterPk, forwarding punch-hole and relay requests to online peers
// over UDP (and the 31 s OFFLINE rule), the TEST_HBBS self-check, the daily
// version check, sqlite files, bandwidth limits (the console shows and sets
// them only), upstream's RegisterPk rate limit, the exact wording of the
// console listings, and DNS resolution of relay names (see Options.Relays).
package hbbstest

import (
	"io"
	"net/netip"
	"time"
)

// Kind selects which server to stand in for.
type Kind string

const (
	HBBS Kind = "hbbs"
	HBBR Kind = "hbbr"
)

// Listener names one socket of a server.
type Listener string

const (
	NAT           Listener = "nat"      // hbbs TCP P-1 (21115): NAT test, OnlineRequest, loopback console
	Rendezvous    Listener = "tcp"      // hbbs TCP P (21116)
	RendezvousUDP Listener = "udp"      // hbbs UDP P (21116)
	RendezvousWS  Listener = "ws"       // hbbs WebSocket P+2 (21118)
	Relay         Listener = "relay"    // hbbr TCP R (21117), loopback console
	RelayWS       Listener = "relay-ws" // hbbr WebSocket R+2 (21119)
)

// Default ports (hbb_common config.rs).
const (
	DefaultRendezvousPort = 21116
	DefaultRelayPort      = 21117
)

// Options configures StartHBBS and StartHBBR. The zero value is a server on
// ephemeral ports of every address, with keys in the current directory and
// the upstream default -k.
type Options struct {
	// Dir is the working directory holding id_ed25519{,.pub}; "" means ".".
	Dir string

	// Port is the base port: for hbbs P, giving TCP P-1, TCP+UDP P and
	// WebSocket P+2; for hbbr R, giving TCP R and WebSocket R+2, exactly as
	// -p does upstream. 0 means ephemeral: each listener gets its own free
	// port (hbbs's UDP socket shares the TCP P port number), for parallel
	// tests; read them from Server.Addrs.
	Port int

	// Bind is the address all listeners bind to, e.g. "127.0.0.5" or "::1"
	// (upstream -b). "" means all addresses, dual stack where available.
	Bind string

	// Key is the -k value; nil means -k was not given, which resolves to
	// upstream's default: "-" for hbbs (load or create the key pair and
	// enforce it), "" for hbbr (no check). Write Key: new("...") for a value.
	// ParseArgs resolves the KEY environment variable into this field.
	Key *string

	// Relays is hbbs's -r list (host or host:port entries). Entries are
	// checked at startup like upstream's DNS check, but without DNS: an entry
	// is dropped with "Invalid relay-servers ..." when it is malformed or its
	// host is under the reserved ".invalid" TLD (RFC 2606), which can never
	// resolve.
	Relays []string

	// Serial is hbbs's -s; a TestNatRequest with a lower serial on TCP P gets
	// a ConfigUpdate{Serial, RendezvousServers} in the reply, and a UDP
	// RegisterPeer with a lower serial an extra ConfigUpdate datagram.
	Serial int32
	// RendezvousServers is hbbs's -R list, only echoed in that ConfigUpdate.
	RendezvousServers []string

	// AlwaysUseRelay is hbbs's ALWAYS_USE_RELAY=Y; the console's "aur"
	// shows and changes it.
	AlwaysUseRelay bool

	// ConsoleRule says which client addresses get the plain-text admin
	// console on hbbs's TCP P-1 and hbbr's TCP R instead of the protocol.
	// nil means LoopbackConsole (upstream's rule). Tests that need the
	// protocol path over loopback pass NeverConsole.
	ConsoleRule func(netip.Addr) bool

	// Mute lists listeners that are bound but never answer: TCP and
	// WebSocket connections are accepted and then held silently, UDP
	// datagrams are dropped. For timeout tests.
	Mute []Listener
	// Skip lists listeners that are not bound at all (connection refused).
	Skip []Listener

	// RefuseKey makes startup fail with ErrRefusedKey when the loaded or
	// effective key equals it (rotation tests simulate a broken start).
	RefuseKey string

	// IdleTimeout is how long the server waits for a client's first frame,
	// and how long hbbr parks an accepted relay request waiting for its
	// partner. 0 means 30 s, as upstream.
	IdleTimeout time.Duration

	// LogWriter, if set, receives every log line as well (the standalone
	// binary passes os.Stdout, where the real servers log). Lines are always kept for Server.Log.
	LogWriter io.Writer
}

// LoopbackConsole is upstream's console rule: the source address, with an
// IPv4-mapped IPv6 address unmapped first, is loopback (127.0.0.0/8 or ::1).
func LoopbackConsole(a netip.Addr) bool { return a.Unmap().IsLoopback() }

// NeverConsole treats no source as a console source.
func NeverConsole(netip.Addr) bool { return false }

const defaultIdle = 30 * time.Second
