package adopt

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// IDs of the settings lints (doctor reports them as checks).
const (
	FindingSettingBandwidth      = "setting-bandwidth"
	FindingSettingRustLog        = "setting-rust-log"
	FindingSettingRelayAddress   = "setting-relay-address"
	FindingSettingAlwaysUseRelay = "setting-always-use-relay"
	FindingEnvFileUntrusted      = "environment-file-untrusted"
)

// Settings are the environment assignments one server process gets: its
// process environment (unit Environment= and EnvironmentFile=, compose
// environment:) and its working directory's .env, which the server reads
// itself after it started. Values may hold a secret (KEY): the lints never
// show KEY.
type Settings struct {
	Env envVars
	Dot envVars
	// Untrusted are EnvironmentFile= paths that were not read (see
	// Service): their settings are unknown.
	Untrusted []string
}

// Settings is what s is started with, as read from its unit.
func (s *Service) Settings() Settings {
	return Settings{Env: s.env, Dot: s.dot, Untrusted: s.untrustedEnv}
}

// ComposeSettings builds a compose service's settings: its environment:
// (NAME=VALUE, as compose-go lists it) and the .env in its working
// directory (dotEnv, read from dotPath; nil when there is none).
func ComposeSettings(environment []string, where string, dotEnv []byte, dotPath string) Settings {
	var env envVars
	for _, kv := range environment {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env = append(env, envVar{Name: k, Value: v, Where: where})
		}
	}
	var dot envVars
	if dotEnv != nil {
		dot = parseEnvFile(dotEnv).from(dotPath)
	}
	return Settings{Env: env, Dot: dot}
}

// ParseEnvFile reads a .env or EnvironmentFile as the servers and systemd
// do (see parseEnvFile) and returns its assignments as NAME=VALUE, in order.
// Values may hold a secret key.
func ParseEnvFile(data []byte) []string {
	var out []string
	for _, v := range parseEnvFile(data) {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}

// bandwidth are hbbr's bandwidth settings with their defaults (1.1.15+),
// in Mb/s but for the threshold (a ratio) and the start (seconds).
var bandwidth = []struct{ name, def string }{
	{"LIMIT_SPEED", "32 Mb/s"},
	{"TOTAL_BANDWIDTH", "1024 Mb/s"},
	{"SINGLE_BANDWIDTH", "128 Mb/s"},
	{"DOWNGRADE_THRESHOLD", "0.66"},
	{"DOWNGRADE_START_CHECK", "1800 s"},
}

// rustFloat is what Rust's f64 parser (str::parse::<f64>) accepts: an
// optional sign, then inf, infinity or nan in any case, or decimal digits
// with an optional point and exponent. No spaces, units or underscores.
var rustFloat = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[+-]?((?i:inf|infinity|nan)|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)$`)
})

// leadingNumber is the number a value with a unit starts with, if any.
var leadingNumber = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)`) })

