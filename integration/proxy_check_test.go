//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/hbbstest"
)

// Addresses of the link between the proxy's namespace and the client's
// (TEST-NET-2; the link exists only between the two namespaces).
const (
	proxySrvAddr = "198.51.100.1"
	proxyCliAddr = "198.51.100.2"
	proxyName    = "rd.test"
)

// TestProxyCheck: real nginx and Caddy from Debian, with a CA and
// certificates made by openssl, front the stand-ins in one network
// namespace; rdctl check wss://rd.test runs from a second namespace. The
// working configurations pass every probe; each broken one is reported
// with its own cause and exit 1.
func TestProxyCheck(t *testing.T) {
	harness.RequireRoot(t)
	nginx := harness.Program(t, "nginx", "nginx")
	caddy := harness.Program(t, "caddy", "caddy")
	openssl := harness.Program(t, "openssl", "openssl")
	nft := harness.Program(t, "nft", "nftables")
	ipBin := harness.Program(t, "ip", "iproute2")
	rdctl, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	srv := harness.NewNetns(t, "pxs")
	cli := harness.NewNetns(t, "pxc")
	run := func(argv ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	// A veth pair straight between the two namespaces.
	id := fmt.Sprintf("%06x", time.Now().UnixNano()&0xffffff)
	a, b := "pxa"+id, "pxb"+id
	run(ipBin, "link", "add", a, "netns", srv.Name, "type", "veth", "peer", "name", b, "netns", cli.Name)
	run(ipBin, "-n", srv.Name, "addr", "add", proxySrvAddr+"/30", "dev", a)
	run(ipBin, "-n", cli.Name, "addr", "add", proxyCliAddr+"/30", "dev", b)
	run(ipBin, "-n", srv.Name, "link", "set", a, "up")
	run(ipBin, "-n", cli.Name, "link", "set", b, "up")

	dir := t.TempDir()
	certs := makeProxyCerts(t, ctx, openssl, dir)

	// The stand-ins: hbbs on 21115/21116/21118, hbbr on 21117/21119, all
	// addresses, as the real servers bind; hbbr enforces the key.
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var hbbs, hbbr *hbbstest.Server
	if err := srv.Do(func() error {
		var err error
		if hbbs, err = hbbstest.StartHBBS(ctx, hbbstest.Options{Dir: work, Port: 21116}); err != nil {
			return err
		}
		hbbr, err = hbbstest.StartHBBR(ctx, hbbstest.Options{Dir: work, Port: 21117, Key: new("_")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hbbs.Close(); hbbr.Close() })
	key := hbbs.Key()

	// The firewall a proxied deployment needs: 21118/21119 only from
	// loopback (the proxy).
	firewall := func(on bool) {
		t.Helper()
		srv.Exec(ctx, nft, "delete", "table", "inet", "rdit_proxy") // absent the first time
		if on {
			cmd := srv.Command(ctx, nft, "-f", "-")
			cmd.Stdin = strings.NewReader(`table inet rdit_proxy {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname != "lo" tcp dport { 21118, 21119 } reject with tcp reset
	}
}
`)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("nft: %v\n%s", err, out)
			}
		}
	}
	firewall(true)

	check := func(t *testing.T, caFile string) (int, checkOut) {
		t.Helper()
		cmd := cli.Command(ctx, rdctl, "--root", filepath.Join(dir, "empty"), "--json", "check", "wss://"+proxyName,
			"--resolve", proxyName+":"+proxySrvAddr, "--ca-file", caFile, "--key", key, "--timeout", "3s")
		stdout, stderr, code, err := harness.Run(cmd)
		if err != nil {
			t.Fatalf("rdctl: %v\n%s", err, stderr)
		}
		var out checkOut
		if jerr := json.Unmarshal([]byte(stdout), &out); jerr != nil || len(out.Targets) != 1 {
			t.Fatalf("exit %d, not one target's JSON: %v\n%s\n%s", code, jerr, stdout, stderr)
		}
		t.Logf("exit %d, %.1f ms: %s", code, out.ElapsedMS, out.summary())
		return code, out
	}
	pass := func(t *testing.T) {
		t.Helper()
		code, out := check(t, certs.ca)
		tr := out.Targets[0]
		if code != 0 || !out.OK || tr.KeyStatus != "match" || len(tr.Probes) != 12 {
			t.Fatalf("exit %d: %s", code, out.summary())
		}
		for _, p := range tr.Probes {
			if !p.OK || p.Warning != "" {
				t.Errorf("%s: %+v", p.Name, p)
			}
		}
		if n := tr.probe("proxy-id").Note; !strings.Contains(n, "port 0") {
			t.Errorf("proxy-id: %s", n)
		}
	}
	fails := func(t *testing.T, caFile, probe, cause string) {
		t.Helper()
		code, out := check(t, caFile)
		p := out.Targets[0].probe(probe)
		if code != 1 || out.OK || p.OK || p.Cause != cause || p.Hint == "" {
			t.Fatalf("exit %d, want %s to fail with %s: %+v", code, probe, cause, p)
		}
	}

	t.Run("nginx", func(t *testing.T) {
		conf := nginxSite{cert: certs.rd, key: certs.rdKey, upgrade: true, realIP: true, loc: "/ws/"}
		stop := startNginx(t, ctx, srv, nginx, dir, conf)
		pass(t)
		stop()
		t.Run("no Upgrade headers", func(t *testing.T) {
			c := conf
			c.upgrade = false
			defer startNginx(t, ctx, srv, nginx, dir, c)()
			fails(t, certs.ca, "proxy-id", "bad-gateway")
		})
		t.Run("wrong location", func(t *testing.T) {
			c := conf
			c.loc = "/rustdesk/"
			defer startNginx(t, ctx, srv, nginx, dir, c)()
			fails(t, certs.ca, "proxy-id", "not-routed")
		})
		t.Run("client X-Real-IP passed through", func(t *testing.T) {
			c := conf
			c.realIP = false
			defer startNginx(t, ctx, srv, nginx, dir, c)()
			fails(t, certs.ca, "proxy-real-ip", "real-ip-passed-through")
		})
		t.Run("certificate for another name", func(t *testing.T) {
			c := conf
			c.cert, c.key = certs.other, certs.otherKey
			defer startNginx(t, ctx, srv, nginx, dir, c)()
			fails(t, certs.ca, "proxy-tls", "tls-name")
		})
		t.Run("untrusted CA", func(t *testing.T) {
			defer startNginx(t, ctx, srv, nginx, dir, conf)()
			fails(t, certs.ca2, "proxy-tls", "tls-untrusted")
		})
		t.Run("21118 open directly", func(t *testing.T) {
			defer startNginx(t, ctx, srv, nginx, dir, conf)()
			firewall(false)
			defer firewall(true)
			fails(t, certs.ca, "exposed-id", "ws-port-exposed")
		})
	})
	// The sites rdctl proxy writes (no deployment record: the default
	// WebSocket ports, which the stand-ins use) pass every probe too.
	generated := func(t *testing.T, kind string) string {
		t.Helper()
		out := filepath.Join(dir, "rdctl-"+kind+".site")
		cmd := exec.CommandContext(ctx, rdctl, "--root", filepath.Join(dir, "empty"), "proxy", kind,
			"--domain", proxyName, "--cert", certs.rd, "--cert-key", certs.rdKey, "--out", out)
		if stdout, stderr, code, err := harness.Run(cmd); err != nil || code != 0 {
			t.Fatalf("rdctl proxy %s: exit %d %v\n%s%s", kind, code, err, stdout, stderr)
		}
		return out
	}
	t.Run("nginx, rdctl proxy nginx's site", func(t *testing.T) {
		site := nginxSite{generated: generated(t, "nginx")}
		defer startNginx(t, ctx, srv, nginx, dir, site)()
		pass(t)
	})
	t.Run("caddy, rdctl proxy caddy's site", func(t *testing.T) {
		defer startCaddySite(t, ctx, srv, caddy, dir, certs, true, generated(t, "caddy"))()
		pass(t)
	})
	t.Run("caddy", func(t *testing.T) {
		stop := startCaddy(t, ctx, srv, caddy, dir, certs, true)
		pass(t)
		stop()
		t.Run("client X-Real-IP passed through", func(t *testing.T) {
			defer startCaddy(t, ctx, srv, caddy, dir, certs, false)()
			fails(t, certs.ca, "proxy-real-ip", "real-ip-passed-through")
		})
	})
}

// checkOut is the part of check --json the test reads.
type checkOut struct {
	OK        bool          `json:"ok"`
	ElapsedMS float64       `json:"elapsed_ms"`
	Targets   []targetOutIT `json:"targets"`
}

type targetOutIT struct {
	KeyStatus string       `json:"key_status"`
	Probes    []probeOutIT `json:"probes"`
}

type probeOutIT struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	MS      float64 `json:"ms"`
	Error   string  `json:"error"`
	Note    string  `json:"note"`
	Warning string  `json:"warning"`
	Cause   string  `json:"cause"`
	Hint    string  `json:"hint"`
}

func (o checkOut) summary() string {
	var b strings.Builder
	for _, p := range o.Targets[0].Probes {
		fmt.Fprintf(&b, "\n  %-15s ok=%-5v %7.2f ms %s%s", p.Name, p.OK, p.MS, p.Cause, map[bool]string{true: " " + p.Error, false: ""}[p.Error != ""])
	}
	return b.String()
}

func (tr targetOutIT) probe(name string) probeOutIT {
	for _, p := range tr.Probes {
		if p.Name == name {
			return p
		}
	}
	return probeOutIT{Name: name + " (missing)"}
}

// proxyCerts are the PEM files makeProxyCerts writes.
type proxyCerts struct {
	ca, ca2, rd, rdKey, other, otherKey string
}

// makeProxyCerts makes, with openssl, a CA, a second CA that signs
// nothing the proxy serves, and certificates for rd.test and other.test.
func makeProxyCerts(t *testing.T, ctx context.Context, openssl, dir string) proxyCerts {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	for _, ca := range []string{"ca", "ca2"} {
		run(append(append([]string{"req", "-x509"}, ec...), "-keyout", p(ca+".key"), "-out", p(ca+".pem"), "-days", "30", "-subj", "/CN=rdctl-it "+ca)...)
	}
	for _, name := range []string{"rd", "other"} {
		host := name + ".test"
		run(append(append([]string{"req"}, ec...), "-keyout", p(name+".key"), "-out", p(name+".csr"), "-subj", "/CN="+host)...)
		ext := p(name + ".ext")
		if err := os.WriteFile(ext, []byte("subjectAltName=DNS:"+host+"\nextendedKeyUsage=serverAuth\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run("x509", "-req", "-in", p(name+".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
			"-out", p(name+".pem"), "-days", "30", "-extfile", ext)
	}
	return proxyCerts{ca: p("ca.pem"), ca2: p("ca2.pem"), rd: p("rd.pem"), rdKey: p("rd.key"), other: p("other.pem"), otherKey: p("other.key")}
}

// nginxSite is the site of the reference configuration, or a broken one.
type nginxSite struct {
	cert, key string
	upgrade   bool   // proxy_http_version 1.1 and the Upgrade/Connection headers
	realIP    bool   // X-Real-IP overwritten with $remote_addr
	loc       string // the locations' prefix: "/ws/" works
	// generated, when set, is a site file written by rdctl proxy nginx,
	// included in place of the test's own server block.
	generated string
}

func (s nginxSite) conf(dir string) string {
	if s.generated != "" {
		return fmt.Sprintf(`worker_processes 1;
user nobody nogroup;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 256; }
http {
	access_log %[1]s/nginx-access.log;
	client_body_temp_path %[1]s/nginx-tmp/body;
	proxy_temp_path %[1]s/nginx-tmp/proxy;
	fastcgi_temp_path %[1]s/nginx-tmp/fastcgi;
	uwsgi_temp_path %[1]s/nginx-tmp/uwsgi;
	scgi_temp_path %[1]s/nginx-tmp/scgi;
	include %[2]s;
}
`, dir, s.generated)
	}
	var loc strings.Builder
	for _, l := range []struct{ path, port, timeout string }{{"id", "21118", "120s"}, {"relay", "21119", "1h"}} {
		fmt.Fprintf(&loc, "\t\tlocation %s%s {\n\t\t\tproxy_pass http://127.0.0.1:%s;\n", s.loc, l.path, l.port)
		if s.upgrade {
			loc.WriteString("\t\t\tproxy_http_version 1.1;\n\t\t\tproxy_set_header Upgrade $http_upgrade;\n\t\t\tproxy_set_header Connection \"upgrade\";\n")
		}
		loc.WriteString("\t\t\tproxy_set_header Host $host;\n")
		if s.realIP {
			loc.WriteString("\t\t\tproxy_set_header X-Real-IP $remote_addr;\n")
		}
		fmt.Fprintf(&loc, "\t\t\tproxy_read_timeout %s;\n\t\t\tproxy_send_timeout %s;\n\t\t}\n", l.timeout, l.timeout)
	}
	return fmt.Sprintf(`worker_processes 1;
user nobody nogroup;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 256; }
http {
	access_log %[1]s/nginx-access.log;
	client_body_temp_path %[1]s/nginx-tmp/body;
	proxy_temp_path %[1]s/nginx-tmp/proxy;
	fastcgi_temp_path %[1]s/nginx-tmp/fastcgi;
	uwsgi_temp_path %[1]s/nginx-tmp/uwsgi;
	scgi_temp_path %[1]s/nginx-tmp/scgi;
	server {
		listen %[2]s:443 ssl;
		server_name %[3]s;
		ssl_certificate %[4]s;
		ssl_certificate_key %[5]s;
%[6]s		location / { return 404; }
	}
}
`, dir, proxySrvAddr, proxyName, s.cert, s.key, loc.String())
}

// startNginx runs nginx in the namespace in the foreground (its pid, log
// and temp files under dir/nginx), waits until it accepts on 443 and
// returns the function that stops it by its PID.
func startNginx(t *testing.T, ctx context.Context, ns *harness.Netns, nginx, dir string, site nginxSite) func() {
	t.Helper()
	d := filepath.Join(dir, "nginx")
	os.RemoveAll(d)
	if err := os.MkdirAll(filepath.Join(d, "nginx-tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(conf, []byte(site.conf(d)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(ctx, nginx, "-e", filepath.Join(d, "nginx-error.log"), "-p", d, "-c", conf, "-g", "daemon off;")
	return startProxyProcess(t, ns, cmd, "nginx", filepath.Join(d, "nginx-error.log"))
}

// startCaddy runs Caddy in the namespace with the reference Caddyfile
// (header_up X-Real-IP when realIP), the admin endpoint off, no automatic
// HTTPS and its data, config and storage under dir/caddy.
func startCaddy(t *testing.T, ctx context.Context, ns *harness.Netns, caddy, dir string, certs proxyCerts, realIP bool) func() {
	return startCaddySite(t, ctx, ns, caddy, dir, certs, realIP, "")
}

// startCaddySite is startCaddy with, when generated is set, that site file
// (written by rdctl proxy caddy) imported in place of the test's own site.
func startCaddySite(t *testing.T, ctx context.Context, ns *harness.Netns, caddy, dir string, certs proxyCerts, realIP bool, generated string) func() {
	t.Helper()
	d := filepath.Join(dir, "caddy")
	os.RemoveAll(d)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	header := ""
	if realIP {
		header = "\t\t\theader_up X-Real-IP {remote_host}\n"
	}
	site := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/storage
}
https://%[2]s:443 {
	bind %[3]s
	tls %[4]s %[5]s
	handle /ws/id* {
		reverse_proxy 127.0.0.1:21118 {
%[6]s		}
	}
	handle /ws/relay* {
		reverse_proxy 127.0.0.1:21119 {
%[6]s		}
	}
	handle {
		respond 404
	}
}
`, d, proxyName, proxySrvAddr, certs.rd, certs.rdKey, header)
	if generated != "" {
		site = fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s/storage\n}\nimport %s\n", d, generated)
	}
	conf := filepath.Join(d, "Caddyfile")
	if err := os.WriteFile(conf, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(ctx, caddy, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = []string{"HOME=" + d, "XDG_DATA_HOME=" + d + "/data", "XDG_CONFIG_HOME=" + d + "/config", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return startProxyProcess(t, ns, cmd, "caddy", "")
}

// startProxyProcess starts cmd, waits until the namespace accepts on
// proxySrvAddr:443 and returns the function that stops it by its PID
// (SIGTERM, then SIGKILL after 10 s) and waits for it.
func startProxyProcess(t *testing.T, ns *harness.Netns, cmd *exec.Cmd, name, logFile string) func() {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		select {
		case <-exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(proxySrvAddr, "443"), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return stop
		}
		select {
		case <-exited:
			logText, _ := os.ReadFile(logFile)
			t.Fatalf("%s exited: %v\n%s\n%s", name, waitErr, out.String(), logText)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted on 443: %v\n%s", name, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
