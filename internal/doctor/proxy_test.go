package doctor

import (
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
)

// The proxy checks: none without a [proxy] table; each failure with a case
// that must not fire.
func TestProxyChecks(t *testing.T) {
	const site = "/etc/nginx/conf.d/rustdesk-rd.example.com.conf"
	caddySite := "/etc/caddy/rdctl/rustdesk-rd.example.com.caddy"
	cases := []struct {
		name       string
		proxy      *deploy.ProxyRecord
		idHost     string
		files      map[string]string
		site, ends Severity
		siteOK     bool
		endsOK     bool
		none       bool
	}{
		{name: "no proxy", none: true},
		{name: "nginx site present", proxy: &deploy.ProxyRecord{Kind: "nginx", Domain: "rd.example.com", TLS: "files", Config: site},
			files: map[string]string{site: "server {}\n"}, siteOK: true, endsOK: true},
		{name: "nginx site missing", proxy: &deploy.ProxyRecord{Kind: "nginx", Domain: "rd.example.com", TLS: "files", Config: site},
			site: SeverityError, endsOK: true},
		{name: "caddy imported", proxy: &deploy.ProxyRecord{Kind: "caddy", Domain: "rd.example.com", TLS: "automatic", Config: caddySite},
			files: map[string]string{caddySite: "x\n", caddyMain: ":80 {\n}\n  " + caddyImport + "\n"}, siteOK: true, endsOK: true},
		{name: "caddy not imported", proxy: &deploy.ProxyRecord{Kind: "caddy", Domain: "rd.example.com", TLS: "automatic", Config: caddySite},
			files: map[string]string{caddySite: "x\n", caddyMain: ":80 {\n}\n# " + caddyImport + "\n"}, site: SeverityError, endsOK: true},
		{name: "an IP ID server", proxy: &deploy.ProxyRecord{Kind: "nginx", Domain: "rd.example.com", TLS: "files", Config: site},
			idHost: "203.0.113.5", files: map[string]string{site: "server {}\n"}, siteOK: true, ends: SeverityWarning},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, rec := image(t)
			rec.Proxy = c.proxy
			if c.idHost != "" {
				rec.IDHost = c.idHost
			}
			for p, data := range c.files {
				writeFile(t, root, p, data, 0o644)
			}
			got := map[string]Check{}
			for _, ch := range run(root, rec) {
				if strings.HasPrefix(ch.ID, "proxy-") {
					got[ch.ID] = ch
				}
			}
			if c.none {
				if len(got) != 0 {
					t.Errorf("proxy checks without a proxy: %+v", got)
				}
				return
			}
			for id, want := range map[string]struct {
				ok  bool
				sev Severity
			}{"proxy-site": {c.siteOK, c.site}, "proxy-endpoints": {c.endsOK, c.ends}} {
				ch, ok := got[id]
				if !ok || ch.OK != want.ok || (!want.ok && ch.Severity != want.sev) {
					t.Errorf("%s: %+v, want ok=%v severity %v", id, ch, want.ok, want.sev)
				}
			}
		})
	}
}
