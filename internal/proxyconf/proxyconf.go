// Package proxyconf is the TLS reverse proxy in front of hbbs's and hbbr's
// WebSocket ports: the nginx or Caddy site configuration for a deployment,
// rendered from typed input, validated with the proxy's own checker, and
// installed as a plan that leaves the previous configuration in place when
// the new one does not validate.
//
// A RustDesk client with allow-websocket = 'Y' and a host name (not an IP)
// builds wss://HOST/ws/id for the ID server and wss://HOST/ws/relay for the
// relay (wss because its api-server starts with https; the port it was given
// is dropped, so 443). hbbs and hbbr speak plain WebSocket on their port + 2
// and ignore the path, so the proxy routes /ws/id to hbbs's port + 2 and
// /ws/relay to hbbr's port + 2 on loopback. Both servers trust X-Real-IP
// without checking it, so the proxy always overwrites it with the peer's
// address. Timeouts: 120 s on /ws/id (more than the client's 60 s
// keep-alive), 1 h on /ws/relay (a relayed session; hbbr itself ends a
// relay after 30 s without data). Everything else is 404.
package proxyconf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"text/template"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/templates"
)

// Kind is a reverse proxy rdctl can configure.
type Kind string

const (
	Nginx Kind = deploy.ProxyNginx
	Caddy Kind = deploy.ProxyCaddy
)

// ParseKind checks a proxy name.
func ParseKind(field, s string) (Kind, error) {
	switch Kind(s) {
	case Nginx, Caddy:
		return Kind(s), nil
	}
	return "", &deploy.InputError{Field: field, Value: s, Reason: "must be nginx or caddy"}
}

// Timeouts of the proxied WebSockets.
const (
	// IDTimeout: the client keeps its /ws/id connection alive with a
	// message at least every 60 s, so the proxy must wait longer.
	IDTimeout = "120s"
	// RelayTimeout: a relayed session. hbbr ends a relay after 30 s with no
	// data either way; the proxy should never be the one that cuts it.
	RelayTimeout = "1h"
)

// Site is one proxied deployment: everything a site configuration is made
// of, each value already validated.
type Site struct {
	Kind   Kind
	Domain deploy.Domain
	// Cert and CertKey are the certificate chain and its key as PEM files,
	// or both empty: then Caddy obtains a certificate itself (nginx needs
	// them).
	Cert, CertKey deploy.AbsPath
	// IDWS and RelayWS are hbbs's and hbbr's WebSocket ports (port + 2),
	// proxied on 127.0.0.1.
	IDWS, RelayWS deploy.Port
}

// WSPorts returns hbbs's and hbbr's WebSocket ports on this host: their
// own ports plus 2, 21118 and 21119. rdctl starts neither server with -p,
// so they listen on 21116 and 21117 whatever ports the deployment record
// gives clients: those are the ports clients connect to, which a port
// forward may map (--id-host rd.example.com:31116 forwarded to 21116), and
// a client given a domain reaches the proxy on 443 anyway.
func WSPorts() (id, relay deploy.Port) {
	return deploy.RendezvousPort + 2, deploy.RelayPort + 2
}

