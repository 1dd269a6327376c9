package adopt

import (
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Each lint with a case that fires and one that must not.
func TestLintSettings(t *testing.T) {
	env := func(where string, kv ...string) envVars {
		var out envVars
		for _, s := range kv {
			k, v, _ := strings.Cut(s, "=")
			out = append(out, envVar{Name: k, Value: v, Where: where})
		}
		return out
	}
	relays := func(s string) []deploy.HostPort {
		hps, err := deploy.ParseRelays("relay", s)
		if err != nil {
			t.Fatal(err)
		}
		return hps
	}
	public := relays("rd.example.com")
	for _, c := range []struct {
		name        string
		hbbs, hbbr  Settings
		relays      []deploy.HostPort
		tailnetOnly bool
		want        []string // IDs, in order
		contains    string
	}{
		{"nothing set", Settings{}, Settings{}, public, false, nil, ""},
		{"bandwidth with a unit", Settings{}, Settings{Env: env("Environment= in hbbr.service", "LIMIT_SPEED=400Mb/s")}, public, false,
			[]string{FindingSettingBandwidth}, "LIMIT_SPEED=400Mb/s in Environment= in hbbr.service is not a bare number"},
		{"bandwidth in .env with a space", Settings{}, Settings{Dot: env("/srv/.env", "TOTAL_BANDWIDTH=1 000")}, public, false,
			[]string{FindingSettingBandwidth}, "the default 1024 Mb/s stays"},
		{"bandwidth word", Settings{}, Settings{Env: env("f", "DOWNGRADE_START_CHECK=half an hour")}, public, false, []string{FindingSettingBandwidth}, "write a bare number"},
		{"bandwidth numbers", Settings{}, Settings{Env: env("f", "LIMIT_SPEED=400", "TOTAL_BANDWIDTH=1e3", "SINGLE_BANDWIDTH=.5",
			"DOWNGRADE_THRESHOLD=0.66", "DOWNGRADE_START_CHECK=+1800.", "LIMIT_SPEED=inf")}, public, false, nil, ""},
		{"bandwidth on hbbs is not hbbr's", Settings{Env: env("f", "LIMIT_SPEED=400Mb/s")}, Settings{}, public, false, nil, ""},
		{"RUST_LOG only in .env", Settings{Dot: env("/var/lib/rustdesk/.env", "RUST_LOG=debug")}, Settings{}, public, false,
			[]string{FindingSettingRustLog}, "hbbs starts its logger before it reads .env"},
		{"RUST_LOG in the environment too", Settings{Env: env("u", "RUST_LOG=info"), Dot: env("d", "RUST_LOG=debug")}, Settings{}, public, false, nil, ""},
		{"RUST_LOG in the environment", Settings{Env: env("u", "RUST_LOG=debug")}, Settings{Env: env("u", "RUST_LOG=debug")}, public, false, nil, ""},
		{"ALWAYS_USE_RELAY=yes", Settings{Env: env("u", "ALWAYS_USE_RELAY=yes")}, Settings{}, public, false,
			[]string{FindingSettingAlwaysUseRelay}, "neither Y nor N"},
		{"ALWAYS_USE_RELAY=Y", Settings{Env: env("u", "ALWAYS_USE_RELAY=Y")}, Settings{}, public, false, nil, ""},
		{"ALWAYS_USE_RELAY=N", Settings{Env: env("u", "ALWAYS_USE_RELAY=N")}, Settings{}, public, false, nil, ""},
		{"ALWAYS_USE_RELAY only in .env", Settings{Dot: env("d", "ALWAYS_USE_RELAY=Y")}, Settings{}, public, false,
			[]string{FindingSettingAlwaysUseRelay}, "does nothing there"},
		{"relay localhost", Settings{}, Settings{}, relays("localhost"), false, []string{FindingSettingRelayAddress}, "loopback name"},
		{"relay 127.0.0.1 even tailnet-only", Settings{}, Settings{}, relays("127.0.0.1"), true, []string{FindingSettingRelayAddress}, "loopback address"},
		{"relay ::1", Settings{}, Settings{}, relays("[::1]:21117"), false, []string{FindingSettingRelayAddress}, "loopback"},
		{"relay 0.0.0.0", Settings{}, Settings{}, relays("0.0.0.0"), false, []string{FindingSettingRelayAddress}, "unspecified"},
		{"relay RFC 1918, public", Settings{}, Settings{}, relays("rd.example.com,192.168.1.10"), false, []string{FindingSettingRelayAddress}, "192.168.1.10:21117"},
		{"relay ULA, public", Settings{}, Settings{}, relays("[fd00::5]"), false, []string{FindingSettingRelayAddress}, "private"},
		{"relay CGNAT, public", Settings{}, Settings{}, relays("100.101.102.103"), false, []string{FindingSettingRelayAddress}, "tailnet"},
		{"relay CGNAT, tailnet-only", Settings{}, Settings{}, relays("100.101.102.103,rd.tail1234.ts.net"), true, nil, ""},
		{"relay RFC 1918, tailnet-only", Settings{}, Settings{}, relays("10.0.0.5"), true, nil, ""},
		{"relay public address", Settings{}, Settings{}, relays("203.0.113.7,[2001:db8::1]"), false, nil, ""},
		{"untrusted EnvironmentFile", Settings{Untrusted: []string{"/srv/env (owned by uid 998)"}}, Settings{}, public, false,
			[]string{FindingEnvFileUntrusted}, "was not read"},
	} {
		fs := LintSettings(c.hbbs, c.hbbr, c.relays, c.tailnetOnly)
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.ID)
			if f.Hint == "" || f.Severity != SeverityWarning {
				t.Errorf("%s: %+v: no hint or not a warning", c.name, f)
			}
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s: %v, want %v: %+v", c.name, ids, c.want, fs)
			continue
		}
		if c.contains != "" && !strings.Contains(fs[0].Message+" "+fs[0].Hint, c.contains) {
			t.Errorf("%s: %q lacks %q", c.name, fs[0].Message+" "+fs[0].Hint, c.contains)
		}
	}
}

