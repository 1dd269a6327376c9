package hbbstest

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// serveRendezvousTCP handles TCP P. Port P has no console: loopback clients
// get the protocol like everyone else.
func (s *Server) serveRendezvousTCP(c net.Conn) { s.serveRendezvous(newTCPConn(c)) }

// serveRendezvous is hbbs's TCP P / WebSocket P+2 loop. The server never
// speaks first. Each connection has one "sink" (its way back to the client):
// a TestNatRequest is answered on it and ends the connection; the first
// PunchHoleRequest or RequestRelay takes it, so a connection answers at most
// one punch request; a RelayResponse is sent to whichever stored sink its
// socket_addr names. Frames that do not decode are ignored.
func (s *Server) serveRendezvous(c msgConn) {
	remote := c.Remote()
	haveSink := true
	defer s.dropSink(remote, c)
	for {
		b, err := c.ReadMsg(s.idle)
		if err != nil {
			return
		}
		m, err := rendezvous.Unmarshal(b)
		if err != nil {
			continue
		}
		switch m := m.(type) {
		case *rendezvous.TestNatRequest:
			if haveSink {
				resp := &rendezvous.TestNatResponse{Port: int32(remote.Port())}
				if s.opts.Serial > m.Serial {
					resp.CU = &rendezvous.ConfigUpdate{Serial: s.opts.Serial, RendezvousServers: s.opts.RendezvousServers}
				}
				c.WriteMsg(rendezvous.Marshal(resp))
			}
			return
		case *rendezvous.PunchHoleRequest:
			if !haveSink {
				continue
			}
			haveSink = false
			if resp := s.punchReply(m); resp != nil {
				c.WriteMsg(rendezvous.Marshal(resp))
			} else {
				s.storeSink(remote, c) // would be answered when the peer replies
			}
		case *rendezvous.RequestRelay:
			if !haveSink {
				continue
			}
			haveSink = false
			// An unknown or offline target means nothing is forwarded; the
			// sink stays stored under the client's address.
			s.storeSink(remote, c)
		case *rendezvous.RelayResponse:
			s.forwardRelayResponse(m)
		}
	}
}

// punchReply decides the answer to a punch-hole request, or nil when hbbs
// would forward the request to an online peer and answer later (the
// stand-in never does).
func (s *Server) punchReply(m *rendezvous.PunchHoleRequest) *rendezvous.PunchHoleResponse {
	if s.key.Key != "" && m.LicenceKey != s.key.Key {
		return &rendezvous.PunchHoleResponse{Failure: rendezvous.LicenseMismatch}
	}
	s.mu.Lock()
	p := s.peers[m.ID]
	online := p != nil && online(p)
	s.mu.Unlock()
	switch {
	case p == nil:
		return &rendezvous.PunchHoleResponse{} // ID_NOT_EXIST is the zero value
	case !online:
		return &rendezvous.PunchHoleResponse{Failure: rendezvous.Offline}
	}
	return nil
}

func online(p *peer) bool {
	return !p.regTime.IsZero() && time.Since(p.regTime) < registerTimeout
}

func (s *Server) storeSink(remote netip.AddrPort, c msgConn) {
	s.mu.Lock()
	s.sinks[remote] = c
	s.mu.Unlock()
}

func (s *Server) dropSink(remote netip.AddrPort, c msgConn) {
	s.mu.Lock()
	if s.sinks[remote] == c {
		delete(s.sinks, remote)
	}
	s.mu.Unlock()
}

// forwardRelayResponse sends rr, with pk set to the signed IdPk of the peer
// it names, to the stored sink of the address in rr.socket_addr (reference
// §4c, option 2). The sink is consumed.
func (s *Server) forwardRelayResponse(rr *rendezvous.RelayResponse) {
	addr, err := rendezvous.DecodeAddr(rr.SocketAddr)
	if err != nil {
		return
	}
	addr = unmapped(addr)
	s.mu.Lock()
	dst := s.sinks[addr]
	delete(s.sinks, addr)
	var id string
	if u, ok := rr.Union.(rendezvous.RelayResponseID); ok {
		id = string(u)
	}
	var pk []byte
	p := s.peers[id]
	if rr.Version != "" && s.key.Secret != nil && p != nil {
		pk = rendezvous.SignIDPK(s.key.Secret, id, p.pk)
	}
	relay := rr.RelayServer
	if relay == "" {
		relay = s.nextRelayLocked()
	}
	s.mu.Unlock()
	if dst == nil {
		return
	}
	out := *rr
	out.SocketAddr = nil
	out.RelayServer = relay
	out.Union = rendezvous.RelayResponsePK(pk)
	dst.WriteMsg(rendezvous.Marshal(&out))
}

