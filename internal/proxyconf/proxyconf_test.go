package proxyconf

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/golden"
	"github.com/rdctl/rdctl/internal/plan"
)

// goldenSites are the configurations kept under testdata/golden; the
// README's copies are compared with nginx.conf and Caddyfile.
var goldenSites = []struct {
	file string
	site Site
}{
	{"nginx.conf", Site{Kind: Nginx, Domain: "rd.example.com", Cert: "/etc/letsencrypt/live/rd.example.com/fullchain.pem", CertKey: "/etc/letsencrypt/live/rd.example.com/privkey.pem", IDWS: 21118, RelayWS: 21119}},
	{"Caddyfile", Site{Kind: Caddy, Domain: "rd.example.com", IDWS: 21118, RelayWS: 21119}},
	{"Caddyfile-tls", Site{Kind: Caddy, Domain: "rd.example.com", Cert: "/etc/ssl/rd/fullchain.pem", CertKey: "/etc/ssl/rd/privkey.pem", IDWS: 31118, RelayWS: 31120}},
}

func TestGolden(t *testing.T) {
	for _, g := range goldenSites {
		got, err := g.site.Render()
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		path := filepath.Join("testdata", "golden", g.file)
		if *golden.Update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", g.file, got)
		}
	}
}

// What every configuration must say, whatever the template's layout.
func TestRenderedRules(t *testing.T) {
	for _, g := range goldenSites {
		out, _ := g.site.Render()
		s := string(out)
		want := []string{
			"/ws/id", "/ws/relay", "127.0.0.1:" + itoa(g.site.IDWS), "127.0.0.1:" + itoa(g.site.RelayWS), "404",
		}
		if g.site.Kind == Nginx {
			want = append(want, "proxy_set_header X-Real-IP $remote_addr;", "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
				`proxy_set_header Connection "upgrade";`, "proxy_read_timeout 120s;", "proxy_read_timeout 1h;", "return 301 https://",
				"ssl_certificate     "+string(g.site.Cert)+";", "ssl_certificate_key "+string(g.site.CertKey)+";")
		} else {
			want = append(want, "header_up X-Real-IP {remote_host}")
			if g.site.Cert != "" {
				want = append(want, "tls "+string(g.site.Cert)+" "+string(g.site.CertKey))
			} else if strings.Contains(s, "\ttls ") {
				t.Errorf("%s: automatic TLS has a tls directive", g.file)
			}
		}
		for _, w := range want {
			if !strings.Contains(s, w) {
				t.Errorf("%s lacks %q", g.file, w)
			}
		}
		// every proxied location overwrites X-Real-IP
		if n := strings.Count(s, "X-Real-IP $remote_addr") + strings.Count(s, "X-Real-IP {remote_host}"); n != 2 {
			t.Errorf("%s sets X-Real-IP %d times, want once per location", g.file, n)
		}
	}
}

func itoa(p deploy.Port) string { return strconv.Itoa(int(p)) }

func TestSiteValidate(t *testing.T) {
	ok := Site{Kind: Nginx, Domain: "rd.example.com", Cert: "/c.pem", CertKey: "/k.pem", IDWS: 21118, RelayWS: 21119}
	cases := []struct {
		name   string
		mutate func(*Site)
		field  string
	}{
		{"nginx without a certificate", func(s *Site) { s.Cert, s.CertKey = "", "" }, "--cert"},
		{"a certificate without its key", func(s *Site) { s.CertKey = "" }, "--cert"},
		{"an IP domain", func(s *Site) { s.Domain = "192.0.2.1" }, "--domain"},
		{"a domain with a brace", func(s *Site) { s.Domain = "rd.example.com{" }, "--domain"},
		{"a certificate path with a space", func(s *Site) { s.Cert = "/a b.pem" }, "--cert"},
		{"a key path with a semicolon", func(s *Site) { s.CertKey = "/k.pem;evil" }, "--cert-key"},
		{"a relative path", func(s *Site) { s.Cert = "c.pem" }, "--cert"},
		{"an unknown kind", func(s *Site) { s.Kind = "traefik" }, "kind"},
	}
	if _, err := ok.Render(); err != nil {
		t.Fatal(err)
	}
	caddy := ok
	caddy.Kind, caddy.Cert, caddy.CertKey = Caddy, "", ""
	if _, err := caddy.Render(); err != nil {
		t.Fatalf("caddy without a certificate: %v", err)
	}
	for _, c := range cases {
		s := ok
		c.mutate(&s)
		_, err := s.Render()
		var ie *deploy.InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: %v, want an InputError for %s", c.name, err, c.field)
		}
	}
}

