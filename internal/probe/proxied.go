package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// A proxied target (ws[s]://HOST[:PORT]) is a server whose WebSocket ports
// (hbbs P+2, hbbr R+2) sit behind a reverse proxy, usually with TLS:
// RustDesk clients with allow-websocket=Y connect to wss://HOST/ws/id and
// wss://HOST/ws/relay (ws:// and port 80 when api-server does not start
// with https). hbbs and hbbr ignore the path and Host header, speak no TLS
// and take the client address from X-Real-IP (else X-Forwarded-For) when
// it holds a bare IP, reporting port 0 for it.
//
// Its probes, each over a fresh connection through the proxy:
const (
	// ProxyTLS (wss only): the TLS handshake, the certificate chain
	// against the system's roots (plus Options.RootCAs) and the name. The
	// other wss probes run only when it passed.
	ProxyTLS Name = "proxy-tls"
	// ProxyID: the upgrade of /ws/id (expects 101), then TestNatRequest,
	// which hbbs answers once and closes. Port 0 in the reply means the
	// proxy passed the client address; any other port is a warning.
	ProxyID Name = "proxy-id"
	// ProxyRealIP: two more TestNats over /ws/id, one with a forged
	// X-Real-IP holding an address and one with a value hbbs cannot use.
	// If they are answered differently, the client's own header reached
	// hbbs: anyone can forge the address hbbs logs and acts on. Nothing is
	// written on the server.
	ProxyRealIP Name = "proxy-real-ip"
	// ProxyKey: the key probe (PunchHoleRequest for a random unregistered
	// id) over /ws/id; with Strict also a wrong key.
	ProxyKey Name = "proxy-key"
	// ProxyRegister: an empty RegisterPk over /ws/id. The open-source
	// hbbs answers NOT_SUPPORT: devices in WebSocket mode cannot register,
	// so they cannot be controlled (a note, not a failure). An empty
	// RegisterPk names no id, so no server stores anything for it.
	ProxyRegister Name = "proxy-register"
	// ProxyRelay: two /ws/relay connections send RequestRelay with the same
	// random uuid; hbbr pairs them, and a payload must cross the proxy in
	// each direction.
	ProxyRelay Name = "proxy-relay"
	// ExposedID and ExposedRelay: a plain WebSocket upgrade straight to
	// hbbs's P+2 (21118) and hbbr's R+2 (21119) at the target's address.
	// They pass when the port does not upgrade: once a proxy fronts them,
	// anyone reaching them directly can forge X-Real-IP.
	ExposedID    Name = "exposed-id"
	ExposedRelay Name = "exposed-relay"
)

// ProxyNames lists the probes of a proxied target's proxy, in run order.
// By default a proxied target also gets DirectNames on its direct ports.
func ProxyNames() []Name {
	return []Name{ProxyTLS, ProxyID, ProxyRealIP, ProxyKey, ProxyRegister, ProxyRelay, ExposedID, ExposedRelay}
}

// DirectNames are the plain probes a proxied target gets on the ports the
// open-source server still needs besides the proxy (Options.WSOnly skips
// them): controlled devices register over UDP 21116, take punch and relay
// requests on TCP 21116, run their NAT test on TCP 21115 and relay over
// TCP 21117.
func DirectNames() []Name { return []Name{NATTest, RendezvousTCP, RendezvousUDP, Relay} }

func allNames() []Name { return append(Names(), ProxyNames()...) }

func isProxyName(n Name) bool { return slices.Contains(ProxyNames(), n) }

// plainOnly drops the proxy probes from ns (nil stays nil).
func plainOnly(ns []Name) []Name {
	if ns == nil {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(ns), isProxyName)
}

func proxyProto(n Name) string {
	switch {
	case n == ProxyTLS:
		return "tls"
	case isProxyName(n):
		return "ws"
	}
	return ""
}

// Proxied reports whether t is reached through a WebSocket proxy.
func (t Target) Proxied() bool { return t.Proxy != "" }

func (t Target) proxyPort() int {
	switch {
	case t.ProxyPort != 0:
		return t.ProxyPort
	case t.Proxy == "wss":
		return 443
	}
	return 80
}

