//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/rendezvous"
)

// proxyDomain is the name the certificate is for. It is never looked up:
// the test dials the namespace's address and sends the name as SNI and Host.
const proxyDomain = "rd.test"

// TestProxyRealNginxAndCaddy: the site configurations rdctl proxy writes
// pass the real `nginx -t` and `caddy validate` (Debian's nginx and Caddy),
// and carry the RustDesk WebSocket traffic through real nginx and real
// Caddy with a certificate from a CA the test makes with openssl, to
// stand-in hbbs/hbbr bound to the loopback of a network namespace the test
// makes: TestNat over /ws/id answered with port 0 (the proxy set
// X-Real-IP), a client's forged X-Real-IP never reaching hbbr (the proxy
// overwrote it), a relay pairing over /ws/relay whose bytes cross both
// ways, 404 elsewhere and the redirect from port 80.
func TestProxyRealNginxAndCaddy(t *testing.T) {
	harness.RequireRoot(t)
	nginx := harness.Program(t, "nginx", "nginx")
	caddy := harness.Program(t, "caddy", "caddy")
	openssl := harness.Program(t, "openssl", "openssl")
	start := time.Now()
	rdctl, _ := binaries(t)
	t.Logf("binaries: %v", time.Since(start).Round(time.Millisecond))

	ns := harness.NewNetns(t, "proxy")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// stand-ins on the namespace's loopback, as behind a proxy
	var hbbs, hbbr *hbbstest.Server
	keyDir := t.TempDir()
	if err := ns.Do(func() (err error) {
		if hbbs, err = hbbstest.StartHBBS(ctx, hbbstest.Options{Dir: keyDir, Port: 21116, Bind: "127.0.0.1"}); err != nil {
			return err
		}
		hbbr, err = hbbstest.StartHBBR(ctx, hbbstest.Options{Dir: keyDir, Port: 21117, Bind: "127.0.0.1"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer hbbs.Close()
	defer hbbr.Close()

	pki := makePKI(t, openssl)
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(pki.ca)
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the test CA does not parse")
	}

	// rdctl's configurations, for the deployment's record (an image tree)
	root := t.TempDir()
	runRdctlHost(t, rdctl, "-q", "install", "systemd", "--root", root, "--relay", proxyDomain)
	record := filepath.Join(root, "etc/rdctl/rdctl.toml")
	sites := t.TempDir()
	for _, kind := range []string{"nginx", "caddy"} {
		out := filepath.Join(sites, kind+".conf")
		stderr := runRdctlHost(t, rdctl, "--config", record, "proxy", kind, "--domain", proxyDomain, "--cert", pki.cert, "--cert-key", pki.key, "--out", out)
		want := map[string]string{"nginx": "validated: nginx -t accepted it", "caddy": "validated: caddy validate accepted it"}[kind]
		if !strings.Contains(stderr, want) {
			t.Fatalf("rdctl proxy %s did not validate with the real %s:\n%s", kind, kind, stderr)
		}
		if strings.Contains(stderr, pki.keyText) {
			t.Fatal("rdctl printed the certificate key")
		}
	}

	// Caddy's automatic-TLS site (no --cert): validated by rdctl with the
	// real caddy inside the namespace, where nothing reaches a resolver.
	auto := filepath.Join(sites, "caddy-auto.conf")
	cmd := ns.Command(ctx, rdctl, "--config", record, "proxy", "caddy", "--domain", proxyDomain, "--out", auto)
	cmd.Env = append(os.Environ(), "HOME="+sites)
	if _, stderr, code, err := harness.Run(cmd); err != nil || code != 0 || !strings.Contains(stderr, "validated: caddy validate accepted it") {
		t.Fatalf("rdctl proxy caddy (automatic TLS): exit %d %v\n%s", code, err, stderr)
	}

	forward := func(t *testing.T, label string) {
		c := &proxyClient{addr: netip.AddrPortFrom(ns.NsAddr, 443), pool: pool}
		begin := time.Now()
		// TestNat over /ws/id: port 0, the proxy forwarded the client's address
		w := c.dial(t, "/ws/id", nil)
		w.send(t, rendezvous.Marshal(&rendezvous.TestNatRequest{}))
		msg := w.recv(t)
		w.close()
		if nat, ok := msg.(*rendezvous.TestNatResponse); !ok || nat.Port != 0 {
			t.Errorf("%s: TestNat over /ws/id answered %#v, want port 0", label, msg)
		}
		// a forged X-Real-IP: hbbr sees the proxy's peer address instead
		uuid := "forged-" + label
		f := c.dial(t, "/ws/relay", http.Header{"X-Real-Ip": {"6.6.6.6"}, "X-Forwarded-For": {"6.6.6.7"}})
		f.send(t, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: uuid}))
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		err := hbbr.WaitLog(wctx, "New relay request "+uuid+" from ")
		wcancel()
		f.close()
		line := logLine(hbbr.Log(), "New relay request "+uuid+" from ")
		if err != nil || !strings.HasSuffix(line, " from "+ns.HostAddr.String()+":0") {
			t.Errorf("%s: hbbr saw %q (%v), want the client's address %s with port 0", label, line, err, ns.HostAddr)
		}
		if strings.Contains(hbbr.Log(), "6.6.6.") {
			t.Errorf("%s: the forged X-Real-IP reached hbbr:\n%s", label, hbbr.Log())
		}
		// a relayed session: two /ws/relay connections with one uuid
		uuid = "pair-" + label
		a := c.dial(t, "/ws/relay", nil)
		b := c.dial(t, "/ws/relay", nil)
		a.send(t, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: uuid}))
		b.send(t, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: uuid}))
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := hbbr.WaitLog(pctx, "Relayrequest "+uuid+" got paired"); err != nil {
			t.Fatalf("%s: no pairing: %v\n%s", label, err, hbbr.Log())
		}
		pcancel()
		for _, dir := range []struct {
			from, to *wsConn
			data     string
		}{{a, b, "from a through " + label}, {b, a, "from b through " + label}} {
			dir.from.send(t, []byte(dir.data))
			if got := dir.to.recvRaw(t); string(got) != dir.data {
				t.Errorf("%s: relayed %q, want %q", label, got, dir.data)
			}
		}
		a.close()
		b.close()
		// 404 elsewhere, the redirect from port 80
		if code, _ := c.get(t, "https://"+proxyDomain+"/", 443); code != http.StatusNotFound {
			t.Errorf("%s: / answered %d, want 404", label, code)
		}
		if code, loc := c.get(t, "http://"+proxyDomain+"/ws/id", 80); code/100 != 3 || loc != "https://"+proxyDomain+"/ws/id" {
			t.Errorf("%s: port 80 answered %d %q, want a redirect to https", label, code, loc)
		}
		t.Logf("%s: TestNat, forged header, relay both ways, 404, redirect: %v", label, time.Since(begin).Round(time.Millisecond))
	}

	t.Run("nginx", func(t *testing.T) {
		site, _ := os.ReadFile(filepath.Join(sites, "nginx.conf"))
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "site.conf"), site, 0o644)
		conf := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n    client_body_temp_path %[1]s/body;\n    proxy_temp_path %[1]s/proxy;\n    fastcgi_temp_path %[1]s/fastcgi;\n    uwsgi_temp_path %[1]s/uwsgi;\n    scgi_temp_path %[1]s/scgi;\n    access_log off;\n    include %[1]s/site.conf;\n}\n", dir)
		os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
		out, err := exec.Command(nginx, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")).CombinedOutput()
		t.Logf("nginx -t: %s", bytes.TrimSpace(out))
		if err != nil {
			t.Fatalf("nginx -t: %v", err)
		}
		began := time.Now()
		stop := startInNetns(t, ns, nil, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		defer stop()
		waitTCP(t, netip.AddrPortFrom(ns.NsAddr, 443), filepath.Join(dir, "error.log"))
		t.Logf("nginx up in %v", time.Since(began).Round(time.Millisecond))
		forward(t, "nginx")
	})

	t.Run("caddy", func(t *testing.T) {
		site, _ := os.ReadFile(filepath.Join(sites, "caddy.conf"))
		dir := t.TempDir()
		caddyfile := filepath.Join(dir, "Caddyfile")
		os.WriteFile(caddyfile, site, 0o644)
		env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
		v := exec.Command(caddy, "validate", "--config", caddyfile, "--adapter", "caddyfile")
		v.Env = env
		out, err := v.CombinedOutput()
		t.Logf("caddy validate: %s", lastLine(string(out)))
		if err != nil {
			t.Fatalf("caddy validate: %v\n%s", err, out)
		}
		began := time.Now()
		// Caddy's admin endpoint stays on the namespace's loopback
		// (localhost:2019 there); the certificate is given, so no ACME.
		stop := startInNetns(t, ns, env, caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
		defer stop()
		waitTCP(t, netip.AddrPortFrom(ns.NsAddr, 443), "")
		t.Logf("caddy up in %v", time.Since(began).Round(time.Millisecond))
		forward(t, "caddy")
	})
	t.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

func runRdctlHost(t *testing.T, rdctl string, args ...string) (stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(rdctl, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("rdctl %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
	return errb.String()
}

type pki struct {
	ca, cert, key string
	keyText       string // a line of the key file, to show it never leaks
}

// makePKI makes a test CA and a certificate for proxyDomain signed by it,
// with openssl.
func makePKI(t *testing.T, openssl string) pki {
	t.Helper()
	dir := t.TempDir()
	p := pki{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	ext := filepath.Join(dir, "ext.cnf")
	os.WriteFile(ext, []byte("subjectAltName=DNS:"+proxyDomain+"\n"), 0o644)
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", filepath.Join(dir, "ca-key.pem"), "-out", p.ca, "-days", "2", "-subj", "/CN=rdctl test CA"},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p.key, "-out", filepath.Join(dir, "req.pem"), "-subj", "/CN=" + proxyDomain},
		{"x509", "-req", "-in", filepath.Join(dir, "req.pem"), "-CA", p.ca, "-CAkey", filepath.Join(dir, "ca-key.pem"), "-CAcreateserial", "-out", p.cert, "-days", "2", "-extfile", ext},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	k, _ := os.ReadFile(p.key)
	lines := strings.Split(strings.TrimSpace(string(k)), "\n")
	p.keyText = lines[1]
	return p
}

// startInNetns starts argv in the namespace and returns how to stop it:
// SIGTERM to the PID it started, SIGKILL after 10 s.
func startInNetns(t *testing.T, ns *harness.Netns, env []string, argv ...string) (stop func()) {
	t.Helper()
	cmd := ns.Command(context.Background(), argv...)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(argv[0]), tailText(logs.String(), 30))
		}
	}
}

// waitTCP waits until addr accepts a connection.
func waitTCP(t *testing.T, addr netip.AddrPort, errorLog string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(errorLog)
			t.Fatalf("%s never answered: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyClient speaks to the proxy at addr as a RustDesk client in
// WebSocket mode would: TLS to proxyDomain (SNI and Host) trusting only
// the test CA, the name never resolved.
type proxyClient struct {
	addr netip.AddrPort
	pool *x509.CertPool
}

func (c *proxyClient) dialer(port uint16) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", netip.AddrPortFrom(c.addr.Addr(), port).String())
	}
}

func (c *proxyClient) dial(t *testing.T, path string, header http.Header) *wsConn {
	t.Helper()
	d := ws.Dialer{
		NetDial:   c.dialer(443),
		TLSConfig: &tls.Config{RootCAs: c.pool, ServerName: proxyDomain, MinVersion: tls.VersionTLS12},
		Timeout:   5 * time.Second,
	}
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, br, _, err := d.Dial(context.Background(), "wss://"+proxyDomain+path)
	if err != nil {
		t.Fatalf("wss://%s%s: %v", proxyDomain, path, err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return &wsConn{c: conn, rw: struct {
		io.Reader
		io.Writer
	}{r, conn}}
}

// get makes one HTTP(S) request through the proxy and returns the status
// and Location, without following redirects.
func (c *proxyClient) get(t *testing.T, url string, port uint16) (int, string) {
	t.Helper()
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:     c.dialer(port),
			TLSClientConfig: &tls.Config{RootCAs: c.pool, ServerName: proxyDomain},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

type wsConn struct {
	c  net.Conn
	rw io.ReadWriter
}

func (w *wsConn) send(t *testing.T, payload []byte) {
	t.Helper()
	w.c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientBinary(w.rw, payload); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func (w *wsConn) recvRaw(t *testing.T) []byte {
	t.Helper()
	w.c.SetDeadline(time.Now().Add(5 * time.Second))
	data, op, err := wsutil.ReadServerData(w.rw)
	if err != nil || op != ws.OpBinary {
		t.Fatalf("recv: op %v %v", op, err)
	}
	return data
}

func (w *wsConn) recv(t *testing.T) rendezvous.Message {
	t.Helper()
	m, err := rendezvous.Unmarshal(w.recvRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *wsConn) close() { w.c.Close() }

func logLine(log, prefix string) string {
	s := bufio.NewScanner(strings.NewReader(log))
	for s.Scan() {
		if i := strings.Index(s.Text(), prefix); i >= 0 {
			return s.Text()[i:]
		}
	}
	return ""
}

func tailText(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// guestNginx is where scripts/setup-integration caches Debian's nginx and
// nginx-common for the machines (which have their libraries).
const guestNginx = "/var/cache/rdctl-it/guest-nginx"

// TestProxyApplyLiveNginx runs `rdctl proxy nginx --apply` on a live
// install whose record gives clients other ports (a port forward's), with
// Debian's nginx running under the machine's systemd: the
// site goes into conf.d, nginx -t accepts it, nginx.service is reloaded over
// D-Bus and then carries a check through wss:// (TLS, the key, a relay
// pairing); a re-run changes and reloads nothing; a site nginx -t refuses
// (another site is broken) puts every file back, reloads nothing and leaves
// nginx serving the site it had.
func TestProxyApplyLiveNginx(t *testing.T) {
	openssl := harness.Program(t, "openssl", "openssl")
	debs, _ := filepath.Glob(filepath.Join(guestNginx, "*.deb"))
	if len(debs) < 2 {
		if os.Getenv("CI") != "" {
			t.Fatalf("no cached nginx .debs in %s: run scripts/setup-integration", guestNginx)
		}
		t.Skipf("no cached nginx .debs in %s: run scripts/setup-integration", guestNginx)
	}
	m := serverMachine(t)
	// Clients are given 31116 and 31117, as behind a port forward to the
	// servers' own 21116 and 21117: the site must still proxy to 21118 and
	// 21119, where hbbs and hbbr listen.
	mustRdctl(t, m, "install", "systemd", "--relay", proxyDomain+":31117", "--id-host", proxyDomain+":31116", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	for _, d := range debs {
		if err := m.CopyFile(d, "/root/nginx/"+filepath.Base(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m.MustExec(t, "sh", "-c", "cd /root/nginx && DEBIAN_FRONTEND=noninteractive dpkg -i *.deb >/dev/null 2>&1")
	if !unitActive(t, m, "nginx.service") {
		t.Fatalf("nginx is not running after dpkg -i:\n%s", m.Journal("nginx.service"))
	}
	pki := makePKI(t, openssl)
	for src, dst := range map[string]string{pki.ca: "/etc/rd-tls/ca.pem", pki.cert: "/etc/rd-tls/cert.pem", pki.key: "/etc/rd-tls/key.pem"} {
		if err := m.CopyFile(src, dst, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		Changed   bool `json:"changed"`
		Validated bool `json:"validated"`
		Reloaded  bool `json:"reloaded"`
		Recorded  bool `json:"recorded"`
	}
	apply := func(domain string) (result, string, int) {
		out, errOut, code := rdctlIn(t, m, nil, "--json", "proxy", "nginx", "--domain", domain,
			"--cert", "/etc/rd-tls/cert.pem", "--cert-key", "/etc/rd-tls/key.pem", "--apply")
		if strings.Contains(out+errOut, pki.keyText) {
			t.Fatal("rdctl printed the certificate key")
		}
		var r result
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
		return r, out + errOut, code
	}
	site := "/etc/nginx/conf.d/rustdesk-" + proxyDomain + ".conf"
	// checkThrough checks the server through nginx on 443 inside the
	// machine; a reload takes effect a moment after systemd reports it.
	checkThrough := func(label string) {
		t.Helper()
		var out, errOut string
		var code int
		for range 20 {
			out, errOut, code = rdctlIn(t, m, nil, "check", "--ca-file", "/etc/rd-tls/ca.pem", "--resolve", proxyDomain+":127.0.0.1", "--ws-only", "wss://"+proxyDomain)
			if code == 0 {
				// On the server itself the direct WebSocket ports
				// answer, as nginx needs: a warning, not a failure.
				if !strings.Contains(errOut, "answers over loopback") {
					t.Errorf("%s: no loopback warning for exposed-id:\n%s", label, errOut)
				}
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Errorf("%s: check through nginx: exit %d\n%s\n%s", label, code, out, errOut)
	}

	r, out, code := apply(proxyDomain)
	if code != 0 || !r.Changed || !r.Validated || !r.Reloaded || !r.Recorded {
		t.Fatalf("proxy nginx --apply: exit %d %+v\n%s", code, r, out)
	}
	if _, _, c, _ := m.Exec(t.Context(), "test", "-s", site); c != 0 {
		t.Fatalf("%s not written", site)
	}
	checkThrough("after --apply")

	r, out, code = apply(proxyDomain)
	if code != 0 || r.Changed || r.Reloaded {
		t.Errorf("a re-run: exit %d %+v, want nothing changed or reloaded\n%s", code, r, out)
	}

	// Another site broken: nginx -t refuses, every file is put back.
	m.MustExec(t, "sh", "-c", "echo 'this is not nginx;' >/etc/nginx/conf.d/zz-broken.conf")
	siteBefore := m.MustExec(t, "cat", site)
	recordBefore := m.MustExec(t, "cat", "/etc/rdctl/rdctl.toml")
	_, out, code = apply("rd2.test")
	if code != 1 {
		t.Errorf("apply with nginx -t failing: exit %d, want 1\n%s", code, out)
	}
	if _, _, c, _ := m.Exec(t.Context(), "test", "-e", "/etc/nginx/conf.d/rustdesk-rd2.test.conf"); c == 0 {
		t.Error("the refused site was left in conf.d")
	}
	if got := m.MustExec(t, "cat", site); got != siteBefore {
		t.Error("the working site changed")
	}
	if got := m.MustExec(t, "cat", "/etc/rdctl/rdctl.toml"); got != recordBefore {
		t.Errorf("the record changed:\n%s", got)
	}
	m.MustExec(t, "rm", "/etc/nginx/conf.d/zz-broken.conf")
	if !unitActive(t, m, "nginx.service") {
		t.Error("nginx stopped")
	}
	checkThrough("after the refused --apply")
}
