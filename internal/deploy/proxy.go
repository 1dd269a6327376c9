package deploy

import (
	"strings"
)

// Proxy kinds a record can name: the TLS reverse proxy rdctl proxy
// configured in front of hbbs's and hbbr's WebSocket ports.
const (
	ProxyNginx = "nginx"
	ProxyCaddy = "caddy"
)

// TLS sources a [ProxyRecord] can name.
const (
	// TLSFiles: the proxy serves a certificate and key from files.
	TLSFiles = "files"
	// TLSAutomatic: Caddy obtains and renews the certificate itself.
	TLSAutomatic = "automatic"
)

// ProxyRecord is the record's [proxy] table: a TLS reverse proxy fronts
// the WebSocket ports, so clients that use WebSocket reach the servers as
// wss://Domain/ws/id and wss://Domain/ws/relay. `rdctl proxy --apply`
// writes it; status, export and doctor read it. Records written before it
// existed have none (nil), which means no proxy.
type ProxyRecord struct {
	Kind   string `toml:"kind" json:"kind"`     // ProxyNginx or ProxyCaddy
	Domain string `toml:"domain" json:"domain"` // the DNS name clients use; never an IP
	TLS    string `toml:"tls" json:"tls"`       // TLSFiles or TLSAutomatic
	// Config is the site file rdctl installed.
	Config string `toml:"config" json:"config"`
}

// validate checks the [proxy] table as if a user had typed it.
func (p *ProxyRecord) validate() error {
	switch p.Kind {
	case ProxyNginx, ProxyCaddy:
	default:
		return &InputError{Field: "proxy.kind", Value: p.Kind, Reason: "must be nginx or caddy"}
	}
	if _, err := ParseDomain("proxy.domain", p.Domain); err != nil {
		return err
	}
	switch p.TLS {
	case TLSFiles, TLSAutomatic:
	default:
		return &InputError{Field: "proxy.tls", Value: p.TLS, Reason: "must be files or automatic"}
	}
	if p.TLS == TLSAutomatic && p.Kind != ProxyCaddy {
		return &InputError{Field: "proxy.tls", Value: p.TLS, Reason: "only caddy obtains certificates itself"}
	}
	_, err := ParseAbsPath("proxy.config", p.Config)
	return err
}

func (p *ProxyRecord) textFields() []textField {
	return []textField{{"proxy.kind", p.Kind}, {"proxy.domain", p.Domain}, {"proxy.tls", p.TLS}, {"proxy.config", p.Config}}
}

// Domain is a DNS name a TLS certificate can be issued for: what clients
// use to reach a proxied deployment.
type Domain string

// ParseDomain validates a DNS name (RFC 1123, as ParseHost) and refuses an
// IP address: a RustDesk client uses wss only for a host name (given an IP
// it builds ws://IP:port+2 straight to the server, never TLS), and a
// certificate is issued for a name. The name is returned in lower case
// without a trailing dot.
func ParseDomain(field, s string) (Domain, error) {
	h, err := ParseHost(field, s)
	if err != nil {
		return "", err
	}
	if h.IsIP() {
		return "", &InputError{Field: field, Value: s, Reason: "is an IP address; wss needs a DNS name: a RustDesk client given an IP connects with plain ws:// to port 21118/21119 directly and never through the proxy, and certificates are issued for names"}
	}
	return Domain(strings.ToLower(string(h))), nil
}