// hostHeader is the Host header (and TLS name) clients send: the host,
// with the port only when it is not the scheme's default.
func (t Target) hostHeader() string {
	h := t.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if t.ProxyPort != 0 && t.ProxyPort != map[string]int{"wss": 443, "ws": 80}[t.Proxy] {
		h += ":" + strconv.Itoa(t.ProxyPort)
	}
	return h
}

func (t Target) proxyURL() string { return t.Proxy + "://" + t.hostHeader() }

func (t Target) validateProxy() error {
	switch {
	case t.Proxy != "" && t.Proxy != "ws" && t.Proxy != "wss":
		return fmt.Errorf("proxy scheme %q (want ws or wss)", t.Proxy)
	case t.Proxy == "" && t.ProxyPort != 0:
		return errors.New("a proxy port without a proxy scheme")
	case t.ProxyPort < 0 || t.ProxyPort > 65535:
		return fmt.Errorf("proxy port %d out of range", t.ProxyPort)
	}
	return nil
}

// NormalizeHost is how Options.Resolve keys a host name: lower case,
// without a trailing dot.
func NormalizeHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func (o Options) pin(host string) netip.Addr { return o.Resolve[NormalizeHost(host)] }

// Cause classifies why a proxied target's probe failed: what is wrong in
// the proxy, its certificate or beside it. The values are part of check's
// JSON output.
type Cause string

const (
	// CauseTLSName: the certificate is not valid for the target's name.
	CauseTLSName Cause = "tls-name"
	// CauseTLSUntrusted: the chain does not lead to a trusted root
	// (self-signed, a private CA not given with --ca-file, a missing
	// intermediate).
	CauseTLSUntrusted Cause = "tls-untrusted"
	// CauseTLSExpired: expired, or not valid yet.
	CauseTLSExpired Cause = "tls-expired"
	// CauseTLSFailed: any other TLS failure (an alert, no common version).
	CauseTLSFailed Cause = "tls-failed"
	// CauseNotTLS: the port answered, but not with TLS (plain HTTP).
	CauseNotTLS Cause = "not-tls"
	// CauseClosedEmpty: the connection was accepted and closed without a
	// byte: TLS or an HTTP request sent to something that speaks neither,
	// such as hbbs's and hbbr's plain WebSocket ports when given TLS.
	CauseClosedEmpty Cause = "closed-empty"
	// CauseRedirect: 301/302/307/308 to the upgrade (typically ws:// on 80
	// redirected to https: clients then fail).
	CauseRedirect Cause = "redirect"
	// CausePlainHTTPToTLS: 400 to a ws:// upgrade: plain HTTP was sent to
	// a TLS port.
	CausePlainHTTPToTLS Cause = "plain-http-to-tls-port"
	// CauseNotRouted: 404: the path is not routed to hbbs/hbbr.
	CauseNotRouted Cause = "not-routed"
	// CauseBadGateway: 502 (or 503/504): the proxy got no WebSocket answer
	// upstream: it does not forward Upgrade/Connection (hbbs and hbbr then
	// close without a reply) or nothing listens on the upstream port.
	CauseBadGateway Cause = "bad-gateway"
	// CauseUpgradeRefused: any other answer than 101 to the upgrade.
	CauseUpgradeRefused Cause = "upgrade-refused"
	// CauseRelayNotDelivered: both relay connections were upgraded but the
	// payload did not cross within the timeout.
	CauseRelayNotDelivered Cause = "relay-not-delivered"
	// CauseRelayRejected: the relay connection was closed after the
	// request: hbbr -k with another key, or a blocklisted address.
	CauseRelayRejected Cause = "relay-rejected"
	// CauseRelayToHBBS: /ws/relay answered a TestNatRequest, so it reaches
	// hbbs, not hbbr.
	CauseRelayToHBBS Cause = "relay-routed-to-hbbs"
	// CauseRealIPForgeable: a client's own X-Real-IP reaches hbbs.
	CauseRealIPForgeable Cause = "real-ip-passed-through"
	// CauseExposed: hbbs's or hbbr's WebSocket port upgrades directly,
	// beside the proxy.
	CauseExposed Cause = "ws-port-exposed"
)

