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

// serveRendezvous is hbbs's TCP P / WebSocket P+2 loop (as measured on
// the real 1.1.16). The server never speaks first, and handles only
// PunchHoleRequest, RequestRelay, RelayResponse, PunchHoleSent, LocalAddr and
// TestNatRequest:
//
//   - RegisterPk gets RegisterPkResponse{NOT_SUPPORT} and the connection
//     closes; any other message, an empty one or bytes that do not decode
//     close it at once with no reply;
//   - a TestNatRequest is answered on the connection's "sink" (its way back
//     to the client) and ends the connection;
//   - the first PunchHoleRequest or RequestRelay takes the sink, so a
//     connection answers at most one punch request and then stays open until
//     the idle timeout;
//   - a RelayResponse goes to whichever stored sink its socket_addr names; one
//     that names none comes back on this connection (uuid kept, relay_server
//     not filled in) and the connection closes;
//   - PunchHoleSent and LocalAddr would be forwarded to the punching client's
//     sink; the stand-in has no such clients, so nothing happens.
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
		if err != nil || m == nil {
			return
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
			if resp := s.punchReply(m, remote); resp != nil {
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
			if echo := s.forwardRelayResponse(m); echo != nil {
				c.WriteMsg(rendezvous.Marshal(echo))
				return
			}
		case *rendezvous.Unknown:
			switch m.Field {
			case fieldPunchHoleSent, fieldLocalAddr:
				continue
			case fieldRegisterPk:
				c.WriteMsg(registerPkResponse(rpNotSupport))
			}
			return
		default:
			return
		}
	}
}

// punchReply decides the answer to a punch-hole request, or nil when hbbs
// would forward the request to an online peer and answer later (the
// stand-in never does).
func (s *Server) punchReply(m *rendezvous.PunchHoleRequest, from netip.AddrPort) *rendezvous.PunchHoleResponse {
	if s.key.Key != "" && m.LicenceKey != s.key.Key {
		return &rendezvous.PunchHoleResponse{Failure: rendezvous.LicenseMismatch}
	}
	s.mu.Lock()
	p := s.peers[m.ID]
	online := p != nil && online(p)
	if online {
		// hbbs records a punch request only when the peer exists (its
		// handle_punch_hole_request); "pr" lists them.
		s.punchReqs = append(s.punchReqs, punchReq{at: time.Now(), from: from.Addr(), id: m.ID, to: p.addr.Addr()})
		if len(s.punchReqs) > maxPunchReqs {
			s.punchReqs = s.punchReqs[len(s.punchReqs)-maxPunchReqs:]
		}
	}
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
// it names, to the stored sink of the address in rr.socket_addr (hbbs's
// handle_tcp RelayResponse branch and send_to_tcp_sync); the sink is
// consumed. When no sink is stored there, it returns the message to send
// back to the sender instead (measured on 1.1.16: same uuid, no
// relay_server filled in), else nil.
func (s *Server) forwardRelayResponse(rr *rendezvous.RelayResponse) *rendezvous.RelayResponse {
	var dst msgConn
	if addr, err := rendezvous.DecodeAddr(rr.SocketAddr); err == nil {
		addr = unmapped(addr)
		s.mu.Lock()
		dst = s.sinks[addr]
		delete(s.sinks, addr)
		s.mu.Unlock()
	}
	out := *rr
	out.SocketAddr = nil
	if u, ok := rr.Union.(rendezvous.RelayResponseID); ok {
		s.mu.Lock()
		var pk []byte
		if p := s.peers[string(u)]; rr.Version != "" && s.key.Secret != nil && p != nil {
			pk = rendezvous.SignIDPK(s.key.Secret, string(u), p.pk)
		}
		s.mu.Unlock()
		out.Union = rendezvous.RelayResponsePK(pk)
	}
	if dst == nil {
		return &out
	}
	if out.RelayServer == "" {
		s.mu.Lock()
		out.RelayServer = s.nextRelayLocked()
		s.mu.Unlock()
	}
	if out.Union == nil {
		out.Union = rendezvous.RelayResponsePK(nil)
	}
	dst.WriteMsg(rendezvous.Marshal(&out))
	return nil
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
// RegisterPeer and RegisterPk are answered (see registerPeer and
// registerPK); everything else (including PunchHoleRequest over UDP) is
// ignored.
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
		var replies [][]byte
		switch m := m.(type) {
		case *rendezvous.RegisterPeer:
			replies = s.registerPeer(m, unmapped(from))
		case *rendezvous.Unknown:
			if m.Field == fieldRegisterPk {
				replies = s.registerPK(m.Payload, unmapped(from))
			}
		}
		for _, r := range replies {
			pc.WriteToUDPAddrPort(r, from)
		}
	}
}

// registerPeer answers a UDP RegisterPeer (measured on 1.1.16): an empty id
// gets nothing; otherwise RegisterPeerResponse, with request_pk true for an
// id the server has no key for (nothing is stored for an unknown id), or
// whose IP changed; then, when the request's serial is lower than the
// server's, an extra ConfigUpdate datagram.
func (s *Server) registerPeer(m *rendezvous.RegisterPeer, from netip.AddrPort) [][]byte {
	if m.ID == "" {
		return nil
	}
	s.mu.Lock()
	requestPK := true
	if p := s.peers[m.ID]; p != nil {
		ipChanged := p.addr.IsValid() && p.addr.Addr() != from.Addr()
		if ipChanged {
			s.ipChanges[m.ID] = append(s.ipChanges[m.ID], ipChange{at: time.Now(), from: p.addr.Addr(), to: from.Addr()})
		}
		p.addr = from
		p.regTime = time.Now()
		requestPK = len(p.pk) == 0 || ipChanged
	}
	s.mu.Unlock()
	out := [][]byte{rendezvous.Marshal(&rendezvous.RegisterPeerResponse{RequestPK: requestPK})}
	if s.opts.Serial > m.Serial {
		out = append(out, configureUpdate(s.opts.Serial, s.opts.RendezvousServers))
	}
	return out
}

// registerPK answers a UDP RegisterPk: one without an id, uuid or pk (or that
// does not parse) is ignored; a uuid that differs from the one the id was
// registered with gets UUID_MISMATCH; otherwise the key is stored (so the
// next RegisterPeer gets request_pk false) and the answer is OK. Each source
// IP is counted in the ip-blocker table the console's "ib" lists. The
// stand-in does not model upstream's rate limit (TOO_FREQUENT) or id
// changes.
func (s *Server) registerPK(payload []byte, from netip.AddrPort) [][]byte {
	m, err := parseRegisterPk(payload)
	if err != nil || m.ID == "" || len(m.UUID) == 0 || len(m.PK) == 0 || len(m.ID) > registerPkMaxIDLen {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ip := from.Addr().String()
	e := s.ipBlocker[ip]
	if e == nil {
		e = &ipBlock{first: time.Now()}
		s.ipBlocker[ip] = e
	}
	e.count++
	p := s.peers[m.ID]
	if p != nil && len(p.uuid) > 0 && string(p.uuid) != string(m.UUID) {
		return [][]byte{registerPkResponse(rpUUIDMismatch)}
	}
	if p == nil {
		p = &peer{}
		s.peers[m.ID] = p
	}
	p.uuid = m.UUID
	p.pk = m.PK
	p.addr = from
	p.regTime = time.Now()
	return [][]byte{registerPkResponse(rpOK)}
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
