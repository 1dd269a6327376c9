package doctor

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Port is one port the server listens on.
type Port struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Port  uint16 `json:"port"`
	// Owner is which server opens it and what for.
	Owner string `json:"owner"`
}

// ServerPorts are the sockets hbbs and hbbr listen on with default ports
// (upstream's documented defaults): tcp 21115-21119 and udp 21116. hbbr
// has no UDP port.
var ServerPorts = []Port{
	{"tcp", 21115, "hbbs NAT test"},
	{"tcp", 21116, "hbbs rendezvous"},
	{"udp", 21116, "hbbs registration"},
	{"tcp", 21117, "hbbr relay"},
	{"tcp", 21118, "hbbs WebSocket"},
	{"tcp", 21119, "hbbr WebSocket"},
}

// Listener is a listening TCP socket or a bound, unconnected UDP socket,
// as /proc/net/{tcp,tcp6,udp,udp6} list them.
type Listener struct {
	Proto string     `json:"proto"` // "tcp" or "udp"
	Addr  netip.Addr `json:"addr"`
	Port  uint16     `json:"port"`
	UID   int        `json:"uid"`
	Inode uint64     `json:"inode"`
}

// AddrPort is the socket's address and port.
func (l Listener) AddrPort() netip.AddrPort { return netip.AddrPortFrom(l.Addr, l.Port) }

// Socket states in /proc/net (include/net/tcp_states.h).
const (
	tcpListen = "0A"
	udpUnconn = "07" // TCP_CLOSE: how a bound, unconnected UDP socket shows
)

// ParseProcNet parses the text of /proc/net/<file> ("tcp", "tcp6", "udp",
// "udp6") and returns its listening (TCP) or bound unconnected (UDP)
// sockets. Addresses are printed by the kernel as 32-bit words in host
// byte order, so they are decoded with the machine's native order.
func ParseProcNet(data []byte, file string) ([]Listener, error) {
	proto := strings.TrimSuffix(file, "6")
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("unknown /proc/net file %q", file)
	}
	want := tcpListen
	if proto == "udp" {
		want = udpUnconn
	}
	var out []Listener
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue // header, blank
		}
		if f[3] != want {
			continue
		}
		addr, port, err := parseHexAddr(f[1])
		if err != nil {
			return out, fmt.Errorf("/proc/net/%s line %d: %w", file, i+1, err)
		}
		if proto == "udp" {
			// Connected UDP sockets also show 07; a listener has no peer.
			if raddr, rport, err := parseHexAddr(f[2]); err != nil || rport != 0 || !raddr.IsUnspecified() {
				continue
			}
		}
		uid, _ := strconv.Atoi(f[7])
		inode, _ := strconv.ParseUint(f[9], 10, 64)
		out = append(out, Listener{Proto: proto, Addr: addr, Port: port, UID: uid, Inode: inode})
	}
	return out, nil
}

// parseHexAddr decodes "0100007F:5274" or the 32-hex-digit IPv6 form.
func parseHexAddr(s string) (netip.Addr, uint16, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad port in %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q", s)
	}
	// Each 32-bit word was printed as a number in host order: turn it back
	// into the bytes as they lie in memory, which are network order.
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr.Unmap(), uint16(port), nil
}

// ReadListeners reads the four /proc/net files under procDir ("/proc").
// Files that do not exist (no IPv6) are skipped.
func ReadListeners(procDir string) ([]Listener, error) {
	var out []Listener
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		data, err := os.ReadFile(filepath.Join(procDir, "net", f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, err
		}
		ls, err := ParseProcNet(data, f)
		out = append(out, ls...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// PortState says whether one server port is open and on which addresses.
type PortState struct {
	Port
	Listening bool     `json:"listening"`
	Addresses []string `json:"addresses"`
}

// MatchPorts reports, for each of ports, the listeners bound to it.
func MatchPorts(ports []Port, ls []Listener) []PortState {
	out := make([]PortState, 0, len(ports))
	for _, p := range ports {
		st := PortState{Port: p, Addresses: []string{}}
		for _, l := range ls {
			if l.Proto == p.Proto && l.Port == p.Port {
				st.Listening = true
				st.Addresses = append(st.Addresses, l.AddrPort().String())
			}
		}
		out = append(out, st)
	}
	return out
}
