package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
)

// keyInputs is every way someone could paste a secret key into a flag or a
// file: the file's padded base64, unpadded, url-safe, hex, the 32-byte seed
// alone in each encoding, with the newline of $(cat) or echo, cut to 80
// characters (what InputError once echoed), and the public key.
func keyInputs(p keys.Pair) map[string]string {
	std := string(p.SecretFileBytes())
	raw, _ := base64.StdEncoding.DecodeString(std)
	seed := raw[:32]
	return map[string]string{
		"std":             std,
		"std-unpadded":    base64.RawStdEncoding.EncodeToString(raw),
		"url":             base64.URLEncoding.EncodeToString(raw),
		"url-unpadded":    base64.RawURLEncoding.EncodeToString(raw),
		"hex":             hex.EncodeToString(raw),
		"hex-upper":       strings.ToUpper(hex.EncodeToString(raw)),
		"seed-std":        base64.StdEncoding.EncodeToString(seed),
		"seed-unpadded":   base64.RawStdEncoding.EncodeToString(seed),
		"seed-url":        base64.RawURLEncoding.EncodeToString(seed),
		"seed-hex":        hex.EncodeToString(seed),
		"newline":         std + "\n",
		"first-80":        std[:80],
		"public":          p.PublicBase64(),
		"public-unpadded": strings.TrimRight(p.PublicBase64(), "="),
		"std-in-a-path":   "/srv/" + base64.RawURLEncoding.EncodeToString(seed),
		"std-as-a-url":    "https://" + base64.RawURLEncoding.EncodeToString(seed),
		"std-with-a-port": base64.RawURLEncoding.EncodeToString(seed) + ":21116",
	}
}

// leakedForm names the first of secretForms (the leak guard's forms, which
// every private input of keyInputs holds one of) of a secret in pairs that
// out holds.
func leakedForm(out []byte, pairs []keys.Pair) string {
	for _, p := range pairs {
		for i, form := range secretForms(p) {
			if bytes.Contains(out, form) {
				return fmt.Sprintf("secretForms[%d]", i)
			}
		}
	}
	return ""
}

// composite inputs hold a key inside a value that may be valid (a path, a
// URL): they need not be refused, only never printed.
var composite = map[string]bool{"std-in-a-path": true, "std-as-a-url": true, "std-with-a-port": true}

// valueFlag is a flag that takes a value, with the command path it is on.
type valueFlag struct {
	path []string // command names after "rdctl"; empty for a global flag
	name string
}

// valueFlags walks rdctl's command tree: every flag that takes a value, on
// every command, so that a new flag is covered without editing this test.
func valueFlags() (flags []valueFlag, commands [][]string) {
	var walk func(c *cli.Command, path []string)
	walk = func(c *cli.Command, path []string) {
		commands = append(commands, path)
		for _, f := range c.Flags {
			tv, ok := f.(interface{ TakesValue() bool })
			if !ok || !tv.TakesValue() {
				continue
			}
			flags = append(flags, valueFlag{path: path, name: f.Names()[0]})
		}
		for _, sub := range c.Commands {
			walk(sub, append(append([]string{}, path...), sub.Name))
		}
	}
	walk(newApp(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}), nil)
	return flags, commands
}

// leakTree installs an image tree whose record points at 127.0.0.1, so
// that a command that gets as far as probing stays on this host.
func leakTree(t *testing.T) (root string, pair keys.Pair) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "img")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "-q", "install", "systemd", "--root", root, "--relay", "127.0.0.1"}, &out, &out); code != 0 {
		t.Fatalf("install: %s", out.String())
	}
	// A fixed key, so that every run feeds the same encodings: SHA-256 of
	// "rdctl leak test 0", whose standard base64 has '/' and '+' inside
	// (7XSKnL2ZWF/QLwnEremkBGVo+V3T8jJ1/96mTz4XK4o=).
	seed, err := hex.DecodeString("ed748a9cbd99585fd02f09c4ade9a4046568f95dd3f23275ffdea64f3e172b8a")
	noErr(t, err)
	pair, err = keys.FromSeed(seed)
	noErr(t, err)
	wd := filepath.Join(root, "var/lib/rustdesk")
	noErr(t, os.WriteFile(filepath.Join(wd, keys.SecretFile), pair.SecretFileBytes(), 0o600))
	noErr(t, os.WriteFile(filepath.Join(wd, keys.PublicFile), pair.PublicFileBytes(), 0o644))
	return root, pair
}