// ProxyError is a classified failure of a proxied target's probe.
type ProxyError struct {
	Cause Cause
	// Status is the HTTP status the upgrade got (0 if none).
	Status int
	// Path is the upgraded path (/ws/id, /ws/relay); "" for TLS.
	Path string
	// Location is a redirect's target, as the server sent it.
	Location string
	// Port is the exposed port (CauseExposed).
	Port int
	msg  string
}

func (e *ProxyError) Error() string { return e.msg }

func proxyErr(c Cause, format string, args ...any) *ProxyError {
	return &ProxyError{Cause: c, msg: fmt.Sprintf(format, args...)}
}

// proxied probes one proxied target.
type proxied struct {
	t    Target
	opts Options
	dial DialFunc
	res  *resolved
	tls  *tls.Config

	outer   context.Context // the whole check's context (the relay diagnosis outlives a probe's)
	gateTLS bool            // ProxyTLS is selected: the other wss probes wait for its verdict
	tlsOnce sync.Once
	tlsErr  error
	tlsNote string
	tlsWarn string
}

func newProxied(t Target, opts Options, gateTLS bool) *proxied {
	p := &proxied{t: t, opts: opts, dial: t.Dial, gateTLS: gateTLS,
		res: &resolved{host: t.Host, direct: t.Dial == nil, pin: opts.pin(t.Host)}}
	if p.dial == nil {
		p.dial = abortiveDial
	}
	if t.Proxy == "wss" {
		p.tls = &tls.Config{
			ServerName:         t.Host,
			RootCAs:            opts.RootCAs,
			MinVersion:         tls.VersionTLS12,
			NextProtos:         []string{"http/1.1"}, // the upgrade needs HTTP/1.1
			ClientSessionCache: tls.NewLRUClientSessionCache(4),
		}
		if ip, err := netip.ParseAddr(t.Host); err == nil {
			p.tls.ServerName = ip.String() // verified against IP SANs, no SNI
		}
	}
	return p
}

// proxyAddr is the proxy's address as dialled.
func (p *proxied) proxyAddr(ctx context.Context) (string, error) {
	host, err := p.res.get(ctx)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p.t.proxyPort())), nil
}

// connect dials the proxy and, for wss, completes the TLS handshake. The
// connection carries ctx's deadline; call stop when done with it.
func (p *proxied) connect(ctx context.Context) (c net.Conn, stop func() bool, state *tls.ConnectionState, err error) {
	addr, err := p.proxyAddr(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	stop = watch(ctx, raw)
	if p.tls == nil {
		return raw, stop, nil, nil
	}
	tc := tls.Client(raw, p.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		stop()
		raw.Close()
		return nil, nil, nil, tlsError(ctx, err, p.t.Host)
	}
	st := tc.ConnectionState()
	return tc, stop, &st, nil
}

// checkTLS is the ProxyTLS verdict, reached once per target.
func (p *proxied) checkTLS(ctx context.Context) error {
	p.tlsOnce.Do(func() {
		c, stop, st, err := p.connect(ctx)
		if err != nil {
			p.tlsErr = err
			return
		}
		stop()
		c.Close()
		p.tlsNote, p.tlsWarn = certNote(st, time.Now())
	})
	return p.tlsErr
}

// errTLSGate: a wss probe not run because ProxyTLS failed.
var errTLSGate = errors.New("not run: the TLS handshake failed (see proxy-tls)")

// ws upgrades a fresh connection to the proxy on path, with extra header
// lines ("Name: value").
func (p *proxied) ws(ctx context.Context, path string, extra ...string) (*wsClient, error) {
	if p.gateTLS && p.tls != nil {
		if err := p.checkTLS(ctx); err != nil {
			return nil, errTLSGate
		}
	}
	c, stop, _, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	w, err := upgrade(ctx, c, p.t.Proxy, p.t.hostHeader(), path, extra)
	if err != nil {
		stop()
		c.Close()
		return nil, err
	}
	w.stop = stop
	return w, nil
}

// testNat sends TestNatRequest over /ws/id (with extra header lines) and
// returns the port hbbs saw; hbbs closes after replying.
func (p *proxied) testNat(ctx context.Context, path string, extra ...string) (int32, error) {
	w, err := p.ws(ctx, path, extra...)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	return wsTestNat(ctx, w)
}

func wsTestNat(ctx context.Context, w *wsClient) (int32, error) {
	if err := w.WriteBinary(rendezvous.Marshal(&rendezvous.TestNatRequest{})); err != nil {
		return 0, wsReadErr(ctx, err)
	}
	m, err := w.readMessage(ctx)
	if err != nil {
		return 0, err
	}
	r, ok := m.(*rendezvous.TestNatResponse)
	if !ok {
		return 0, fmt.Errorf("%w %s to TestNatRequest", ErrUnexpectedReply, messageName(m))
	}
	return r.Port, nil
}

// readMessage reads one binary message and decodes it.
func (w *wsClient) readMessage(ctx context.Context) (rendezvous.Message, error) {
	b, err := w.ReadBinary()
	if err != nil {
		return nil, wsReadErr(ctx, err)
	}
	m, err := rendezvous.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnexpectedReply, err)
	}
	return m, nil
}

