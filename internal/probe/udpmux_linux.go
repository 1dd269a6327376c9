package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// udpMux sends every rendezvous-udp probe of a check from one UDP socket
// per address family, instead of one socket per probe: a socket costs
// about ten system calls (socket, options, connect, poller registration,
// names, close) around a probe's one send and one receive.
//
// Replies are matched to probes by their source address: hbbs answers a
// RegisterPeer from the port it was sent to, and its RegisterPeerResponse
// carries no id to match by. A datagram from an address no probe waits on,
// or one that is not a RegisterPeerResponse, is dropped; a reply completes
// the longest-waiting probe of its address. At most one waiter per running
// probe is kept, and each reply is read into one fixed buffer.
//
// An unconnected socket learns of an ICMP error (port unreachable) only
// with IP_RECVERR: the error then comes back from the next receive or send
// on the socket, whoever's it was, and the error queue says which
// destination it was for; the probe waiting on that destination fails with
// it at once ("connection refused"), as a probe on its own connected
// socket does.
type udpMux struct {
	mu      sync.Mutex
	socks   map[bool]*net.UDPConn // by "is IPv6"
	failed  map[bool]bool         // a family whose socket could not be made
	waiters map[netip.AddrPort][]*udpWaiter
	closed  bool
	drainMu sync.Mutex
}

type udpWaiter struct{ done chan error }

func newUDPMux() *udpMux {
	return &udpMux{socks: map[bool]*net.UDPConn{}, failed: map[bool]bool{}, waiters: map[netip.AddrPort][]*udpWaiter{}}
}

// errNoMux: the mux cannot carry this probe; it runs on a socket of its own.
var errNoMux = errors.New("no shared UDP socket")

// close closes the sockets; their readers end.
func (m *udpMux) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, c := range m.socks {
		c.Close()
	}
}

// sock returns the family's socket, made on first use.
func (m *udpMux) sock(v6 bool) (*net.UDPConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.socks[v6]; c != nil {
		return c, nil
	}
	if m.closed || m.failed[v6] {
		return nil, errNoMux
	}
	network, level, opt := "udp4", syscall.IPPROTO_IP, syscall.IP_RECVERR
	if v6 {
		network, level, opt = "udp6", syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR
	}
	c, err := net.ListenUDP(network, nil)
	if err == nil {
		var rc syscall.RawConn
		if rc, err = c.SyscallConn(); err == nil {
			cerr := rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), level, opt, 1) })
			err = errors.Join(err, cerr)
		}
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		m.failed[v6] = true
		return nil, errNoMux
	}
	m.socks[v6] = c
	go m.read(c)
	return c, nil
}

// register is RegisterUDP over the shared socket: a RegisterPeer for a
// random id to addr (an IP literal and port), repeated every udpResend,
// until a RegisterPeerResponse comes from addr or ctx ends. errNoMux means
// the caller must run the probe itself.
func (m *udpMux) register(ctx context.Context, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return errNoMux
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	c, err := m.sock(ap.Addr().Is6())
	if err != nil {
		return err
	}
	w := &udpWaiter{done: make(chan error, 1)}
	m.mu.Lock()
	m.waiters[ap] = append(m.waiters[ap], w)
	m.mu.Unlock()
	defer m.forget(ap, w)

	msg := rendezvous.Marshal(&rendezvous.RegisterPeer{ID: RandomID()})
	resend := time.NewTimer(udpResend)
	defer resend.Stop()
	for {
		if err := m.send(c, msg, ap); err != nil {
			return classify(err)
		}
		resend.Reset(udpResend)
		select {
		case err := <-w.done:
			return err
		case <-ctx.Done():
			return ErrNoAnswer
		case <-resend.C:
		}
	}
}

// send sends msg to ap. An ICMP error meant for another probe can come back
// from the send: it is handed to its probe and the send tried again.
func (m *udpMux) send(c *net.UDPConn, msg []byte, ap netip.AddrPort) error {
	var err error
	for range 4 {
		if _, err = c.WriteToUDPAddrPort(msg, ap); err == nil || !icmpError(err) {
			return err
		}
		m.drain(c)
	}
	return err
}

// forget removes w, if a reply has not already taken it.
func (m *udpMux) forget(ap netip.AddrPort, w *udpWaiter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ws := m.waiters[ap]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(m.waiters, ap)
	} else {
		m.waiters[ap] = ws
	}
}

// deliver completes the longest-waiting probe of ap with err.
func (m *udpMux) deliver(ap netip.AddrPort, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ws := m.waiters[ap]
	if len(ws) == 0 {
		return
	}
	ws[0].done <- err // buffered, and each waiter is completed once
	if len(ws) == 1 {
		delete(m.waiters, ap)
	} else {
		m.waiters[ap] = ws[1:]
	}
}

// read receives the replies of every probe on c until c is closed.
func (m *udpMux) read(c *net.UDPConn) {
	var buf [2048]byte
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			if icmpError(err) {
				m.drain(c)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if msg, err := rendezvous.Unmarshal(buf[:n]); err == nil {
			if _, ok := msg.(*rendezvous.RegisterPeerResponse); ok {
				m.deliver(from, nil)
			}
		}
	}
}

// icmpError reports an error the kernel reports for an ICMP message.
func icmpError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EPROTO, syscall.EMSGSIZE:
		return true
	}
	return false
}

// drain reads c's error queue and fails each probe an ICMP error was for.
func (m *udpMux) drain(c *net.UDPConn) {
	m.drainMu.Lock()
	defer m.drainMu.Unlock()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var data [256]byte
	var oob [512]byte
	rc.Control(func(fd uintptr) {
		for range 1024 {
			_, oobn, _, from, err := syscall.Recvmsg(int(fd), data[:], oob[:], syscall.MSG_ERRQUEUE|syscall.MSG_DONTWAIT)
			if err != nil {
				return
			}
			var ap netip.AddrPort
			switch sa := from.(type) {
			case *syscall.SockaddrInet4:
				ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
			case *syscall.SockaddrInet6:
				ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
			default:
				continue
			}
			errno := syscall.ECONNREFUSED
			if cms, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					recverr := (cm.Header.Level == syscall.IPPROTO_IP && cm.Header.Type == syscall.IP_RECVERR) ||
						(cm.Header.Level == syscall.IPPROTO_IPV6 && cm.Header.Type == syscall.IPV6_RECVERR)
					if recverr && len(cm.Data) >= 4 {
						if e := syscall.Errno(binary.NativeEndian.Uint32(cm.Data)); e != 0 {
							errno = e
						}
					}
				}
			}
			m.deliver(ap, &net.OpError{Op: "read", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: errno})
		}
	})
}
