package exporter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
)

const testPub = "7XSKnL2ZWF/QLwnEremkBGVo+V3T8jJ1/96mTz4XK4o="

func noKeyFiles(string) (string, error) { return "", errors.New("no key files here") }

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("m.yml", []byte(`# modules
modules:
  default:
  strict:
    probes: [rendezvous-tcp, nat-test]
    key: `+testPub+`
    timeout: 2s
    strict: true
    tailnet: false
  filed:
    key_file: server.pub
`), func(p string) (string, error) {
		if p != "server.pub" {
			t.Errorf("key file %q", p)
		}
		return testPub, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ModuleNames(); strings.Join(got, ",") != "default,filed,strict" {
		t.Errorf("modules %v", got)
	}
	s := cfg.Modules["strict"]
	if s.Key != testPub || !s.Strict || s.Tailnet || s.Timeout != 2*time.Second ||
		len(s.Probes) != 2 || s.Probes[0] != probe.NATTest || s.Probes[1] != probe.RendezvousTCP {
		t.Errorf("strict module: %+v", s)
	}
	if d := cfg.Modules["default"]; d.Key != "" || d.Timeout != DefaultTimeout || d.Probes != nil {
		t.Errorf("default module: %+v", d)
	}
	if f := cfg.Modules["filed"]; f.Key != testPub || f.KeySource != "server.pub" {
		t.Errorf("filed module: %+v", f)
	}
}

func TestParseConfigErrors(t *testing.T) {
	secret := func() string {
		p, err := keys.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(p.SecretFileBytes())
	}()
	for _, tt := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"empty", "", 0, "empty"},
		{"not yaml", "modules: [\n", 1, "not valid YAML"},
		{"tab indent", "modules:\n\tdefault:\n", 2, "not valid YAML"},
		{"top level list", "- a\n", 1, "top level"},
		{"unknown top key", "modules:\n  a:\nextra: 1\n", 3, `unknown key "extra"`},
		{"no modules", "other: 1\n", 1, "unknown key"},
		{"modules not a map", "modules: 3\n", 1, "mapping of module names"},
		{"no module", "modules: {}\n", 1, "no module"},
		{"bad module name", "modules:\n  \"a b\":\n", 2, "module name"},
		{"duplicate module", "modules:\n  a:\n  a:\n", 3, "defined twice"},
		{"module not a map", "modules:\n  a: 3\n", 2, "must be a mapping"},
		{"unknown setting", "modules:\n  a:\n    probe: [relay]\n", 3, `unknown setting "probe"`},
		{"unknown probe", "modules:\n  a:\n    probes: [relay, nope]\n", 3, `unknown probe "nope"`},
		{"empty probes", "modules:\n  a:\n    probes: []\n", 3, "no probe named"},
		{"probes not a list", "modules:\n  a:\n    probes: relay\n", 3, "list of probe names"},
		{"bad timeout", "modules:\n  a:\n    timeout: soon\n", 3, "timeout"},
		{"zero timeout", "modules:\n  a:\n    timeout: 0s\n", 3, "more than 0"},
		{"long timeout", "modules:\n  a:\n    timeout: 2h\n", 3, "at most"},
		{"bad bool", "modules:\n  a:\n    strict: maybe\n", 3, "true or false"},
		{"bad key", "modules:\n  a:\n\n    key: abc\n", 4, "characters"},
		{"secret key", "modules:\n  a:\n    key: " + secret + "\n", 3, "secret key"},
		{"key and file", "modules:\n  a:\n    key: " + testPub + "\n    key_file: a.pub\n", 4, "exclude"},
		{"secret key file name", "modules:\n  a:\n    key_file: /var/lib/rustdesk/id_ed25519\n", 3, "public key file"},
		{"key file not .pub", "modules:\n  a:\n    key_file: key.txt\n", 3, "public key file"},
		{"key file unreadable", "modules:\n  a:\n    key_file: a.pub\n", 3, "no key files here"},
		{"two documents", "modules:\n  a:\n---\nmodules:\n  b:\n", 3, "more than one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("m.yml", []byte(tt.text), noKeyFiles)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			if ce.Line != tt.line || !strings.Contains(ce.Msg, tt.want) {
				t.Errorf("got line %d %q, want line %d containing %q", ce.Line, ce.Msg, tt.line, tt.want)
			}
			if strings.Contains(err.Error(), secret[:20]) {
				t.Errorf("the error quotes the secret key")
			}
		})
	}
}

func TestLoadConfigKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("server.pub", p.PublicFileBytes())
	write("secret.pub", p.SecretFileBytes()) // a secret under a public name
	write("m.yml", []byte("modules:\n  a:\n    key_file: server.pub\n"))
	cfg, err := LoadConfig(filepath.Join(dir, "m.yml"))
	if err != nil || cfg.Modules["a"].Key != p.PublicBase64() {
		t.Fatalf("relative key_file: %v", err)
	}
	write("m.yml", []byte("modules:\n  a:\n    key_file: secret.pub\n"))
	_, err = LoadConfig(filepath.Join(dir, "m.yml"))
	if err == nil || !strings.Contains(err.Error(), "secret key") || strings.Contains(err.Error(), string(p.SecretFileBytes()[:20])) {
		t.Errorf("secret key in a .pub file: %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "secret.pub")); err == nil {
		t.Error("LoadKeyFile accepted a secret key")
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yml")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestParseAllowList(t *testing.T) {
	a, err := ParseAllowList("10.0.0.0/8, 192.0.2.1 ,Server.Example.,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true}, {"192.0.2.1", true}, {"192.0.2.2", false}, {"::ffff:10.0.0.1", true},
		{"2001:db8::1", true}, {"2001:db9::1", false}, {"0.0.0.0", false}, {"224.0.0.1", false},
	} {
		if got := a.addrAllowed(mustAddr(t, tt.addr)); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.addr, got, tt.want)
		}
	}
	if !a.hostAllowed("server.example") || a.hostAllowed("other.example") {
		t.Error("host entries")
	}
	var none *AllowList
	if !none.addrAllowed(mustAddr(t, "203.0.113.1")) || none.addrAllowed(mustAddr(t, "::")) {
		t.Error("the nil list")
	}
	for _, bad := range []string{"", " , ", "10.0.0.0/33", "host:80", "a b", "10.0.0.0/x"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("modules:\n  default:\n    probes: [relay]\n    timeout: 2s\n"))
	f.Add([]byte("modules:\n  a:\n    key: " + testPub + "\n    strict: true\n"))
	f.Add([]byte("modules: {a: {key_file: x.pub}}"))
	f.Add([]byte("- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yml", data, func(string) (string, error) { return testPub, nil })
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("not a ConfigError: %v", err)
			}
			if strings.ContainsAny(ce.Msg, "\n\r") {
				t.Fatalf("multi-line error %q", ce.Msg)
			}
			return
		}
		if len(cfg.Modules) == 0 {
			t.Fatal("a config without modules")
		}
		for name, m := range cfg.Modules {
			if m.Name != name || m.Timeout <= 0 || m.Timeout > MaxTimeout {
				t.Fatalf("module %q: %+v", name, m)
			}
			if m.Key != "" {
				if _, _, err := keys.ParsePublicArg("k", m.Key); err != nil {
					t.Fatalf("module %q has an invalid key", name)
				}
			}
		}
	})
}
