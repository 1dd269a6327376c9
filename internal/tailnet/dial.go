package tailnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// DialTCP opens a TCP connection to host:port through tailscaled, which
// makes the connection itself (LocalAPI "dial"). This works with tailscaled
// in TUN or userspace mode and needs no routes or SOCKS proxy on this host.
//
// host is a peer name or IP, resolved here against the network map by the
// rules of [Client.FindPeer] (a name dials the peer's first IPv4 address,
// else its first address), or an IP inside a subnet route a peer serves.
// Anything else fails with [ErrPeerNotFound] before any packet is sent:
// names are never looked up in DNS, and an address tailscaled does not route
// is never dialed, because tailscaled would answer "dial it yourself" and the
// connection would silently leave the tailnet from this process.
//
// ctx bounds only the dial, not the connection's life. A refused port fails
// fast with [ErrRefused]; an unreachable peer waits for ctx's deadline
// ([ErrTimeout]) or tailscaled's own dial timeout, and is reported as
// [ErrPeerOffline] when the coordination server says the peer is offline.
func (c *Client) DialTCP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return c.dial(ctx, "tcp", host, port)
}

// DialUDP opens a UDP "connection" to host:port through tailscaled, like
// [Client.DialTCP]. tailscaled relays datagrams over a stream, so datagram
// boundaries are kept only for request/response exchanges: write one
// datagram, read the answer, then write the next. A closed UDP port does not
// fail the dial: the read times out, exactly like a dropped packet.
func (c *Client) DialUDP(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return c.dial(ctx, "udp", host, port)
}

func (c *Client) dial(ctx context.Context, network, host string, port uint16) (net.Conn, error) {
	op, target := "dial "+network, net.JoinHostPort(host, strconv.Itoa(int(port)))
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Ready(); err != nil {
		return nil, err
	}
	addr, peer, err := st.routeFor(host)
	if err != nil {
		// Say which dial failed to resolve.
		if e, ok := errors.AsType[*Error](err); ok {
			e.Op, e.Target = op, target
		}
		return nil, err
	}
	// There is a window between the status above and the dial in which the
	// peer could leave the netmap; tailscaled would then hand the dial back
	// ("Dial-Self"). Accepted: the window is a LocalAPI round trip.
	conn, err := c.lc.UserDial(ctx, network, addr.String(), port)
	if err != nil {
		return nil, offlineIfSilent(classify(op, target, c.socket, err), peer)
	}
	return conn, nil
}

// offlineIfSilent turns a timeout or generic failure into [ErrPeerOffline]
// when control reports the peer offline: that is the likelier cause, and
// its hint is the useful one.
func offlineIfSilent(err error, p *Peer) error {
	e, ok := errors.AsType[*Error](err)
	if !ok || p == nil || p.Online || p.Self || (e.Kind != ErrTimeout && e.Kind != ErrDialFailed) {
		return err
	}
	e.Kind, e.Hint = ErrPeerOffline, hintOffline
	e.Detail = "no answer, and the coordination server reports " + p.Name() + " offline"
	if !p.LastSeen.IsZero() {
		e.Detail += " (last seen " + p.LastSeen.UTC().Format(time.RFC3339) + ")"
	}
	return e
}

// routeFor returns the address to dial for host, and the peer it belongs
// to: a peer's address (by name or IP) or an IP inside a peer's subnet route
// (then the peer is the router). It fails with ErrPeerNotFound for anything
// tailscaled would not carry.
func (s *Status) routeFor(host string) (netip.Addr, *Peer, error) {
	p, err := s.FindPeer(host)
	if err == nil {
		if a, ipErr := netip.ParseAddr(hostOf(host)); ipErr == nil {
			return a.Unmap(), p, nil
		}
		return p.Addr(), p, nil
	}
	a, ipErr := netip.ParseAddr(hostOf(host))
	if ipErr != nil {
		return netip.Addr{}, nil, err
	}
	a = a.Unmap()
	for i := range s.Peers {
		for _, r := range s.Peers[i].Routes {
			if r.Bits() > 0 && r.Contains(a) {
				return a, &s.Peers[i], nil
			}
		}
	}
	if e, ok := errors.AsType[*Error](err); ok {
		e.Detail = "no peer has or routes this address"
	}
	return netip.Addr{}, nil, err
}

// Dial dials addr (host:port; network tcp or udp) through tailscaled, the
// shape of a probe's dial function.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		return c.DialTCP(ctx, host, uint16(port))
	case "udp", "udp4", "udp6":
		return c.DialUDP(ctx, host, uint16(port))
	}
	return nil, errors.New("tailnet: unsupported network " + network)
}
