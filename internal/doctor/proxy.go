package doctor

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Files of a Caddy site rdctl proxy installs; proxyconf (a higher layer)
// writes them.
const (
	caddyMain   = "/etc/caddy/Caddyfile"
	caddyImport = "import /etc/caddy/rdctl/*.caddy"
)

// proxyChecks are the checks of a deployment behind a TLS reverse proxy
// (the record's [proxy] table): the site rdctl proxy installed is there
// (and, for Caddy, imported from the Caddyfile), and clients can reach the
// servers through it, which needs DNS names for the ID server and relay.
// Without a [proxy] table there are none.
func (in *Input) proxyChecks(cs *checks) {
	p := in.Record.Proxy
	if p == nil {
		return
	}
	again := fmt.Sprintf("rdctl proxy %s --domain %s --apply", p.Kind, p.Domain)
	fi, err := os.Lstat(in.under(p.Config))
	switch {
	case err != nil:
		cs.fail("proxy-site", SeverityError, "the %s site %s the record names is missing (%v): WebSocket clients cannot reach the servers; install it again: %s", p.Kind, p.Config, errText(err), again)
	case !fi.Mode().IsRegular():
		cs.fail("proxy-site", SeverityError, "the %s site %s is not a regular file; install it again: %s", p.Kind, p.Config, again)
	case p.Kind == deploy.ProxyCaddy && !fileHasLine(in.under(caddyMain), caddyImport):
		cs.fail("proxy-site", SeverityError, "%s does not import the RustDesk site (%q): Caddy does not serve it; add the line again: %s", caddyMain, caddyImport, again)
	default:
		cs.ok("proxy-site", "%s serves wss://%s/ws/id and /ws/relay from %s", p.Kind, p.Domain, p.Config)
	}
	var ips []string
	for _, ep := range []struct{ field, value string }{{"id_host", in.Record.IDHost}, {"relay", in.Record.Relay}} {
		if ep.value == "" {
			continue
		}
		if hp, err := deploy.ParseHostPort(ep.field, ep.value); err == nil && hp.Host.IsIP() {
			ips = append(ips, fmt.Sprintf("%s %s", ep.field, ep.value))
		}
	}
	if len(ips) > 0 {
		cs.fail("proxy-endpoints", SeverityWarning, "%s: an IP address, so WebSocket clients connect with plain ws:// to the server's port + 2 and never through the proxy at %s; give clients the name (rdctl install ... --id-host %s, or rdctl export --id-host %s)", strings.Join(ips, ", "), p.Domain, p.Domain, p.Domain)
	} else {
		cs.ok("proxy-endpoints", "clients are given names the proxy can serve")
	}
}

// fileHasLine reports whether the file (at most 1 MiB read) has a line
// that is line, ignoring surrounding blanks.
func fileHasLine(path, line string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
