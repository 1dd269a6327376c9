package hbbstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// ErrRefusedKey is returned (wrapped) by Start when Options.RefuseKey matches
// the key the server loaded.
var ErrRefusedKey = errors.New("hbbstest: refusing to start with this key")

// Addrs are the bound listener addresses. A listener that is skipped (or does
// not belong to the server's kind) has the zero AddrPort.
type Addrs struct {
	NAT     netip.AddrPort // hbbs TCP P-1
	TCP     netip.AddrPort // hbbs TCP P
	UDP     netip.AddrPort // hbbs UDP P
	WS      netip.AddrPort // hbbs WebSocket P+2
	Relay   netip.AddrPort // hbbr TCP R
	RelayWS netip.AddrPort // hbbr WebSocket R+2
}

// Server is a running stand-in. All methods are safe for concurrent use.
type Server struct {
	kind  Kind
	opts  Options
	idle  time.Duration
	key   serverKey
	addrs Addrs
	log   *logBuf

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu        sync.Mutex
	listeners []io.Closer
	conns     map[io.Closer]struct{}
	closing   bool

	// hbbs state
	relays   []string
	relayIdx int
	peers    map[string]*peer
	sinks    map[netip.AddrPort]msgConn // tcp_punch: connections waiting for a reply by address
	// console state ("ib", "ic", "pr", "aur")
	ipBlocker      map[string]*ipBlock
	ipChanges      map[string][]ipChange
	punchReqs      []punchReq
	alwaysUseRelay bool

	// hbbr state
	waiting   map[string]*parked
	sessions  map[*relayPair]struct{}
	blacklist map[string]bool
	blocklist map[string]bool
	limits    relayLimits
}

type peer struct {
	pk      []byte
	uuid    []byte    // from RegisterPk; empty for AddPeer peers
	regTime time.Time // zero: only in the "database", never registered
	addr    netip.AddrPort
}

// registerTimeout is how recent a RegisterPeer must be for a peer to count
// as online (hbbs REG_TIMEOUT).
const registerTimeout = 30 * time.Second

// maxFrame is what the stand-in accepts in one TCP frame: anything the header
// can announce. hbbs has no frame-size limit (measured on 1.1.16): a header
// announcing up to 1 GiB makes it wait for the bytes (until the idle timeout)
// rather than close. Memory grows only as bytes arrive
// (rendezvous.ReadFrame).
const maxFrame = rendezvous.MaxFrameLen

// maxWSMessage bounds one WebSocket message (tungstenite's default message
// limit, which hbbs keeps).
const maxWSMessage = 64 << 20

// StartHBBS starts an hbbs stand-in. It returns *MalformedKeyError when
// id_ed25519 is malformed (the real hbbs exits 1), an error wrapping
// ErrRefusedKey for Options.RefuseKey, or the bind error. The server stops
// when ctx ends or Close is called.
func StartHBBS(ctx context.Context, opts Options) (*Server, error) { return Start(ctx, HBBS, opts) }

// StartHBBR starts an hbbr stand-in; see StartHBBS.
func StartHBBR(ctx context.Context, opts Options) (*Server, error) { return Start(ctx, HBBR, opts) }

