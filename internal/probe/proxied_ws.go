package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// upgrade sends a WebSocket upgrade for path on c (already through TLS for
// wss) and reads the answer: at most maxHandshake bytes of status line and
// headers, within c's deadline. Anything but a valid 101 is a classified
// error (*ProxyError) where the failure-signature table has a cause.
//
// It is its own small HTTP client rather than gobwas/ws's dialer because a
// proxy's refusal is the finding: the status and the Location of a
// redirect are needed, never the body, which is not read.
func upgrade(ctx context.Context, c net.Conn, scheme, host, path string, extra []string) (*wsClient, error) {
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	var req strings.Builder
	req.WriteString("GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nUser-Agent: rdctl-check\r\n")
	for _, h := range extra {
		req.WriteString(h + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		return nil, upgradeIOErr(ctx, err, path, true)
	}
	lim := &handshakeLimit{r: c, left: maxHandshake}
	br := bufio.NewReaderSize(lim, 1024)
	resp, err := http.ReadResponse(br, nil)
	switch {
	case err != nil && lim.left == 0:
		// The parser may report the line the limit cut short instead.
		return nil, ErrHandshakeTooLarge
	case err != nil:
		return nil, upgradeIOErr(ctx, err, path, lim.left == maxHandshake)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, statusError(scheme, path, resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("Sec-WebSocket-Accept") != acceptValue(key) {
		e := proxyErr(CauseUpgradeRefused, "101 to the upgrade of %s without a valid WebSocket accept", path)
		e.Status, e.Path = resp.StatusCode, path
		return nil, e
	}
	lim.left = -1 // from here messages are bounded by maxReply
	return &wsClient{conn: c, stop: func() bool { return false },
		msgs: rendezvous.NewWSMessages(br, c, ws.StateClientSide, maxReply)}, nil
}

// acceptValue is Sec-WebSocket-Accept for key (RFC 6455).
func acceptValue(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// upgradeIOErr classifies a failed write of the upgrade or read of its
// answer; empty: no byte of an answer had come.
func upgradeIOErr(ctx context.Context, err error, path string, empty bool) error {
	c := classify(err)
	switch {
	case errors.Is(err, ErrHandshakeTooLarge):
		return ErrHandshakeTooLarge
	case ctx.Err() != nil, errors.Is(c, ErrNoAnswer):
		return ErrNoAnswer
	case empty && (errors.Is(c, ErrClosed) || isReset(err)):
		e := proxyErr(CauseClosedEmpty, "the connection was closed with no reply to the upgrade of %s: the port speaks no HTTP", path)
		e.Path = path
		return e
	case errors.Is(c, ErrClosed), isReset(err):
		return fmt.Errorf("%w in the middle of the answer to the upgrade of %s", ErrClosed, path)
	}
	return fmt.Errorf("%w: not an HTTP answer to the upgrade of %s: %v", ErrUnexpectedReply, path, err)
}

// maxLocation bounds the Location a redirect's error repeats.
const maxLocation = 200

// statusError classifies a non-101 answer to the upgrade of path.
func statusError(scheme, path string, resp *http.Response) *ProxyError {
	st := resp.StatusCode
	var e *ProxyError
	switch {
	case st == 301 || st == 302 || st == 303 || st == 307 || st == 308:
		loc := resp.Header.Get("Location")
		if len(loc) > maxLocation {
			loc = loc[:maxLocation] + "…"
		}
		e = proxyErr(CauseRedirect, "HTTP %d to the upgrade of %s (Location: %s): clients do not follow it, and RustDesk builds ws:// when api-server is empty or starts with http:", st, path, loc)
		e.Location = loc
	case st == 400 && scheme == "ws":
		e = proxyErr(CausePlainHTTPToTLS, "HTTP 400 to the ws:// upgrade of %s: the port expects TLS (plain HTTP was sent to an HTTPS port)", path)
	case st == 404:
		e = proxyErr(CauseNotRouted, "HTTP 404 on %s: the proxy does not route %s to %s", path, path, upstreamOf(path))
	case st == 502 || st == 503 || st == 504:
		e = proxyErr(CauseBadGateway, "HTTP %d to the upgrade of %s: the proxy got no WebSocket answer from %s: it does not forward the Upgrade and Connection headers (then the server closes without a reply), or nothing listens on that port", st, path, upstreamOf(path))
	default:
		e = proxyErr(CauseUpgradeRefused, "HTTP %d to the upgrade of %s, not 101 Switching Protocols", st, path)
	}
	e.Status, e.Path = st, path
	return e
}

func upstreamOf(path string) string {
	if path == "/ws/relay" {
		return "hbbr's WebSocket port (21119)"
	}
	return "hbbs's WebSocket port (21118)"
}

// tlsError classifies a failed TLS handshake with host.
func tlsError(ctx context.Context, err error, host string) error {
	var (
		hn x509.HostnameError
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
		rh tls.RecordHeaderError
	)
	switch {
	case ctx.Err() != nil, errors.Is(classify(err), ErrNoAnswer):
		return ErrNoAnswer
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		if time.Now().Before(ci.Cert.NotBefore) {
			return proxyErr(CauseTLSExpired, "the certificate is not valid before %s", ci.Cert.NotBefore.UTC().Format(time.DateOnly))
		}
		return proxyErr(CauseTLSExpired, "the certificate expired on %s", ci.Cert.NotAfter.UTC().Format(time.DateOnly))
	case errors.As(err, &hn):
		return proxyErr(CauseTLSName, "the certificate is for %s, not %s", certNames(hn.Certificate), host)
	case errors.As(err, &ua):
		issuer := "itself"
		if ua.Cert != nil && ua.Cert.Issuer.String() != ua.Cert.Subject.String() {
			issuer = ua.Cert.Issuer.String()
		}
		return proxyErr(CauseTLSUntrusted, "the certificate (issued by %s) does not lead to a trusted root: self-signed, a private CA (trust it with --ca-file) or a missing intermediate", issuer)
	case errors.As(err, &rh):
		return proxyErr(CauseNotTLS, "the port answered, but not with TLS (plain HTTP?)")
	case errors.Is(classify(err), ErrClosed), isReset(err):
		return proxyErr(CauseClosedEmpty, "the connection was closed during the TLS handshake without a byte: the port speaks no TLS (hbbs's and hbbr's own WebSocket ports are plain ws://)")
	}
	return proxyErr(CauseTLSFailed, "TLS handshake: %v", err)
}

// certNames lists the names a certificate is for (at most four).
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no name"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	switch {
	case len(names) == 0:
		return "no name"
	case len(names) > 4:
		return strings.Join(names[:4], ", ") + fmt.Sprintf(" and %d more", len(names)-4)
	}
	return strings.Join(names, ", ")
}

// certExpiryWarning: a certificate closer than this to its end is a
// warning.
const certExpiryWarning = 14 * 24 * time.Hour

// certNote describes a verified connection's certificate.
func certNote(st *tls.ConnectionState, now time.Time) (note, warning string) {
	if st == nil || len(st.PeerCertificates) == 0 {
		return "", ""
	}
	leaf := st.PeerCertificates[0]
	left := leaf.NotAfter.Sub(now)
	note = fmt.Sprintf("%s; certificate for %s, issued by %s, valid until %s (%d days)",
		tls.VersionName(st.Version), certNames(leaf), leaf.Issuer.String(), leaf.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
	if left < certExpiryWarning {
		warning = fmt.Sprintf("the certificate expires in %d days (%s)", int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	return note, warning
}