// The WebSocket ports are the servers' own + 2: rdctl never starts them
// with -p, so a record's client ports (a port forward) do not move them.
func TestWSPorts(t *testing.T) {
	if id, relay := WSPorts(); id != 21118 || relay != 21119 {
		t.Errorf("%d %d", id, relay)
	}
}

// fakeRunner answers the checker with exit and records the runs; check,
// when set, sees the files the checker would read.
type fakeRunner struct {
	exit  int
	ran   [][]string
	check func()
}

func (f *fakeRunner) LookPath(name string) (string, error) { return "/usr/sbin/" + name, nil }
func (f *fakeRunner) Run(_ context.Context, argv []string) (string, int, error) {
	f.ran = append(f.ran, argv)
	if f.check != nil {
		f.check()
	}
	if f.exit != 0 {
		return "nginx: [emerg] unexpected \"}\" in /etc/nginx/conf.d/x.conf:3\n", f.exit, nil
	}
	return "", 0, nil
}

type fakeReloader struct {
	running bool
	units   []string
}

func (f *fakeReloader) Reload(_ context.Context, unit string) (bool, error) {
	f.units = append(f.units, unit)
	return f.running, nil
}

func run(t *testing.T, in *Install, dry bool) ([]plan.Result, error) {
	t.Helper()
	p := &plan.Plan{}
	p.Add(in.Steps()...)
	return p.Run(dry)
}

func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			m[p] = string(b)
		}
		return nil
	})
	return m
}

// Caddy: the site and the import line are written, validated, reloaded;
// the dry run has the same steps and changes nothing; a re-run changes,
// validates and reloads nothing; the import line is added once.
func TestInstallCaddy(t *testing.T) {
	root := t.TempDir()
	under := func(p string) string { return filepath.Join(root, p) }
	main := under(CaddyMain)
	os.MkdirAll(filepath.Dir(main), 0o755)
	debian := ":80 {\n\troot * /usr/share/caddy\n\tfile_server\n}\n"
	os.WriteFile(main, []byte(debian), 0o644)
	site := Site{Kind: Caddy, Domain: "rd.example.com", IDWS: 21118, RelayWS: 21119}
	data, _ := site.Render()
	layout := LayoutFor(Caddy, site.Domain)

	r, rl := &fakeRunner{}, &fakeReloader{running: true}
	before := tree(t, root)
	dry, err := run(t, NewInstall(context.Background(), layout, data, under, r, rl), true)
	if err != nil || len(r.ran) != 0 || len(rl.units) != 0 {
		t.Fatalf("dry run: %v ran %v reloaded %v", err, r.ran, rl.units)
	}
	if after := tree(t, root); len(after) != len(before) || after[main] != debian {
		t.Fatal("the dry run changed the tree")
	}
	in := NewInstall(context.Background(), layout, data, under, r, rl)
	real, err := run(t, in, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry) != 4 || len(real) != 4 {
		t.Fatalf("steps: dry %+v real %+v", dry, real)
	}
	for i := range dry {
		if dry[i].Action != real[i].Action || dry[i].Target != real[i].Target || dry[i].Changed != real[i].Changed || !real[i].Changed {
			t.Errorf("step %d: dry %+v real %+v", i, dry[i], real[i])
		}
	}
	if !in.Validated || !in.Reloaded || len(r.ran) != 1 || r.ran[0][0] != "caddy" || len(rl.units) != 1 || rl.units[0] != "caddy.service" {
		t.Errorf("validated %v reloaded %v ran %v units %v", in.Validated, in.Reloaded, r.ran, rl.units)
	}
	got, _ := os.ReadFile(main)
	if !strings.HasPrefix(string(got), debian) || strings.Count(string(got), CaddyImport) != 1 {
		t.Errorf("Caddyfile:\n%s", got)
	}
	if s, _ := os.ReadFile(under(layout.Site)); !bytes.Equal(s, data) {
		t.Error("site file differs")
	}
	// again: nothing
	r2, rl2 := &fakeRunner{}, &fakeReloader{running: true}
	again, err := run(t, NewInstall(context.Background(), layout, data, under, r2, rl2), false)
	if err != nil || plan.Changed(again) != 0 || len(r2.ran) != 0 || len(rl2.units) != 0 {
		t.Errorf("re-run: %+v %v ran %v reloaded %v", again, err, r2.ran, rl2.units)
	}
	if got2, _ := os.ReadFile(main); !bytes.Equal(got, got2) {
		t.Error("the re-run changed the Caddyfile")
	}
}