// Start starts a stand-in of the given kind.
func Start(ctx context.Context, kind Kind, opts Options) (*Server, error) {
	if kind != HBBS && kind != HBBR {
		return nil, fmt.Errorf("hbbstest: unknown kind %q", kind)
	}
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.ConsoleRule == nil {
		opts.ConsoleRule = LoopbackConsole
	}
	s := &Server{
		kind:      kind,
		opts:      opts,
		idle:      orDefault(opts.IdleTimeout, defaultIdle),
		log:       newLogBuf(string(kind), opts.LogWriter),
		done:      make(chan struct{}),
		conns:     map[io.Closer]struct{}{},
		peers:     map[string]*peer{},
		sinks:     map[netip.AddrPort]msgConn{},
		ipBlocker: map[string]*ipBlock{},
		ipChanges: map[string][]ipChange{},
		limits:    defaultRelayLimits,
		waiting:   map[string]*parked{},
		sessions:  map[*relayPair]struct{}{},
		blacklist: map[string]bool{},
		blocklist: map[string]bool{},
	}
	var err error
	if kind == HBBS {
		arg := "-"
		if opts.Key != nil {
			arg = *opts.Key
		}
		s.key, err = resolveHBBSKey(arg, opts.Dir, s.logInfo)
	} else {
		arg := ""
		if opts.Key != nil {
			arg = *opts.Key
		}
		s.key, err = resolveHBBRKey(arg, opts.Dir, s.logInfo)
	}
	if err != nil {
		return nil, err
	}
	if opts.RefuseKey != "" && (opts.RefuseKey == s.key.Key || opts.RefuseKey == s.key.FilePublic) {
		s.logf("ERROR", "refusing to start: key %s is refused (STANDIN_REFUSE_KEY)", opts.RefuseKey)
		return nil, fmt.Errorf("%w: %s", ErrRefusedKey, opts.RefuseKey)
	}
	if s.key.Key != "" {
		s.logInfo("Key: %s", s.key.Key)
	}
	if kind == HBBS {
		s.relays = s.checkRelays(opts.Relays)
		s.alwaysUseRelay = opts.AlwaysUseRelay
	}
	if err := s.bind(); err != nil {
		s.Close()
		return nil, err
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Kind reports whether this is hbbs or hbbr.
func (s *Server) Kind() Kind { return s.kind }

// Addrs returns the bound addresses.
func (s *Server) Addrs() Addrs { return s.addrs }

// Key returns the effective key compared with clients' licence_key ("" = no
// check), i.e. what the "Key: ..." log line shows.
func (s *Server) Key() string { return s.key.Key }

// FilePublicKey returns the public key gen_sk loaded or generated, or "" when
// gen_sk was not called (literal or secret -k) or produced no key.
func (s *Server) FilePublicKey() string { return s.key.FilePublic }

// Signs reports whether the server holds a secret key it signs IdPk with
// (hbbs only).
func (s *Server) Signs() bool { return s.key.Secret != nil }

// Log returns everything logged so far, one line per entry.
func (s *Server) Log() string { return s.log.String() }

// WaitLog waits until the log contains substr, or ctx ends.
func (s *Server) WaitLog(ctx context.Context, substr string) error { return s.log.wait(ctx, substr) }

// Done is closed when the server has begun shutting down.
func (s *Server) Done() <-chan struct{} { return s.done }

// Relays returns hbbs's current relay list (after the startup check and any
// console "rs" change).
func (s *Server) Relays() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.relays)
}

// AddPeer puts a peer into the stand-in's "database", as if it had once
// registered with public key pk. It is offline until a UDP RegisterPeer for
// its id arrives; punch-hole requests for it get OFFLINE, and relay
// responses naming it get an IdPk signed with the server key.
func (s *Server) AddPeer(id string, pk []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers[id] = &peer{pk: slices.Clone(pk)}
}

// Close stops the server, closes every connection and waits for its
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closing = true
		ls := s.listeners
		conns := make([]io.Closer, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, l := range ls {
			l.Close()
		}
		for _, c := range conns {
			c.Close()
		}
	})
	s.wg.Wait()
	return nil
}

// track registers c to be closed by Close and counts its handler in s.wg,
// under the same lock Close takes first, so Close never misses one. It
// returns false (and closes c) when the server is already closing. Every
// successful track must be paired with one untrack.
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

func (s *Server) logInfo(format string, args ...any) { s.logf("INFO", format, args...) }
func (s *Server) logf(level, format string, args ...any) {
	s.log.printf(level, format, args...)
}

func (s *Server) isConsole(a netip.Addr) bool { return s.opts.ConsoleRule(a) }

func (s *Server) muted(l Listener) bool   { return slices.Contains(s.opts.Mute, l) }
func (s *Server) skipped(l Listener) bool { return slices.Contains(s.opts.Skip, l) }

