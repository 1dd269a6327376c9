package hbbstest

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// parked is an accepted relay request waiting for its partner.
type parked struct {
	c      msgConn
	paired chan struct{} // closed when a partner took it
	ended  chan struct{} // closed when the joined relay has ended
}

// relayPair is one joined relay, for "usage": one line per pair, named by
// the address of the connection that completed it as the socket reports it
// (on a dual-stack listener an IPv4 client is "[::ffff:a.b.c.d]:port", as
// measured on 1.1.16).
type relayPair struct {
	remote netip.AddrPort
	start  time.Time
	bytes  atomic.Int64 // received from either side
}

// serveRelayTCP handles hbbr TCP R: the console for console sources, an
// immediate close for blocklisted IPs, the relay protocol otherwise.
func (s *Server) serveRelayTCP(nc net.Conn) {
	remote := unmapped(addrPortOf(nc.RemoteAddr()))
	if s.isConsole(remote.Addr()) {
		s.serveConsole(nc, s.hbbrCommand)
		return
	}
	if s.blocked(remote.Addr()) {
		return
	}
	s.serveRelay(newTCPConn(nc))
}

// serveRelay is hbbr's per-connection logic (TCP R and WebSocket R+2): the
// first message must be a RequestRelay. A wrong licence key (when a key is
// set) is logged and the connection dropped without a reply; an empty uuid is
// dropped too; otherwise the connection is parked until a second one with
// the same uuid arrives (then both are joined and bytes copied raw) or the
// idle timeout passes.
func (s *Server) serveRelay(c msgConn) {
	b, err := c.ReadMsg(s.idle)
	if err != nil {
		return
	}
	m, err := rendezvous.Unmarshal(b)
	if err != nil {
		return
	}
	rr, ok := m.(*rendezvous.RequestRelay)
	if !ok {
		return
	}
	if s.key.Key != "" && rr.LicenceKey != s.key.Key {
		// WARN, as upstream logs it (seen in real hbbr 1.1.16 logs).
		s.logf("WARN", "Relay authentication failed from %s - invalid key", c.RawRemote())
		return
	}
	if rr.UUID == "" {
		return
	}
	s.logInfo("New relay request %s from %s", rr.UUID, c.RawRemote())

	s.mu.Lock()
	partner := s.waiting[rr.UUID]
	var me *parked
	if partner != nil {
		delete(s.waiting, rr.UUID)
	} else {
		me = &parked{c: c, paired: make(chan struct{}), ended: make(chan struct{})}
		s.waiting[rr.UUID] = me
	}
	s.mu.Unlock()

	if partner == nil {
		timer := time.NewTimer(s.idle)
		defer timer.Stop()
		select {
		case <-me.paired:
		case <-timer.C:
		case <-s.done:
		}
		s.mu.Lock()
		still := s.waiting[rr.UUID] == me
		if still {
			delete(s.waiting, rr.UUID)
		}
		s.mu.Unlock()
		if still {
			return // nobody came: the caller closes the connection
		}
		// Paired: the partner's goroutine copies both ways and closes
		// both; wait for it so this connection stays open meanwhile.
		<-me.paired
		<-me.ended
		return
	}
	s.logInfo("Relayrequest %s got paired", rr.UUID) // upstream's line
	// The stand-in's own line naming both sides; rdctl's probe tests count it.
	s.logInfo("Relay of %s: %s <-> %s", rr.UUID, partner.c.RawRemote(), c.RawRemote())
	s.join(partner, c)
	s.logInfo("Relay of %s closed", c.RawRemote())
}

// join relays between a parked connection and the newcomer until either
// side ends or nothing has arrived from either side for the idle timeout,
// then closes both. As upstream: a pair of two TCP connections switches to
// raw bytes; a pair with a WebSocket side stays message by message, so a
// TCP side sends and receives frames (each relayed frame's payload is one
// binary message on the WebSocket side, and back).
func (s *Server) join(p *parked, c msgConn) {
	defer close(p.ended)
	close(p.paired)
	pair := &relayPair{remote: c.RawRemote(), start: time.Now()}
	s.mu.Lock()
	s.sessions[pair] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, pair)
		s.mu.Unlock()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			p.c.Close()
			c.Close()
		})
	}
	var last atomic.Int64 // unix nanoseconds of the last receive on either side
	last.Store(time.Now().UnixNano())
	var watchdog *time.Timer
	watchdog = time.AfterFunc(s.idle, func() {
		if idle := time.Since(time.Unix(0, last.Load())); idle >= s.idle {
			stop()
		} else {
			watchdog.Reset(s.idle - idle)
		}
	})
	defer watchdog.Stop()

	at, aTCP := p.c.(*tcpConn)
	bt, bTCP := c.(*tcpConn)
	var wg sync.WaitGroup
	wg.Add(2)
	if aTCP && bTCP {
		s.logInfo("Both are raw")
		ar, aw := at.Raw()
		br, bw := bt.Raw()
		go func() {
			defer wg.Done()
			io.Copy(bw, countingReader{ar, &pair.bytes, &last})
			stop()
		}()
		go func() {
			defer wg.Done()
			io.Copy(aw, countingReader{br, &pair.bytes, &last})
			stop()
		}()
	} else {
		go func() {
			defer wg.Done()
			relayMessages(c, p.c, &pair.bytes, &last)
			stop()
		}()
		go func() {
			defer wg.Done()
			relayMessages(p.c, c, &pair.bytes, &last)
			stop()
		}()
	}
	wg.Wait()
}

// relayMessages copies messages from one side of a pair to the other until
// either fails. An empty message (what upstream makes of a WebSocket
// message that is not binary) is counted as received but not sent on.
func relayMessages(to, from msgConn, n, last *atomic.Int64) {
	for {
		b, err := from.ReadMsg(0)
		if err != nil {
			return
		}
		last.Store(time.Now().UnixNano())
		n.Add(int64(len(b)))
		if len(b) == 0 {
			continue
		}
		if err := to.WriteMsg(b); err != nil {
			return
		}
	}
}

// countingReader counts what it reads into n and notes the time of each
// read that returned bytes in last.
type countingReader struct {
	r       io.Reader
	n, last *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n.Add(int64(n))
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}