// probeID is ProxyID.
func (p *proxied) probeID(ctx context.Context) (note, warning string, err error) {
	port, err := p.testNat(ctx, "/ws/id")
	if err != nil {
		return "", "", err
	}
	if port == 0 {
		return "101 on /ws/id; TestNat port 0: the proxy passes the client address (X-Real-IP)", "", nil
	}
	return "101 on /ws/id; TestNat answered",
		fmt.Sprintf("TestNat over /ws/id reported port %d, not 0: the proxy does not pass the client address in X-Real-IP, so hbbs logs and limits the proxy's address for every WebSocket client", port), nil
}

// Forged X-Real-IP values for ProxyRealIP: an address (TEST-NET-1) and a
// value hbbs cannot parse (it reads "<value>:0" as a socket address).
const (
	forgedRealIP   = "192.0.2.1"
	unusableRealIP = "rdctl-probe.invalid"
)

// probeRealIP is ProxyRealIP. A proxy that overwrites X-Real-IP (or drops
// it) makes both forged requests look the same to hbbs; one that passes
// the client's header on lets the usable one set the address (port 0) and
// the unusable one fall back to the connection's (another port).
func (p *proxied) probeRealIP(ctx context.Context) (note string, err error) {
	// One after the other, so the probe holds one connection, as
	// Options.Concurrency counts it.
	forged, err := p.testNat(ctx, "/ws/id", "X-Real-IP: "+forgedRealIP)
	if err != nil {
		return "", err
	}
	unusable, err := p.testNat(ctx, "/ws/id", "X-Real-IP: "+unusableRealIP)
	switch {
	case err != nil:
		return "", err
	case (forged == 0) != (unusable == 0):
		return "", proxyErr(CauseRealIPForgeable,
			"a client's own X-Real-IP reaches hbbs through the proxy (TestNat port %d with X-Real-IP: %s, %d with an unusable value): anyone can forge the address hbbs logs and acts on",
			forged, forgedRealIP, unusable)
	}
	return "a client's X-Real-IP does not reach hbbs (the proxy overwrites or drops it)", nil
}

// probeKey is ProxyKey.
func (p *proxied) probeKey(ctx context.Context) (KeyStatus, string, error) {
	punch := func(key string) (bool, error) {
		w, err := p.ws(ctx, "/ws/id")
		if err != nil {
			return false, err
		}
		defer w.Close()
		if err := w.WriteBinary(rendezvous.Marshal(&rendezvous.PunchHoleRequest{ID: RandomID(), LicenceKey: key})); err != nil {
			return false, wsReadErr(ctx, err)
		}
		m, err := w.readMessage(ctx)
		if err != nil {
			return false, err
		}
		r, ok := m.(*rendezvous.PunchHoleResponse)
		if !ok {
			return false, fmt.Errorf("%w %s to PunchHoleRequest", ErrUnexpectedReply, messageName(m))
		}
		return r.Failure != rendezvous.LicenseMismatch, nil
	}
	return keyProbeWith(punch, p.opts.Key, p.opts.Strict, p.opts.Rand)
}