// --- binding ---------------------------------------------------------------

func (s *Server) hostPort(port int) string {
	return net.JoinHostPort(s.opts.Bind, strconv.Itoa(port))
}

// listenConfig is how the stand-in listens: without TCP keep-alive on the
// accepted connections (four system calls each; the probes' connections
// live for milliseconds, and a client cannot observe the difference).
var listenConfig = net.ListenConfig{KeepAlive: -1}

func (s *Server) listenTCP(port int) (net.Listener, error) {
	return listenConfig.Listen(context.Background(), "tcp", s.hostPort(port))
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// unmapped normalises an address the way the stand-in keys its tables, so
// an IPv4 client is the same whether seen through a dual-stack socket or not.
func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (s *Server) bind() error {
	if s.opts.Bind != "" {
		if _, err := netip.ParseAddr(s.opts.Bind); err != nil {
			return fmt.Errorf("hbbstest: bind address %q is not an IP address", s.opts.Bind)
		}
	}
	p := s.opts.Port
	if p < 0 || p > 65535 {
		return fmt.Errorf("hbbstest: port %d out of range", p)
	}
	if s.kind == HBBR {
		if p != 0 && p+2 > 65535 {
			return fmt.Errorf("hbbstest: port %d leaves no room for %d", p, p+2)
		}
		if err := s.bindTCP(Relay, p, &s.addrs.Relay, s.serveRelayTCP); err != nil {
			return err
		}
		if err := s.bindWS(RelayWS, offset(p, 2), &s.addrs.RelayWS, s.serveRelay); err != nil {
			return err
		}
		s.logInfo("Listening on tcp %s", s.addrs.Relay)
		s.logInfo("Listening on websocket %s", s.addrs.RelayWS)
		return nil
	}
	if p != 0 && (p < 3 || p+2 > 65535) {
		return fmt.Errorf("hbbstest: port %d: hbbs needs P-1 and P+2 to be valid ports", p)
	}
	if err := s.bindRendezvous(p); err != nil {
		return err
	}
	if err := s.bindTCP(NAT, offset(p, -1), &s.addrs.NAT, s.serveNAT); err != nil {
		return err
	}
	if err := s.bindWS(RendezvousWS, offset(p, 2), &s.addrs.WS, s.serveRendezvous); err != nil {
		return err
	}
	s.logInfo("Listening on tcp/udp %s", s.addrs.TCP)
	s.logInfo("Listening on tcp %s, extra port for NAT test", s.addrs.NAT)
	s.logInfo("Listening on websocket %s", s.addrs.WS)
	return nil
}

// offset keeps 0 (ephemeral) as 0.
func offset(p, d int) int {
	if p == 0 {
		return 0
	}
	return p + d
}

// bindRendezvous binds TCP and UDP P. With an ephemeral port it retries
// until UDP can take the port number TCP got.
func (s *Server) bindRendezvous(p int) error {
	for attempt := 0; ; attempt++ {
		var ln net.Listener
		var err error
		port := p
		if !s.skipped(Rendezvous) {
			if ln, err = s.listenTCP(p); err != nil {
				return err
			}
			port = int(addrPortOf(ln.Addr()).Port())
		}
		var pc *net.UDPConn
		if !s.skipped(RendezvousUDP) {
			ua, rerr := net.ResolveUDPAddr("udp", s.hostPort(port))
			if rerr != nil {
				return rerr
			}
			pc, err = net.ListenUDP("udp", ua)
			if err != nil {
				if ln != nil {
					ln.Close()
				}
				if p == 0 && attempt < 50 {
					continue
				}
				return err
			}
		}
		if ln != nil {
			s.addrs.TCP = addrPortOf(ln.Addr())
			s.serveListener(Rendezvous, ln, s.serveRendezvousTCP)
		}
		if pc != nil {
			s.addrs.UDP = addrPortOf(pc.LocalAddr())
			s.mu.Lock()
			s.listeners = append(s.listeners, pc)
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serveUDP(pc)
		}
		return nil
	}
}

func (s *Server) bindTCP(name Listener, port int, dst *netip.AddrPort, serve func(net.Conn)) error {
	if s.skipped(name) {
		return nil
	}
	ln, err := s.listenTCP(port)
	if err != nil {
		return err
	}
	*dst = addrPortOf(ln.Addr())
	s.serveListener(name, ln, serve)
	return nil
}

// serveListener runs the accept loop; a muted listener holds connections
// open without reading or writing.
func (s *Server) serveListener(name Listener, ln net.Listener, serve func(net.Conn)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	if s.muted(name) {
		serve = s.hold
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				select {
				case <-s.done:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // EMFILE and friends
				continue
			}
			if !s.track(c) {
				continue
			}
			go func() {
				defer s.untrack(c)
				serve(c)
			}()
		}
	}()
}