// runLeak runs rdctl in-process with a deadline and fails t if anything it
// printed holds the secret of pair or of any key under the test's
// directories.
func runLeak(t *testing.T, dirs []string, pair keys.Pair, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, append([]string{"rdctl"}, args...), &out, &out)
	pairs := []keys.Pair{pair}
	for _, d := range dirs {
		pairs = append(pairs, secretsUnder(d)...)
	}
	if form := leakedForm(out.Bytes(), pairs); form != "" {
		t.Errorf("rdctl %s: output holds the secret (%s)", redactArgs(args), form)
	}
	return code
}

// redactArgs shows a command line without the value under test.
func redactArgs(args []string) string {
	var b []string
	for _, a := range args {
		if k, _, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") {
			a = k + "=VALUE"
		} else if len(a) > 20 {
			a = "VALUE"
		}
		b = append(b, a)
	}
	return strings.Join(b, " ")
}

// Every encoding of the secret key, in every flag of every command (and as
// a positional argument), never comes back on stdout or stderr.
func TestSecretInAnyFlagIsNeverPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every command with every flag")
	}
	t.Chdir(t.TempDir()) // a relative path a flag accepts lands here
	cwd, _ := os.Getwd()
	flags, commands := valueFlags()
	if len(flags) < 30 {
		t.Fatalf("found only %d value flags: the walk is broken", len(flags))
	}
	root, pair := leakTree(t)
	inputs := keyInputs(pair)
	names := make([]string, 0, len(inputs))
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := []string{filepath.Dir(root), cwd}
	rejected := 0
	for _, f := range flags {
		for _, n := range names {
			v := inputs[n]
			var args []string
			switch {
			case len(f.path) == 0 && f.name == "root":
				args = []string{"--root=" + v, "status"}
			case len(f.path) == 0:
				args = []string{"--root", root, "--" + f.name + "=" + v, "status"}
			default:
				args = append(append([]string{"--root", root, "--dry-run"}, f.path...), "--"+f.name+"="+v)
			}
			if runLeak(t, dirs, pair, args...) != exitOK {
				rejected++
			}
		}
	}
	for _, c := range commands {
		for _, n := range names {
			runLeak(t, dirs, pair, append(append([]string{"--root", root, "--dry-run"}, c...), inputs[n])...)
		}
	}
	t.Logf("%d value flags × %d encodings (%d runs refused), %d commands with a positional argument", len(flags), len(names), rejected, len(commands))
	if rejected == 0 {
		t.Error("no run was refused: the values did not reach the flags")
	}
}

// recordStringFields lists the string fields of a record (and of its
// compose part) by their TOML names, with a setter.
func recordStringFields(r *deploy.Record) map[string]func(string) {
	out := map[string]func(string){}
	add := func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.Type.Kind() != reflect.String {
				continue
			}
			fv := v.Field(i)
			out[prefix+strings.Split(f.Tag.Get("toml"), ",")[0]] = fv.SetString
		}
	}
	add("", reflect.ValueOf(r).Elem())
	if r.Compose != nil {
		add("compose.", reflect.ValueOf(r.Compose).Elem())
	}
	if r.Proxy != nil {
		add("proxy.", reflect.ValueOf(r.Proxy).Elem())
	}
	return out
}

