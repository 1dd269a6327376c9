package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"syscall"

	"github.com/rdctl/rdctl/internal/fleet"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// proxyFlags are check's flags for servers behind a WebSocket reverse
// proxy (ws:// and wss:// targets); --resolve works for every target.
type proxyFlags struct {
	wsOnly  bool
	caFile  string
	resolve []string
}

// maxCAFile bounds --ca-file: a bundle of every public root is about
// 220 KiB.
const maxCAFile = 1 << 20

// apply validates --ca-file and --resolve into opts (exit 2 on any
// problem, before anything is sent).
func (f proxyFlags) apply(e *env, opts *probe.Options) error {
	opts.WSOnly = f.wsOnly
	if f.caFile != "" {
		pool, err := loadCAFile(f.caFile)
		if err != nil {
			return err
		}
		opts.RootCAs = pool
	}
	for _, v := range f.resolve {
		host, addr, err := fleet.ParseResolve(v)
		if err != nil {
			return &usageError{msg: err.Error()}
		}
		if opts.Resolve == nil {
			opts.Resolve = map[string]netip.Addr{}
		}
		if old, ok := opts.Resolve[host]; ok && old != addr {
			return usageErrorf("--resolve gives %s two addresses (%s and %s)", host, old, addr)
		}
		opts.Resolve[host] = addr
	}
	return nil
}

// validate checks the flags against the targets: --ws-only needs a
// proxied target, every --resolve name must be a target's host.
func (f proxyFlags) validate(e *env, targets []probe.Target, selected []probe.Name) error {
	proxied, wss := false, false
	hosts := map[string]bool{}
	for _, t := range targets {
		proxied = proxied || t.Proxied()
		wss = wss || t.Proxy == "wss"
		hosts[probe.NormalizeHost(t.Host)] = true
		if t.RelayHost != "" {
			hosts[probe.NormalizeHost(t.RelayHost)] = true
		}
	}
	if f.wsOnly && !proxied {
		return withHints(usageErrorf("--ws-only applies to ws:// and wss:// targets, and none was given"),
			"name the proxy: rdctl check --ws-only wss://rd.example.com")
	}
	for _, v := range f.resolve {
		host, _, _ := fleet.ParseResolve(v) // apply accepted it
		if !hosts[host] {
			return usageErrorf("--resolve names %s, which no target uses", host)
		}
	}
	if selected != nil {
		for _, t := range targets {
			if !slices.ContainsFunc(selected, func(n probe.Name) bool { return applies(n, t, f.wsOnly) }) {
				return usageErrorf("--ports selects no probe that applies to %s", textsafe.Escape(t.String()))
			}
		}
	}
	if f.caFile != "" && !wss {
		e.warnf("--ca-file is used only for wss:// targets, and none was given")
	}
	return nil
}