// hold keeps a muted connection open, never answering, until the client or
// Close ends it.
func (s *Server) hold(c net.Conn) { io.Copy(io.Discard, c) }

func (s *Server) bindWS(name Listener, port int, dst *netip.AddrPort, serve func(msgConn)) error {
	if s.skipped(name) {
		return nil
	}
	ln, err := s.listenTCP(port)
	if err != nil {
		return err
	}
	*dst = addrPortOf(ln.Addr())
	if s.muted(name) {
		s.serveListener(name, ln, nil)
		return nil
	}
	s.serveListener(name, ln, func(nc net.Conn) {
		// hbbr checks its blocklist on the WebSocket port too, against the
		// socket's address, and resets the connection before any HTTP (as
		// measured on 1.1.16).
		if name == RelayWS && s.blocked(unmapped(addrPortOf(nc.RemoteAddr())).Addr()) {
			reset(nc)
			return
		}
		c, err := s.upgrade(nc)
		if err != nil {
			return
		}
		serve(c)
	})
	return nil
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// upgrade runs the server side of the WebSocket handshake on nc (within
// the idle timeout, as upstream bounds its reads) and returns the
// connection as a msgConn. Any path, Host and Origin are accepted. As
// measured on 1.1.16: a failed handshake (no Upgrade, version 8, TLS, garbage)
// gets no HTTP reply at all, only the close, so gobwas/ws's error responses
// are discarded; the 101 reply has lower-case header names.
func (s *Server) upgrade(nc net.Conn) (*wsConn, error) {
	var realIP, forwarded *string
	header := func(dst **string, v []byte) {
		if *dst == nil {
			str := string(v)
			*dst = &str
		}
	}
	u := ws.Upgrader{
		OnHeader: func(k, v []byte) error {
			switch {
			case strings.EqualFold(string(k), "X-Real-IP"):
				header(&realIP, v)
			case strings.EqualFold(string(k), "X-Forwarded-For"):
				header(&forwarded, v)
			}
			return nil
		},
	}
	nc.SetDeadline(time.Now().Add(s.idle))
	// The servers' HTTP parser fails on the first byte that cannot start a
	// request line (a TLS ClientHello starts with 0x16) and close at once;
	// gobwas/ws would wait for a whole line first.
	var first [1]byte
	if _, err := io.ReadFull(nc, first[:]); err != nil || !isTokenChar(first[0]) {
		return nil, errors.New("hbbstest: websocket handshake: not an HTTP request")
	}
	// gobwas/ws writes its reply here: discarded on failure, and on
	// success only its Sec-WebSocket-Accept value is used.
	var reply bytes.Buffer
	if _, err := u.Upgrade(readWriter{io.MultiReader(bytes.NewReader(first[:]), nc), &reply}); err != nil {
		return nil, fmt.Errorf("hbbstest: websocket handshake: %w", err)
	}
	accept, ok := headerValue(reply.String(), "Sec-WebSocket-Accept")
	if !ok {
		return nil, errors.New("hbbstest: websocket handshake: no accept value")
	}
	if _, err := io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: "+
		accept+"\r\n\r\n"); err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	h := forwarded
	if realIP != nil {
		h = realIP
	}
	return newWSConn(nc, wsRemote(addrPortOf(nc.RemoteAddr()), h)), nil
}