// Every encoding of the secret key, in every field of the deployment
// record, never comes back on stdout or stderr from the commands that read
// the record.
func TestSecretInAnyRecordFieldIsNeverPrinted(t *testing.T) {
	t.Chdir(t.TempDir())
	root, pair := leakTree(t)
	inputs := keyInputs(pair)
	base, err := deploy.LoadRecord(filepath.Join(root, "etc/rdctl/rdctl.toml"))
	noErr(t, err)
	composeBase := *base
	composeBase.Backend, composeBase.Origin = deploy.BackendCompose, deploy.OriginCompose
	composeBase.Compose = &deploy.ComposeRecord{Dir: "/srv/rustdesk", Image: "rustdesk/rustdesk-server:1.1.16",
		Network: deploy.NetworkHost, Project: "rustdesk", MountTarget: "/root"}
	noErr(t, composeBase.Validate())
	proxyBase := *base
	proxyBase.Proxy = &deploy.ProxyRecord{Kind: deploy.ProxyCaddy, Domain: "rd.example.com", TLS: deploy.TLSAutomatic, Config: "/etc/caddy/rdctl/rustdesk-rd.example.com.caddy"}
	noErr(t, proxyBase.Validate())
	readers := [][]string{{"status"}, {"--json", "status"}, {"export"}, {"export", "--format", "all", "--out", "exported"},
		{"doctor"}, {"check", "--timeout", "1s"}, {"backups", "list"}, {"key", "show"}, {"--dry-run", "rotate"}, {"--dry-run", "upgrade"},
		{"firewall", "--backend", "nftables"}, {"--dry-run", "proxy", "caddy", "--domain", "rd.example.com", "--apply"}}
	fields := 0
	for _, template := range []deploy.Record{*base, composeBase, proxyBase} {
		for field := range recordStringFields(&template) {
			fields++
			for n, v := range inputs {
				rec := template
				if template.Compose != nil {
					c := *template.Compose
					rec.Compose = &c
				}
				if template.Proxy != nil {
					p := *template.Proxy
					rec.Proxy = &p
				}
				recordStringFields(&rec)[field](v)
				data, err := rec.Encode()
				noErr(t, err)
				cfg := filepath.Join(t.TempDir(), "rdctl.toml")
				writeFile(t, cfg, data)
				if !strings.HasPrefix(n, "public") && !composite[n] {
					if err := rec.Validate(); err == nil {
						t.Errorf("record with %s = %s accepted", field, n)
					}
				}
				for _, r := range readers {
					runLeak(t, []string{filepath.Dir(root)}, pair, append([]string{"--root", root, "--config", cfg}, r...)...)
				}
			}
		}
	}
	if fields < 15 {
		t.Fatalf("only %d record fields: the walk is broken", fields)
	}
}

// The walk finds the flags the README documents, so a flag added later is
// fed too.
func TestValueFlagsWalk(t *testing.T) {
	flags, _ := valueFlags()
	have := map[string]bool{}
	for _, f := range flags {
		have[strings.Join(append(append([]string{}, f.path...), "--"+f.name), " ")] = true
	}
	for _, want := range []string{"--root", "--config", "--lock-wait", "export --id-host", "export --key", "check --targets-file", "check --key",
		"install systemd --relay", "install compose --image"} {
		if !have[want] {
			t.Errorf("the walk misses %s", want)
		}
	}
}

// The leak detector must be able to fail: each private input, printed,
// is found.
func TestLeakedFormCatchesEveryInput(t *testing.T) {
	pair, err := keys.FromSeed(bytes.Repeat([]byte{7, 0xe3, 0x5a}, 11)[:32])
	noErr(t, err)
	for n, v := range keyInputs(pair) {
		got := leakedForm([]byte("rdctl: error: "+v+"\n"), []keys.Pair{pair})
		if strings.HasPrefix(n, "public") {
			if got != "" {
				t.Errorf("%s flagged as a leak (%s)", n, got)
			}
		} else if got == "" {
			t.Errorf("%s not caught", n)
		}
	}
}

func TestRedact(t *testing.T) {
	seed, err := hex.DecodeString("ed748a9cbd99585fd02f09c4ade9a4046568f95dd3f23275ffdea64f3e172b8a")
	noErr(t, err)
	pair, err := keys.FromSeed(seed)
	noErr(t, err)
	for n, v := range keyInputs(pair) {
		if strings.HasPrefix(n, "public") {
			continue
		}
		msg := "rdctl: error: invalid --x \"" + v + "\": nope"
		if got := redact(msg); leakedForm([]byte(got), []keys.Pair{pair}) != "" || !strings.Contains(got, "[REDACTED]") {
			t.Errorf("%s: redact left %q", n, got)
		}
	}
	for _, keep := range []string{
		`deployment record "/tmp/TestSecretInAnyRecordFieldIsNeverPrinted1234567/001/img/etc/rdctl/rdctl.toml": no deployment record`,
		"unknown command \"rustdesk-server-production-europe-west\"",
		"see the commands: rdctl install --help",
	} {
		if got := redact(keep); got != keep {
			t.Errorf("redact(%q) = %q", keep, got)
		}
	}
}