// loadCAFile reads a PEM bundle of CA certificates: at most maxCAFile
// bytes of a regular file, every block a certificate that parses, at least
// one. Any problem is bad input (exit 2).
func loadCAFile(path string) (*x509.CertPool, error) {
	bad := func(format string, a ...any) error {
		return usageErrorf("--ca-file %s: %s", textsafe.Echo(path), fmt.Sprintf(format, a...))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, bad("%v", pe.Err)
		}
		return nil, bad("%v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	switch {
	case err != nil:
		return nil, bad("%v", err)
	case len(data) > maxCAFile:
		return nil, bad("larger than %d bytes", maxCAFile)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return nil, bad("PEM block %d is %s, not a CERTIFICATE", n, textsafe.Echo(b.Type))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, bad("certificate %d: %v", n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return nil, bad("no PEM certificate in it")
	}
	return pool, nil
}

// proxyHint is the hint for a proxied target's failure cause ("" for
// none): what to fix, naming the command that does it.
func proxyHint(c probe.Cause, t probe.Target) string {
	h := t.Host
	gen := "rdctl proxy nginx --domain " + h + " (or rdctl proxy caddy)"
	switch c {
	case probe.CauseTLSName:
		return "the proxy needs a certificate for " + h + ": " + gen + " --cert FULLCHAIN --cert-key KEY"
	case probe.CauseTLSUntrusted:
		return "clients refuse it unless allow-insecure-tls-fallback=Y (client 1.4.4+); use a certificate from a public CA, or for a private CA: rdctl check " + t.String() + " --ca-file CA.pem"
	case probe.CauseTLSExpired:
		return "renew the certificate (certbot renew) and reload the proxy"
	case probe.CauseTLSFailed:
		return "the proxy needs TLS 1.2 or later and a certificate for " + h + ": " + gen
	case probe.CauseNotTLS:
		return "this port serves plain HTTP: check it as ws://" + h + ", or serve TLS: " + gen
	case probe.CauseClosedEmpty:
		return "hbbs's and hbbr's own WebSocket ports (21118/21119) speak plain ws:// only; put a TLS proxy in front: " + gen
	case probe.CauseRedirect:
		return "clients use ws:// on port 80 when api-server is empty or starts with http:; give them api-server = https://" + h + " so they use wss://, then: rdctl check wss://" + h
	case probe.CausePlainHTTPToTLS:
		return "this port speaks TLS: rdctl check wss://" + h
	case probe.CauseNotRouted:
		return "route /ws/id to hbbs's WebSocket port (21118) and /ws/relay to hbbr's (21119): " + gen
	case probe.CauseBadGateway:
		return "forward the upgrade (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\") and check hbbs/hbbr listen on 21118/21119 (rdctl status): " + gen
	case probe.CauseUpgradeRefused:
		return "the proxy must pass the WebSocket upgrade to hbbs and hbbr: " + gen
	case probe.CauseRelayNotDelivered:
		return "route /ws/relay to hbbr's WebSocket port (21119) with a long read timeout: " + gen
	case probe.CauseRelayRejected:
		return "hbbr checks another key (-k) or blocks this address; see the key it should serve: rdctl key show, and rdctl doctor"
	case probe.CauseRelayToHBBS:
		return "route /ws/relay to hbbr's WebSocket port (21119), not hbbs's (21118): " + gen
	case probe.CauseRealIPForgeable:
		return "make the proxy overwrite X-Real-IP (nginx: proxy_set_header X-Real-IP $remote_addr; Caddy: header_up X-Real-IP {remote_host}): " + gen
	case probe.CauseExposed:
		return "close 21118 and 21119 to everything but the proxy: sudo rdctl firewall --apply --proxy"
	}
	return ""
}

// printProxyNotes says what --ws-only left out, and repeats the proxied
// probes' warnings on stderr.
func printProxyNotes(e *env, out checkJSON) {
	var seen []string
	for _, t := range out.Targets {
		for _, p := range t.Probes {
			if p.Warning != "" && !slices.Contains(seen, p.Warning) {
				seen = append(seen, p.Warning)
				e.warnf("%s: %s: %s", t.Target, p.Name, p.Warning)
			}
		}
	}
	if out.WSOnly && !e.quiet {
		e.printf("\n--ws-only: the direct ports were not probed. With the open-source hbbs/hbbr, devices that must be controlled still need UDP and TCP 21116, TCP 21117 and TCP 21115; only controlling clients and the web client can use the proxy alone.\n")
	}
}

// printProxyHints prints each distinct hint of the failed probes once.
func printProxyHints(e *env, out checkJSON) {
	var seen []string
	for _, t := range out.Targets {
		for _, p := range t.Probes {
			if !p.OK && p.Hint != "" && !slices.Contains(seen, p.Hint) {
				seen = append(seen, p.Hint)
				e.hintf("%s: %s", p.Name, p.Hint)
			}
		}
	}
}

// applies says whether probe n runs for target t.
func applies(n probe.Name, t probe.Target, wsOnly bool) bool {
	switch {
	case !t.Proxied():
		return slices.Contains(probe.Names(), n)
	case n == probe.ProxyTLS:
		return t.Proxy == "wss"
	case slices.Contains(probe.ProxyNames(), n):
		return true
	}
	return !wsOnly && slices.Contains(probe.DirectNames(), n)
}