// A configuration the checker refuses: the checker saw the new files, then
// every file is as before (a new one removed), nothing is reloaded, and the
// error is a *ValidationError.
func TestInstallRollsBackARefusedConfig(t *testing.T) {
	for _, previous := range []bool{false, true} {
		root := t.TempDir()
		under := func(p string) string { return filepath.Join(root, p) }
		layout := LayoutFor(Nginx, "rd.example.com")
		old := "# the previous site\n"
		if previous {
			os.MkdirAll(filepath.Dir(under(layout.Site)), 0o755)
			os.WriteFile(under(layout.Site), []byte(old), 0o644)
		}
		before := tree(t, root)
		site := Site{Kind: Nginx, Domain: "rd.example.com", Cert: "/c.pem", CertKey: "/k.pem", IDWS: 21118, RelayWS: 21119}
		data, _ := site.Render()
		sawNew := false
		r := &fakeRunner{exit: 1}
		r.check = func() {
			b, _ := os.ReadFile(under(layout.Site))
			sawNew = bytes.Equal(b, data)
		}
		rl := &fakeReloader{running: true}
		_, err := run(t, NewInstall(context.Background(), layout, data, under, r, rl), false)
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.RollbackErr != nil || !strings.Contains(err.Error(), "previous configuration is back") {
			t.Fatalf("previous=%v: %v", previous, err)
		}
		if !sawNew {
			t.Error("the checker did not see the new configuration")
		}
		if len(rl.units) != 0 {
			t.Error("reloaded after a refused configuration")
		}
		after := tree(t, root)
		if len(after) != len(before) {
			t.Errorf("previous=%v: files %v, want %v", previous, after, before)
		}
		for p, c := range before {
			if after[p] != c {
				t.Errorf("previous=%v: %s not restored", previous, p)
			}
		}
	}
}

// A unit that is not running is not reloaded, and says so.
func TestInstallUnitNotRunning(t *testing.T) {
	root := t.TempDir()
	under := func(p string) string { return filepath.Join(root, p) }
	site := Site{Kind: Nginx, Domain: "rd.example.com", Cert: "/c.pem", CertKey: "/k.pem", IDWS: 21118, RelayWS: 21119}
	data, _ := site.Render()
	rl := &fakeReloader{}
	in := NewInstall(context.Background(), LayoutFor(Nginx, site.Domain), data, under, &fakeRunner{}, rl)
	if _, err := run(t, in, false); err != nil {
		t.Fatal(err)
	}
	if !in.Validated || in.Reloaded || in.Running || len(rl.units) != 1 {
		t.Errorf("validated %v reloaded %v running %v", in.Validated, in.Reloaded, in.Running)
	}
}

// Without a runner and a reloader (an image tree) there are only the file
// steps.
func TestInstallImageTree(t *testing.T) {
	root := t.TempDir()
	under := func(p string) string { return filepath.Join(root, p) }
	in := NewInstall(context.Background(), LayoutFor(Caddy, "rd.example.com"), []byte("x\n"), under, nil, nil)
	if n := len(in.Steps()); n != 2 {
		t.Errorf("%d steps", n)
	}
}

func TestWithImport(t *testing.T) {
	for _, in := range []string{"", ":80 {\n}\n", ":80 {\n}", "x\n  " + CaddyImport + "  \n"} {
		out := withImport([]byte(in), CaddyImport)
		if !hasLine(out, CaddyImport) || strings.Count(string(out), CaddyImport) != 1 || !strings.HasPrefix(string(out), strings.TrimSuffix(in, "\n")) {
			t.Errorf("%q -> %q", in, out)
		}
		if again := withImport(out, CaddyImport); !bytes.Equal(again, out) {
			t.Errorf("%q: not idempotent", in)
		}
	}
}

// The README's copies of the nginx and Caddy sites are the golden files:
// what rdctl proxy writes, byte for byte.
func TestReadmeCopiesAreGolden(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## Behind a TLS reverse proxy\n"
	i := bytes.Index(readme, []byte(heading))
	if i < 0 {
		t.Fatal("README has no section " + strings.TrimSpace(heading))
	}
	section := string(readme[i+len(heading):])
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	for fence, file := range map[string]string{"```nginx\n": "nginx.conf", "```caddyfile\n": "Caddyfile"} {
		k := strings.Index(section, fence)
		if k < 0 {
			t.Errorf("the section has no %q block", strings.TrimSpace(fence))
			continue
		}
		block := section[k+len(fence):]
		block = block[:strings.Index(block, "```")]
		want, err := os.ReadFile(filepath.Join("testdata", "golden", file))
		if err != nil {
			t.Fatal(err)
		}
		if block != string(want) {
			t.Errorf("README's %s block differs from testdata/golden/%s:\n%s", strings.TrimSpace(fence), file, block)
		}
	}
}