// nextRelayLocked rotates through the relay list; "" when there is none.
func (s *Server) nextRelayLocked() string {
	if len(s.relays) == 0 {
		return ""
	}
	s.relayIdx = (s.relayIdx + 1) % len(s.relays)
	return s.relays[s.relayIdx]
}

// serveNAT handles TCP P-1: the console for console sources; otherwise one
// frame, TestNatRequest → TestNatResponse{port} or OnlineRequest →
// OnlineResponse, then close.
func (s *Server) serveNAT(nc net.Conn) {
	remote := unmapped(addrPortOf(nc.RemoteAddr()))
	if s.isConsole(remote.Addr()) {
		s.serveConsole(nc, s.hbbsCommand)
		return
	}
	c := newTCPConn(nc)
	b, err := c.ReadMsg(s.idle)
	if err != nil {
		return
	}
	m, err := rendezvous.Unmarshal(b)
	if err != nil {
		return
	}
	switch m := m.(type) {
	case *rendezvous.TestNatRequest:
		c.WriteMsg(rendezvous.Marshal(&rendezvous.TestNatResponse{Port: int32(remote.Port())}))
	case *rendezvous.OnlineRequest:
		c.WriteMsg(rendezvous.Marshal(s.onlineStates(m.Peers)))
	}
}

func (s *Server) onlineStates(peers []string) *rendezvous.OnlineResponse {
	states := make([]byte, (len(peers)+7)/8)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, id := range peers {
		if p := s.peers[id]; p != nil && online(p) {
			states[i/8] |= 1 << (7 - uint(i%8))
		}
	}
	return &rendezvous.OnlineResponse{States: states}
}

// serveUDP handles UDP P: one unframed RendezvousMessage per datagram.
// RegisterPeer is answered with RegisterPeerResponse; for an unknown id
// nothing is stored and request_pk is true. Everything else (including
// PunchHoleRequest over UDP) is ignored.
func (s *Server) serveUDP(pc *net.UDPConn) {
	defer s.wg.Done()
	mute := s.muted(RendezvousUDP)
	// Real datagrams are tiny; 8 KiB keeps a thousand stand-ins cheap.
	buf := make([]byte, 8<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if mute {
			continue
		}
		m, err := rendezvous.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		if rp, ok := m.(*rendezvous.RegisterPeer); ok {
			pc.WriteToUDPAddrPort(rendezvous.Marshal(s.registerPeer(rp, unmapped(from))), from)
		}
	}
}

func (s *Server) registerPeer(m *rendezvous.RegisterPeer, from netip.AddrPort) *rendezvous.RegisterPeerResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[m.ID]
	if p == nil {
		return &rendezvous.RegisterPeerResponse{RequestPK: true}
	}
	ipChanged := p.addr.IsValid() && p.addr.Addr() != from.Addr()
	p.addr = from
	p.regTime = time.Now()
	return &rendezvous.RegisterPeerResponse{RequestPK: len(p.pk) == 0 || ipChanged}
}

// checkRelays is the stand-in for hbbs's startup DNS check of -r entries
// (it must not send DNS queries). It drops malformed entries and names
// under ".invalid", logging "Invalid relay-servers ..." as hbbs does.
func (s *Server) checkRelays(in []string) []string {
	var out []string
	for _, r := range in {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if validRelay(r) {
			out = append(out, r)
		} else {
			s.logf("ERROR", "Invalid relay-servers %s", r)
		}
	}
	return out
}

func validRelay(r string) bool {
	host := r
	if h, p, err := net.SplitHostPort(r); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 0 || n > 65535 {
			return false
		}
		host = h
	} else if strings.Count(r, ":") == 1 {
		return false // "host:" or "host:x" that did not split
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || host == "invalid" || strings.HasSuffix(host, ".invalid") || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, ch := range label {
			if !(ch == '-' || ch == '_' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9') {
				return false
			}
		}
	}
	return true
}
