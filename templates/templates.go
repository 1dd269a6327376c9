// Package templates holds the text templates rdctl renders, embedded in the
// binary so that an installed rdctl needs no files beside it. The packages
// that render a template parse it once at start-up (template.Must) and test
// the result against golden files.
package templates

import "embed"

// FS holds every *.tmpl file of this directory.
//
//go:embed *.tmpl
var FS embed.FS

// InstallConfigPS1 is the name in FS of the PowerShell imaging script that
// internal/clientconf renders: it writes RustDesk2.toml into the RustDesk
// service's profile and the Default user profile with the service stopped.
// Data: see clientconf's ps1Data.
const InstallConfigPS1 = "install-config.ps1.tmpl"

// ProxyNginx and ProxyCaddy are the names in FS of the reverse proxy site
// configurations internal/proxyconf renders: TLS on 443 for one domain,
// /ws/id to hbbs's and /ws/relay to hbbr's WebSocket port on loopback,
// X-Real-IP overwritten, 404 elsewhere. Data: see proxyconf's tmplData.
const (
	ProxyNginx = "proxy-nginx.conf.tmpl"
	ProxyCaddy = "proxy-caddy.tmpl"
)
