package hbbstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"testing"
	"time"
)

// CA is a private certificate authority made for one test.
type CA struct {
	Cert *x509.Certificate
	Pool *x509.CertPool // holds Cert only
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid from an hour ago for a day.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rdctl test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Pool: pool, key: key}
}

// PEM is the CA certificate in PEM, as a --ca-file holds it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Leaf issues a server certificate for names (DNS names or IP addresses),
// valid from nb to na.
func (ca *CA) Leaf(t testing.TB, nb, na time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ProxyMode is how StartProxy's reverse proxy is (mis)configured. The zero
// value is the working configuration.
type ProxyMode struct {
	TLS         *tls.Certificate // nil: plain HTTP
	PassRealIP  bool             // pass the client's X-Real-IP on instead of overwriting it
	NoRealIP    bool             // drop X-Real-IP and set nothing
	NoUpgrade   bool             // do not forward Upgrade/Connection (upstream closes: 502)
	OnlyRoot    bool             // no /ws/ locations: everything is 404
	RelayToHBBS bool             // /ws/relay routed to hbbs's WebSocket port
}

// StartProxy runs a reverse proxy on bind (an ephemeral port) in front of
// the pair's WebSocket ports, set up as a working nginx or Caddy site is
// (/ws/id to hbbs P+2, /ws/relay to hbbr R+2, X-Real-IP overwritten with
// the client address, 404 elsewhere; Go's httputil.ReverseProxy carries
// the upgrade), or broken as mode says. It returns the port; the proxy
// stops when t ends.
func StartProxy(t testing.TB, bind string, pair *Pair, mode ProxyMode) int {
	t.Helper()
	up := func(ap netip.AddrPort) *httputil.ReverseProxy {
		u := &url.URL{Scheme: "http", Host: ap.String()}
		return &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			switch {
			case mode.PassRealIP:
			case mode.NoRealIP:
				r.Out.Header.Del("X-Real-IP")
			default:
				host, _, _ := net.SplitHostPort(r.In.RemoteAddr)
				r.Out.Header.Set("X-Real-IP", host)
			}
		}, ErrorLog: QuietLog()}
	}
	id, relay := up(pair.HBBS.Addrs().WS), up(pair.HBBR.Addrs().RelayWS)
	if mode.RelayToHBBS {
		relay = id
	}
	mux := http.NewServeMux()
	if !mode.OnlyRoot {
		mux.Handle("/ws/id", id)
		mux.Handle("/ws/relay", relay)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	var h http.Handler = mux
	if mode.NoUpgrade {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Upgrade")
			r.Header.Del("Connection")
			mux.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: QuietLog(), ReadHeaderTimeout: 10 * time.Second}
	if mode.TLS != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*mode.TLS}}
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// QuietLog drops a test server's own error lines (handshakes that tests
// fail on purpose).
func QuietLog() *log.Logger { return log.New(io.Discard, "", 0) }