// isTokenChar reports whether c may appear in an HTTP method (RFC 9110
// tchar).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// readWriter joins a reader and a writer.
type readWriter struct {
	io.Reader
	io.Writer
}

// headerValue finds header name (case-insensitive) in an HTTP head.
func headerValue(head, name string) (string, bool) {
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// wsRemote is the client address as hbbs and hbbr see it on a WebSocket port
// (as measured on 1.1.16; read since 1.1.12): header is X-Real-IP if the
// request had one, else X-Forwarded-For (nil: neither). A value holding a
// bare IP replaces the connection's address with IP:0; anything else
// (IP:port, a list, garbage) is ignored. Upstream trusts the header without
// checking (issue #634), and so does the stand-in. Its parse is reproduced: a
// value with a '.' is read as "<value>:0", otherwise as "[<value>]:0", so an
// IPv4-mapped IPv6 literal (it has dots but no brackets) is ignored too.
func wsRemote(ap netip.AddrPort, header *string) netip.AddrPort {
	if header == nil {
		return ap
	}
	h := *header
	if strings.ContainsAny(h, "%") { // no zones in the servers' parser
		return ap
	}
	if strings.Contains(h, ".") {
		if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
			return netip.AddrPortFrom(a, 0)
		}
		return ap
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
		return netip.AddrPortFrom(a, 0)
	}
	return ap
}

// --- message connections ---------------------------------------------------

// msgConn is a client connection carrying one RendezvousMessage per unit:
// a frame on TCP, a binary message on WebSocket.
type msgConn interface {
	// ReadMsg returns the next message, waiting at most timeout (<= 0:
	// no limit).
	ReadMsg(timeout time.Duration) ([]byte, error)
	WriteMsg(b []byte) error
	// Remote is the client address the stand-in keys its tables by (an
	// IPv4-mapped address unmapped).
	Remote() netip.AddrPort
	// RawRemote is the address as the socket reports it (or as the
	// WebSocket headers replaced it), for the log-like "usage" lines.
	RawRemote() netip.AddrPort
	Close() error
}

type tcpConn struct {
	c           net.Conn
	br          *bufio.Reader
	remote, raw netip.AddrPort
	wmu         sync.Mutex
}

func newTCPConn(c net.Conn) *tcpConn {
	raw := addrPortOf(c.RemoteAddr())
	return &tcpConn{c: c, br: bufio.NewReaderSize(c, 1024), remote: unmapped(raw), raw: raw}
}

func (t *tcpConn) ReadMsg(d time.Duration) ([]byte, error) {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	t.c.SetReadDeadline(deadline)
	return rendezvous.ReadFrame(t.br, maxFrame)
}

func (t *tcpConn) WriteMsg(b []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return rendezvous.WriteFrame(t.c, b)
}

// Raw switches to unframed byte copying (hbbr after pairing two TCP
// connections).
func (t *tcpConn) Raw() (io.Reader, io.Writer) {
	t.c.SetDeadline(time.Time{})
	return t.br, t.c // the reader keeps bytes that arrived before pairing
}

func (t *tcpConn) Remote() netip.AddrPort    { return t.remote }
func (t *tcpConn) RawRemote() netip.AddrPort { return t.raw }
func (t *tcpConn) Close() error              { return t.c.Close() }

// wsConn is the server end of a WebSocket connection: one message per
// binary message, gobwas/ws framing straight on the connection.
type wsConn struct {
	c           net.Conn
	rd          wsutil.Reader
	ctl         wsutil.FrameHandlerFunc
	remote, raw netip.AddrPort
	wmu         sync.Mutex    // guards writes: control replies and WriteMsg
	idle        time.Duration // the current ReadMsg timeout; read by activityReader in the same goroutine
}

