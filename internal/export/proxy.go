package export

import (
	"fmt"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
)

// ForProxy sets s up for clients that reach the servers with wss through
// the TLS reverse proxy at domain (rdctl proxy): allow-websocket = 'Y',
// and api-server https://DOMAIN when none is given, because a client
// builds wss:// only when its api-server starts with https (the
// open-source server has no API: the client's API calls then get 404 from
// the proxy, which is harmless). The ID server and an explicit relay must
// be DNS names (a *deploy.InputError otherwise): a client given an IP
// connects with plain ws:// to port 21118/21119 directly and never through
// the proxy. The warnings name what would still work but probably not as
// meant.
func (s *Source) ForProxy(domain deploy.Domain) (warnings []string, err error) {
	for _, ep := range []struct {
		field string
		hp    deploy.HostPort
	}{{"id_host", s.ID}, {"relay", s.Relay}} {
		if ep.hp.Host == "" {
			continue
		}
		if ep.hp.Host.IsIP() {
			return nil, &deploy.InputError{Field: ep.field, Value: HostPort(ep.hp), Reason: "is an IP address: clients use wss through the proxy only for a DNS name (given an IP they connect with plain ws:// to the server's port + 2 directly); give the proxy's name, e.g. --id-host " + string(domain)}
		}
		if !strings.EqualFold(string(ep.hp.Host), string(domain)) {
			warnings = append(warnings, fmt.Sprintf("the %s %s is not the proxy's name %s: WebSocket clients connect to wss://%s/..., which must reach the proxy and be in its certificate", strings.ReplaceAll(ep.field, "_", " "), ep.hp.Host, domain, ep.hp.Host))
		}
	}
	switch {
	case s.API == "":
		s.API = "https://" + string(domain)
	case !strings.HasPrefix(s.API, "https://"):
		warnings = append(warnings, fmt.Sprintf("the API server %s is not https: clients then build ws:// (port 80), which the proxy redirects and the client does not follow; use https://%s", s.API, domain))
	}
	s.WebSocket, s.ProxyDomain = true, domain
	return warnings, nil
}

// proxyReadme is README.txt's section on WebSocket through the proxy, for
// a configuration that turns it on. ASCII, as the rest of the file.
func (c Config) proxyReadme() string {
	if !c.Server.AllowWebSocket {
		return ""
	}
	relay := c.Server.Relay
	if relay == "" {
		relay = c.Server.Host
	}
	host, relayHost := hostOnly(c.Server.Host), hostOnly(relay)
	return fmt.Sprintf(`
WebSocket through the TLS reverse proxy (%s)
    RustDesk2.toml (every copy above, server.conf and install-config.ps1 too)
    sets allow-websocket = 'Y'. The client (1.4.0 or newer) then connects to
      wss://%s/ws/id
      wss://%s/ws/relay
    on port 443, and uses no UDP and no direct connection: every session is
    relayed. The setting
      api-server = '%s'
    is what makes it wss: the client builds wss:// only for a host name and
    an api-server that starts with https. The open-source server has no API
    server: the client's API calls (its heartbeat to /api/heartbeat) get 404
    from the proxy; that is expected.

    config-string.txt, installer-name.txt and config-qr.png CANNOT carry
    allow-websocket: a client set up with them alone keeps using the direct
    ports. Turn it on separately: Settings > Network > Use WebSocket, or
    elevated: rustdesk --option allow-websocket Y, or install RustDesk2.toml.

    Devices that are to be CONTROLLED must not use WebSocket with the
    open-source server: hbbs cannot register a WebSocket-only client, which
    then stays at "Connecting..." and cannot be reached. Give those devices
    the configuration without it (rdctl export --websocket=false); they need
    udp/tcp 21116 and tcp 21117 on the server, which stay open.
`, c.ProxyDomain, host, relayHost, c.Server.API)
}

// hostOnly drops a port from host[:port] (a bracketed IPv6 keeps its
// brackets): in WebSocket mode the client drops the port of a name.
func hostOnly(hp string) string {
	if strings.HasPrefix(hp, "[") {
		if i := strings.Index(hp, "]"); i > 0 {
			return hp[:i+1]
		}
	}
	if i := strings.LastIndex(hp, ":"); i > 0 {
		return hp[:i]
	}
	return hp
}