// RegisterPk and its response are members 15 and 16 of RendezvousMessage;
// RegisterPkResponse.result is field 1, NOT_SUPPORT = 6.
const (
	fieldRegisterPk         = 15
	fieldRegisterPkResponse = 16
	registerPkNotSupport    = 6
)

// NoteOpenSourceWS is ProxyRegister's note for the open-source hbbs.
const NoteOpenSourceWS = "RegisterPk over WebSocket: NOT_SUPPORT, the open-source hbbs: devices set to WebSocket cannot register, so they cannot be controlled; controlled devices still need UDP and TCP 21116 and TCP 21117"

// probeRegister is ProxyRegister.
func (p *proxied) probeRegister(ctx context.Context) (string, error) {
	w, err := p.ws(ctx, "/ws/id")
	if err != nil {
		return "", err
	}
	defer w.Close()
	if err := w.WriteBinary(rendezvous.Marshal(&rendezvous.Unknown{Field: fieldRegisterPk})); err != nil {
		return "", wsReadErr(ctx, err)
	}
	m, err := w.readMessage(ctx)
	if errors.Is(err, ErrClosed) {
		return "RegisterPk over WebSocket: closed without a reply; the server type is unknown", nil
	}
	if err != nil {
		return "", err
	}
	u, ok := m.(*rendezvous.Unknown)
	if !ok || u.Field != fieldRegisterPkResponse {
		return "", fmt.Errorf("%w %s to RegisterPk", ErrUnexpectedReply, messageName(m))
	}
	result, err := rendezvous.Int32Field("RegisterPkResponse", u.Payload, 1)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnexpectedReply, err)
	}
	if result == registerPkNotSupport {
		return NoteOpenSourceWS, nil
	}
	return fmt.Sprintf("RegisterPk over WebSocket answered result %d, not NOT_SUPPORT: not the open-source hbbs (Server Pro registers WebSocket clients)", result), nil
}

// probeRelay is ProxyRelay.
func (p *proxied) probeRelay(ctx context.Context) (string, error) {
	req := rendezvous.Marshal(&rendezvous.RequestRelay{UUID: randomToken("rdctl-"), LicenceKey: p.opts.Key})
	a, err := p.ws(ctx, "/ws/relay")
	if err != nil {
		return "", err
	}
	defer a.Close()
	if err := a.WriteBinary(req); err != nil {
		return "", p.relayFailed(ctx, err)
	}
	// The second request goes out an upgrade later, so hbbr has parked
	// the first (see RelayAcross).
	b, err := p.ws(ctx, "/ws/relay")
	if err != nil {
		return "", err
	}
	defer b.Close()
	there, back := relayPayload(), relayPayload()
	if err := b.WriteBinary(req, there); err != nil {
		return "", p.relayFailed(ctx, err)
	}
	if err := readPayload(a, there); err != nil {
		return "", p.relayFailed(ctx, err)
	}
	if err := a.WriteBinary(back); err != nil {
		return "", p.relayFailed(ctx, err)
	}
	if err := readPayload(b, back); err != nil {
		return "", p.relayFailed(ctx, err)
	}
	return "relayed bytes both ways between two connections through the proxy", nil
}

// readPayload reads binary messages until want has arrived.
func readPayload(w *wsClient, want []byte) error {
	var got []byte
	for len(got) < len(want) {
		m, err := w.ReadBinary()
		if err != nil {
			return err
		}
		got = append(got, m...)
	}
	if string(got) != string(want) {
		return fmt.Errorf("%w: relayed bytes differ from those sent", ErrUnexpectedReply)
	}
	return nil
}

// relayDiagnosis bounds the exchange that asks, after a failed pairing,
// whether /ws/relay reaches hbbs instead of hbbr.
const relayDiagnosis = 2 * time.Second