func newWSConn(c net.Conn, remote netip.AddrPort) *wsConn {
	w := &wsConn{c: c, remote: unmapped(remote), raw: remote}
	w.ctl = wsutil.ControlFrameHandler(lockedWriter{&w.wmu, c}, ws.StateServerSide)
	w.rd = wsutil.Reader{
		Source:         bufio.NewReaderSize(activityReader{w}, 1024),
		State:          ws.StateServerSide,
		MaxFrameSize:   maxWSMessage,
		MaxMessageSize: maxWSMessage,
		OnIntermediate: w.ctl,
	}
	return w
}

// errInvalidText is a text message that is not UTF-8: a protocol error to
// the servers' WebSocket library, which closes the connection.
var errInvalidText = errors.New("hbbstest: websocket text message is not UTF-8")

// ReadMsg returns the next binary message. Like hbbs and hbbr it answers
// pings and a close, skips text messages that are valid UTF-8 and ends the
// connection on one that is not (as the real hbbs does). The
// timeout counts from the last bytes received, not from the call: upstream
// times out the wait for the next frame, and a ping is a frame, so pings
// keep an otherwise idle WebSocket open (measured on the real hbbs).
func (w *wsConn) ReadMsg(d time.Duration) ([]byte, error) {
	w.idle = d
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	w.c.SetReadDeadline(deadline)
	for {
		h, err := w.rd.NextFrame()
		if err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			if err := w.ctl(h, &w.rd); err != nil {
				return nil, err
			}
			continue
		}
		b, err := io.ReadAll(&w.rd)
		if err != nil {
			return nil, err
		}
		switch {
		case h.OpCode == ws.OpBinary:
			return b, nil
		case h.OpCode == ws.OpText && !utf8.Valid(b):
			return nil, errInvalidText
		}
	}
}

// activityReader reads from a WebSocket connection and pushes its read
// deadline on by the current timeout whenever bytes arrive.
type activityReader struct{ w *wsConn }

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.w.c.Read(p)
	if n > 0 && a.w.idle > 0 {
		a.w.c.SetReadDeadline(time.Now().Add(a.w.idle))
	}
	return n, err
}

// WriteMsg sends b as one binary message, in one write.
func (w *wsConn) WriteMsg(b []byte) error {
	frame := rendezvous.AppendWSMessages(nil, ws.StateServerSide, b)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := w.c.Write(frame)
	return err
}

func (w *wsConn) Remote() netip.AddrPort    { return w.remote }
func (w *wsConn) RawRemote() netip.AddrPort { return w.raw }

// Close drops the connection without a closing handshake, as upstream does
// when it drops a stream.
func (w *wsConn) Close() error { return w.c.Close() }

// lockedWriter serialises writes to a connection two goroutines write to.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// --- log -------------------------------------------------------------------

// logMax bounds the kept log; the older half is dropped beyond it.
const logMax = 4 << 20

type logBuf struct {
	module  string
	w       io.Writer
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuf(module string, w io.Writer) *logBuf {
	return &logBuf{module: module, w: w, changed: make(chan struct{})}
}

// printf writes "[2006-01-02 15:04:05.000000 +00:00] LEVEL [module] msg",
// the shape of hbbs's own log lines.
func (l *logBuf) printf(level, format string, args ...any) {
	line := fmt.Sprintf("[%s] %s [%s] %s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000000 -07:00"),
		level, l.module, fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > logMax {
		rest := l.buf.Bytes()[l.buf.Len()/2:]
		l.buf = *bytes.NewBuffer(slices.Clone(rest))
	}
	l.buf.WriteString(line)
	if l.w != nil {
		io.WriteString(l.w, line)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) wait(ctx context.Context, substr string) error {
	for {
		l.mu.Lock()
		found := strings.Contains(l.buf.String(), substr)
		ch := l.changed
		l.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("log never contained %q: %w", substr, ctx.Err())
		}
	}
}