// LintSettings finds settings the servers misread: bandwidth values that
// are not bare numbers (hbbr parses each as f64 and takes 0 when that
// fails, so "400Mb/s" is silently ignored), RUST_LOG set only in .env (the
// logger starts before .env is read), ALWAYS_USE_RELAY values other than
// Y and N (and in .env, where hbbs 1.1.16 does not look for it), and relays
// clients cannot reach: loopback, unspecified or link-local addresses,
// and for a deployment that is not tailnet-only private (RFC 1918, ULA)
// and CGNAT/tailnet addresses.
func LintSettings(hbbs, hbbr Settings, relays []deploy.HostPort, tailnetOnly bool) []Finding {
	var out []Finding
	add := func(id string, sev Severity, hint, format string, a ...any) {
		out = append(out, Finding{ID: id, Severity: sev, Message: fmt.Sprintf(format, a...), Hint: hint})
	}
	for _, b := range bandwidth {
		for _, v := range append(append(envVars{}, hbbr.Env...), hbbr.Dot...) {
			if normKey(v.Name) != normKey(b.name) || rustFloat().MatchString(v.Value) {
				continue
			}
			fix := "write a bare number"
			if n := leadingNumber().FindString(v.Value); n != "" {
				fix = fmt.Sprintf("write %s=%s", v.Name, n)
			}
			add(FindingSettingBandwidth, SeverityWarning, fix+" (Mb/s), then restart hbbr",
				"%s=%s in %s is not a bare number: hbbr parses it as a number of Mb/s, takes 0 when that fails, and so silently ignores it (the default %s stays)",
				v.Name, textsafe.Escape(v.Value), v.Where, b.def)
		}
	}
	for _, s := range []struct {
		name string
		set  Settings
	}{{"hbbs", hbbs}, {"hbbr", hbbr}} {
		if _, inEnv := s.set.Env.normalised("RUST-LOG"); inEnv {
			continue
		}
		for _, v := range s.set.Dot {
			if normKey(v.Name) == "RUST-LOG" {
				add(FindingSettingRustLog, SeverityWarning, "set it in the process environment: the unit's Environment= (systemctl edit), or compose environment:",
					"%s=%s is set only in %s: %s starts its logger before it reads .env, so it has no effect", v.Name, textsafe.Escape(v.Value), v.Where, s.name)
			}
		}
	}
	for _, v := range hbbs.Env {
		if v.Name == "ALWAYS_USE_RELAY" && v.Value != "Y" && v.Value != "N" {
			add(FindingSettingAlwaysUseRelay, SeverityWarning, "write ALWAYS_USE_RELAY=Y to force relaying, N (or nothing) not to",
				"ALWAYS_USE_RELAY=%s in %s is neither Y nor N: hbbs forces relaying only for Y, so this leaves it off", textsafe.Escape(v.Value), v.Where)
		}
	}
	if _, inEnv := hbbs.Env.exact("ALWAYS_USE_RELAY"); !inEnv {
		for _, v := range hbbs.Dot {
			if normKey(v.Name) == "ALWAYS-USE-RELAY" {
				add(FindingSettingAlwaysUseRelay, SeverityWarning, "set ALWAYS_USE_RELAY in the process environment: the unit's Environment= or compose environment:",
					"%s=%s is set only in %s: hbbs 1.1.16 reads ALWAYS_USE_RELAY from its environment by that name, while .env names become dashed, so it does nothing there", v.Name, textsafe.Escape(v.Value), v.Where)
			}
		}
	}
	for _, hp := range relays {
		if why := unreachableRelay(hp.Host, tailnetOnly); why != "" {
			add(FindingSettingRelayAddress, SeverityWarning, "give -r a name or address clients reach: rdctl install … --relay HOST",
				"hbbs advertises the relay %s (-r), %s: clients are told to relay there", hp, why)
		}
	}
	for _, set := range []Settings{hbbs, hbbr} {
		for _, p := range set.Untrusted {
			add(FindingEnvFileUntrusted, SeverityWarning, "make it root's and not writable by others (chown root:root, chmod go-w), so the service user cannot change the server's settings",
				"EnvironmentFile %s was not read: rdctl runs as root and does not let a file others can write steer it, so its settings are not checked", p)
		}
	}
	return out
}

// unreachableRelay says why clients cannot use a relay at host, or "".
func unreachableRelay(host deploy.Host, tailnetOnly bool) string {
	h := strings.ToLower(strings.TrimSuffix(string(host), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return "a loopback name: every client would relay to itself"
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "a loopback address: every client would relay to itself"
	case ip.IsUnspecified():
		return "the unspecified address (it is no bind address): no client can reach it"
	case ip.IsLinkLocalUnicast():
		return "a link-local address: only hosts on the server's own link reach it"
	case tailnetOnly:
		return ""
	case tailnetRange(ip):
		return "a tailnet (CGNAT 100.64.0.0/10 or Tailscale ULA) address for a deployment that is not tailnet-only: clients outside the tailnet cannot reach it"
	case ip.IsPrivate():
		return "a private address (RFC 1918 or ULA) for a deployment that is not tailnet-only: clients outside that network cannot reach it"
	}
	return ""
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	tailscaleV6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

func tailnetRange(ip netip.Addr) bool { return cgnat.Contains(ip) || tailscaleV6.Contains(ip) }