// relayFailed classifies a pairing that got through both upgrades and
// then failed. hbbs, unlike hbbr, answers a TestNatRequest: if /ws/relay
// does, the proxy routes it to the wrong server.
func (p *proxied) relayFailed(ctx context.Context, err error) error {
	timedOut := ctx.Err() != nil || errors.Is(classify(err), ErrNoAnswer)
	if errors.Is(err, ErrUnexpectedReply) {
		return err
	}
	outer := p.outer
	if outer == nil {
		outer = context.Background()
	}
	if outer.Err() != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(outer, min(relayDiagnosis, p.opts.Timeout))
	defer cancel()
	if _, terr := p.testNat(dctx, "/ws/relay"); terr == nil {
		return proxyErr(CauseRelayToHBBS, "/ws/relay reaches hbbs (it answered a TestNatRequest), not hbbr")
	}
	if timedOut {
		return proxyErr(CauseRelayNotDelivered,
			"two relay requests with one uuid over /ws/relay were not joined within %s: the proxy does not carry the bytes, or /ws/relay does not reach hbbr", p.opts.Timeout)
	}
	return proxyErr(CauseRelayRejected, "hbbr closed the relay request through the proxy: it checks another key (-k), or blocks this address")
}

// probeExposed is ExposedID or ExposedRelay: a plain WebSocket upgrade
// straight to port at the target's address. Dialled directly at a loopback
// address (a check on the server itself) an upgrade proves nothing: the
// proxy on that host reaches the port over loopback, and the firewall
// (rdctl firewall --proxy) leaves loopback open for it. That is a warning
// that names where to check from, not a failure.
func (p *proxied) probeExposed(ctx context.Context, port int) (note, warning string, err error) {
	host, err := p.res.get(ctx)
	if err != nil {
		return "", "", err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	w, err := wsDial(ctx, p.dial, addr, addr)
	if err == nil {
		w.Close()
		if p.t.Dial == nil && loopbackDial(host) {
			return "", fmt.Sprintf("ws://%s answers over loopback, as the proxy here needs; whether it is exposed shows only from another host", addr), nil
		}
		e := proxyErr(CauseExposed, "ws://%s answers a WebSocket upgrade directly, beside the proxy: anyone can send it a forged X-Real-IP", addr)
		e.Port = port
		return "", "", e
	}
	if ctx.Err() != nil {
		return fmt.Sprintf("not reachable directly (no answer within %s)", p.opts.Timeout), "", nil
	}
	return "not reachable directly (" + describe(err, p.opts.Timeout) + ")", "", nil
}

// loopbackDial says whether a direct dial of host (an address, as probes
// dial direct targets once resolved) stays on this host.
func loopbackDial(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// run runs probe n of this target.
func (p *proxied) run(ctx context.Context, n Name) (note, warning string, key KeyStatus, err error) {
	key = KeyUnknown
	switch n {
	case ProxyTLS:
		err = p.checkTLS(ctx)
		note, warning = p.tlsNote, p.tlsWarn
	case ProxyID:
		note, warning, err = p.probeID(ctx)
	case ProxyRealIP:
		note, err = p.probeRealIP(ctx)
	case ProxyKey:
		key, note, err = p.probeKey(ctx)
	case ProxyRegister:
		note, err = p.probeRegister(ctx)
	case ProxyRelay:
		note, err = p.probeRelay(ctx)
	case ExposedID:
		note, warning, err = p.probeExposed(ctx, p.t.PortOf(RendezvousWS))
	case ExposedRelay:
		note, warning, err = p.probeExposed(ctx, p.t.PortOf(RelayWS))
	default:
		err = fmt.Errorf("probe %s does not apply to a proxied target", n)
	}
	return note, warning, key, err
}

// proxyPort is the port probe n of t reports.
func (t Target) proxyProbePort(n Name) int {
	switch n {
	case ExposedID:
		return t.PortOf(RendezvousWS)
	case ExposedRelay:
		return t.PortOf(RelayWS)
	}
	return t.proxyPort()
}

func (t Target) proxyProbeProto(n Name) string {
	switch n {
	case ProxyTLS:
		return "tls"
	case ExposedID, ExposedRelay:
		return "ws"
	}
	return t.Proxy
}

// checkProxied is Check for a list with proxied targets: the plain targets
// as Check does, the direct ports of the proxied ones (DirectNames, unless
// WSOnly), then their proxy probes. The three groups run one after the
// other, each with opts.Concurrency, so the bound holds (proxy-relay, like
// the relay pairing, holds two connections for its one slot).
func checkProxied(ctx context.Context, targets []Target, opts Options) ([]TargetResult, error) {
	selected := opts.Probes
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("target %s: %w", t, err)
		}
	}
	if opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Deadline)
		defer cancel()
	}
	pick := func(all []Name) []Name {
		if selected == nil {
			return slices.Clone(all)
		}
		return slices.DeleteFunc(slices.Clone(all), func(n Name) bool { return !slices.Contains(selected, n) })
	}
	results := make([]TargetResult, len(targets))
	sub := opts
	sub.Deadline = 0 // ctx carries it

	var plain, direct []Target
	var plainIdx, proxIdx []int
	for i, t := range targets {
		if t.Proxied() {
			proxIdx = append(proxIdx, i)
			d := t
			d.Proxy, d.ProxyPort = "", 0
			direct = append(direct, d)
		} else {
			plainIdx = append(plainIdx, i)
			plain = append(plain, t)
		}
	}
	if ns := pick(Names()); len(plain) > 0 && len(ns) > 0 {
		sub.Probes = ns
		rs, err := Check(ctx, plain, sub)
		if err != nil {
			return nil, err
		}
		for k, i := range plainIdx {
			results[i] = rs[k]
		}
	}
	var directRes []TargetResult
	if ns := pick(DirectNames()); !opts.WSOnly && len(ns) > 0 {
		sub.Probes = ns
		if directRes, err = Check(ctx, direct, sub); err != nil {
			return nil, err
		}
	}

	proxyNames := pick(ProxyNames())
	probers := make([]*proxied, len(proxIdx))
	type job struct{ k, j int }
	var jobs []job
	for k, i := range proxIdx {
		t := targets[i]
		ns := slices.DeleteFunc(slices.Clone(proxyNames), func(n Name) bool { return n == ProxyTLS && t.Proxy != "wss" })
		probers[k] = newProxied(t, opts, slices.Contains(ns, ProxyTLS))
		probers[k].outer = ctx
		r := TargetResult{Target: t, Via: t.via(), KeyStatus: KeyUnknown}
		for j, n := range ns {
			r.Probes = append(r.Probes, Result{Name: n, Proto: t.proxyProbeProto(n), Port: t.proxyProbePort(n)})
			jobs = append(jobs, job{k, j})
		}
		results[i] = r
	}
	f := &fleet{opts: opts}
	queue := make(chan job)
	var wg sync.WaitGroup
	for range min(opts.Concurrency, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range queue {
				r := &results[proxIdx[jb.k]]
				res := &r.Probes[jb.j]
				if f.stopped(ctx, res) {
					continue
				}
				pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
				start := time.Now()
				note, warning, key, err := probers[jb.k].run(pctx, res.Name)
				cancel()
				f.finish(ctx, res, start, note, err)
				var pe *ProxyError
				if errors.As(err, &pe) {
					res.Cause = pe.Cause
				}
				if err == nil {
					res.Warning = warning
				}
				if res.Name == ProxyKey {
					r.KeyStatus = key // one writer per target
				}
			}
		}()
	}
	for _, jb := range jobs {
		queue <- jb
	}
	close(queue)
	wg.Wait()

	for k, i := range proxIdx {
		r := &results[i]
		if directRes != nil {
			d := directRes[k]
			r.Probes = append(r.Probes, d.Probes...)
			switch {
			case d.KeyStatus == KeyMismatch:
				r.KeyStatus = KeyMismatch
			case r.KeyStatus == KeyUnknown:
				r.KeyStatus = d.KeyStatus
			}
		}
		r.OK = r.KeyStatus != KeyMismatch
		for _, p := range r.Probes {
			r.OK = r.OK && p.OK
		}
		host := probers[k].res.dialHost
		if host == "" {
			host = r.Target.Host
		}
		r.Address = net.JoinHostPort(host, strconv.Itoa(r.Target.proxyPort()))
	}
	return results, nil
}