// What the lints echo from a file is escaped, and a key is never echoed.
func TestLintSettingsEscapes(t *testing.T) {
	fs := LintSettings(Settings{}, Settings{Dot: parseEnvFile([]byte("LIMIT_SPEED=4\x1b[2J\nKEY=x\n")).from("d")}, nil, false)
	if len(fs) != 1 || strings.Contains(fs[0].Message, "\x1b") || !strings.Contains(fs[0].Message, `4\x1b[2J`) || !strings.Contains(fs[0].Hint, "LIMIT_SPEED=4 ") {
		t.Fatalf("%+v", fs)
	}
}

// FuzzLintSettings: any .env or EnvironmentFile, read by the one env-file
// parser, lints without panicking, never echoes a control character and
// never mentions KEY's value.
func FuzzLintSettings(f *testing.F) {
	for _, s := range []string{"LIMIT_SPEED=400Mb/s\n", "RUST_LOG=debug\nALWAYS_USE_RELAY=yes\n", "KEY=secretvalue\nTOTAL_BANDWIDTH=x\n", "export SINGLE_BANDWIDTH='1 0'\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars := parseEnvFile(data).from("f")
		set := Settings{Env: vars, Dot: vars}
		key, hasKey := vars.exact("KEY")
		for _, fd := range LintSettings(set, set, nil, false) {
			if strings.ContainsFunc(fd.Message, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("control character in %q", fd.Message)
			}
			if hasKey && len(key) >= 8 && strings.Contains(fd.Message, key) && !strings.Contains(string(data), "="+key+"\n"+key) {
				// a key may only appear where another setting's value equals it
				for _, v := range vars {
					if v.Name != "KEY" && strings.Contains(v.Value, key) {
						return
					}
				}
				t.Fatalf("KEY's value in %q", fd.Message)
			}
		}
		if got := ParseEnvFile(data); len(got) != len(vars) {
			t.Fatalf("ParseEnvFile gives %d assignments, the parser %d", len(got), len(vars))
		}
	})
}