// Validate checks the combination: nginx needs a certificate; the
// certificate and its key come together. [Site.Render] also needs the
// ports.
func (s Site) Validate() error {
	if _, err := ParseKind("kind", string(s.Kind)); err != nil {
		return err
	}
	if _, err := deploy.ParseDomain("--domain", string(s.Domain)); err != nil {
		return err
	}
	if (s.Cert == "") != (s.CertKey == "") {
		return &deploy.InputError{Field: "--cert", Value: string(s.Cert), Reason: "--cert and --cert-key go together"}
	}
	if s.Kind == Nginx && s.Cert == "" {
		return &deploy.InputError{Field: "--cert", Value: "", Reason: "nginx needs a certificate and its key (--cert FILE --cert-key FILE); only Caddy obtains one itself"}
	}
	for _, p := range []struct {
		field string
		v     deploy.AbsPath
	}{{"--cert", s.Cert}, {"--cert-key", s.CertKey}} {
		if p.v != "" {
			if _, err := deploy.ParseAbsPath(p.field, string(p.v)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TLS is the record's proxy.tls for s.
func (s Site) TLS() string {
	if s.Cert == "" {
		return deploy.TLSAutomatic
	}
	return deploy.TLSFiles
}

// tmplData is what the templates see: validated values only.
type tmplData struct {
	Domain                  deploy.Domain
	Cert, CertKey           deploy.AbsPath
	IDWS, RelayWS           deploy.Port
	IDTimeout, RelayTimeout string
}

var tmpls = sync.OnceValue(func() map[Kind]*template.Template {
	return map[Kind]*template.Template{
		Nginx: template.Must(template.New(templates.ProxyNginx).Option("missingkey=error").ParseFS(templates.FS, templates.ProxyNginx)),
		Caddy: template.Must(template.New(templates.ProxyCaddy).Option("missingkey=error").ParseFS(templates.FS, templates.ProxyCaddy)),
	}
})

// Render validates s and renders its site configuration.
func (s Site) Render() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.IDWS == 0 || s.RelayWS == 0 {
		return nil, fmt.Errorf("proxyconf: no WebSocket ports")
	}
	var b bytes.Buffer
	d := tmplData{Domain: s.Domain, Cert: s.Cert, CertKey: s.CertKey, IDWS: s.IDWS, RelayWS: s.RelayWS,
		IDTimeout: IDTimeout, RelayTimeout: RelayTimeout}
	if err := tmpls()[s.Kind].Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Notes are what an operator must know about a rendered configuration,
// one sentence each, for the command's output.
func (s Site) Notes() []string {
	n := []string{
		fmt.Sprintf("clients reach the servers as wss://%s/ws/id and wss://%s/ws/relay; give them allow-websocket = 'Y' and api-server = 'https://%s' (rdctl export does, for a proxied deployment)", s.Domain, s.Domain, s.Domain),
		fmt.Sprintf("close the WebSocket ports %d and %d to everything but loopback, or anyone can forge X-Real-IP by going around the proxy: rdctl firewall --proxy --apply", s.IDWS, s.RelayWS),
		"devices that are to be controlled still need udp/tcp 21116 and tcp 21117 open directly: the open-source hbbs cannot register a WebSocket-only client",
	}
	if s.Kind == Caddy {
		if s.Cert == "" {
			n = append(n, fmt.Sprintf("Caddy obtains the certificate for %s itself (ACME): ports 80 and 443 must be reachable from the internet and the name must point here", s.Domain))
		}
		n = append(n, "a Caddy reload (rdctl proxy --apply, systemctl reload caddy) closes every WebSocket it proxies, relayed sessions included: Caddy 2.6 has no stream_close_delay")
	}
	return n
}

// Layout is where a proxy's configuration lives on a host, and how it is
// checked and reloaded.
type Layout struct {
	// Site is the file rdctl owns: the site configuration.
	Site string
	// Main is the proxy's main configuration, which must include Site;
	// Import is the line rdctl adds to it ("" when the proxy already
	// includes the directory, as Debian's nginx does with conf.d/*.conf).
	Main, Import string
	// Unit is the systemd service reloaded after a change.
	Unit string
	// Validate checks the whole configuration the proxy would load.
	Validate []string
}

// Config directories and files.
const (
	NginxConfDir = "/etc/nginx/conf.d"
	CaddyMain    = "/etc/caddy/Caddyfile"
	CaddySiteDir = "/etc/caddy/rdctl"
)

// CaddyImport is the line rdctl appends to the Caddyfile.
const CaddyImport = "import " + CaddySiteDir + "/*.caddy"

// LayoutFor is where kind keeps the site of domain: nginx in
// /etc/nginx/conf.d/rustdesk-DOMAIN.conf (Debian's nginx.conf includes
// conf.d/*.conf in its http block); Caddy in
// /etc/caddy/rdctl/rustdesk-DOMAIN.caddy, imported from /etc/caddy/Caddyfile
// by one line rdctl adds.
func LayoutFor(kind Kind, domain deploy.Domain) Layout {
	name := "rustdesk-" + string(domain)
	if kind == Nginx {
		return Layout{Site: NginxConfDir + "/" + name + ".conf", Unit: "nginx.service", Validate: []string{"nginx", "-t", "-q"}}
	}
	return Layout{Site: CaddySiteDir + "/" + name + ".caddy", Main: CaddyMain, Import: CaddyImport, Unit: "caddy.service",
		Validate: []string{"caddy", "validate", "--config", CaddyMain, "--adapter", "caddyfile"}}
}

// hasLine reports whether data has a line that is line, ignoring
// surrounding blanks.
func hasLine(data []byte, line string) bool {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// withImport is data with the import line appended (data itself when it
// has it).
func withImport(data []byte, line string) []byte {
	if hasLine(data, line) {
		return data
	}
	out := bytes.Clone(data)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, []byte("\n# Added by rdctl proxy caddy: the RustDesk sites.\n"+line+"\n")...)
}
