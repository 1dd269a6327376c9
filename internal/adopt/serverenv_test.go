package adopt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
)

// nonCanonical re-spells a base64 string with a last data symbol whose
// unused low bits are set: hbbs's decoder refuses it.
func nonCanonical(b64 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(strings.TrimRight(b64, "=")) - 1
	return b64[:i] + string(alphabet[strings.IndexByte(alphabet, b64[i])|1]) + b64[i+1:]
}

// inspectUnits writes a hbbs and a hbbr unit (and hbbr's or the shared
// .env) under a new root and inspects them.
func inspectUnits(t *testing.T, hbbs, hbbr, dotenv string, dotMode os.FileMode) *Install {
	t.Helper()
	root := t.TempDir()
	unit := "[Service]\nWorkingDirectory=/srv/rd\nUser=rd\n"
	write(t, root, "/etc/systemd/system/rustdesk-hbbs.service", unit+hbbs+"\n", 0o644)
	write(t, root, "/etc/systemd/system/rustdesk-hbbr.service", unit+hbbr+"\n", 0o644)
	if dotenv != "" {
		write(t, root, "/srv/rd/.env", dotenv, dotMode)
	}
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// An unpadded secret (hbbs 1.1.16 loads it) given directly is a secret, not a
// literal: key-not-from-file and secret-exposed, and no "signs nothing"
// warning. (rdctl used to call it a literal.)
func TestUnpaddedSecretGivenDirectly(t *testing.T) {
	p, _ := keys.Generate(nil)
	for _, secret := range []string{string(p.SecretFileBytes()[:86]), string(p.SecretFileBytes()[:87])} {
		for _, tc := range []struct {
			name, hbbs, env string
			where           string
		}{
			{name: "-k", hbbs: "ExecStart=/usr/bin/hbbs -k " + secret, where: "command line"},
			{name: "--key=", hbbs: "ExecStart=/usr/bin/hbbs --key=" + secret, where: "command line"},
			{name: "Environment=", hbbs: "ExecStart=/usr/bin/hbbs\nEnvironment=KEY=" + secret, where: "world-readable"},
			{name: ".env", hbbs: "ExecStart=/usr/bin/hbbs", env: "KEY=" + secret + "\n", where: ".env (mode 0644)"},
		} {
			t.Run(tc.name+"/"+map[int]string{86: "no padding", 87: "one ="}[len(secret)], func(t *testing.T) {
				in := inspectUnits(t, tc.hbbs, "ExecStart=/usr/bin/hbbr -k _", tc.env, 0o644)
				if in.HBBS.Key != KeySecret {
					t.Errorf("hbbs key %s, want %s", in.HBBS.Key, KeySecret)
				}
				wantFindings(t, in, "key-not-from-file", "secret-exposed")
				noFindings(t, in, "hbbs-key-no-signing")
				exposedHere := false
				for _, f := range in.Findings {
					exposedHere = exposedHere || (f.ID == "secret-exposed" && strings.Contains(f.Message, tc.where))
				}
				if !exposedHere {
					t.Errorf("secret-exposed does not say %q: %v", tc.where, in.Findings)
				}
				out, _ := json.Marshal(in)
				if strings.Contains(string(out), secret[:40]) {
					t.Fatal("the secret key appears in the install's JSON")
				}
			})
		}
	}
	// What hbbs refuses to decode is no secret to it: a literal string,
	// enforced, signing nothing.
	in := inspectUnits(t, "ExecStart=/usr/bin/hbbs -k "+nonCanonical(string(p.SecretFileBytes()[:86])), "ExecStart=/usr/bin/hbbr -k _", "", 0)
	if in.HBBS.Key != KeyLiteral {
		t.Errorf("set bits past the data: hbbs key %s, want %s", in.HBBS.Key, KeyLiteral)
	}
	wantFindings(t, in, "hbbs-key-no-signing")
	noFindings(t, in, "key-not-from-file")
}

// Which names each server reads (as measured on 1.1.16): hbbr reads KEY by
// its exact name from its environment and its .env, hbbs normalises its
// .env's names but reads its environment by the exact name, and .env
// overrides hbbs's environment.
func TestServerEnvNames(t *testing.T) {
	for _, tc := range []struct {
		name             string
		hbbs, hbbr, env  string
		hbbsKey, hbbrKey KeyKind
		hbbsSrc, hbbrSrc string
		want, unwanted   []string
	}{
		{name: "hbbr .env key= is ignored", hbbr: "", env: "key=_\n",
			hbbsKey: KeyFile, hbbsSrc: ".env", hbbrKey: KeyNone, hbbrSrc: "default",
			want: []string{"hbbr-key-unenforced"}},
		{name: "hbbr .env Key= is ignored", env: "Key=_\n",
			hbbsKey: KeyFile, hbbsSrc: ".env", hbbrKey: KeyNone, hbbrSrc: "default",
			want: []string{"hbbr-key-unenforced"}},
		{name: "hbbr .env KEY= counts", env: "KEY=_\n",
			hbbsKey: KeyFile, hbbsSrc: ".env", hbbrKey: KeyFile, hbbrSrc: ".env",
			unwanted: []string{"hbbr-key-unenforced"}},
		{name: "Environment=key= is ignored by both", hbbs: "Environment=key=", hbbr: "Environment=key=_",
			hbbsKey: KeyDefault, hbbsSrc: "default", hbbrKey: KeyNone, hbbrSrc: "default",
			want: []string{"hbbr-key-unenforced"}, unwanted: []string{"hbbs-key-unenforced"}},
		{name: "Environment=KEY= counts for both", hbbs: "Environment=KEY=", hbbr: "Environment=KEY=_",
			hbbsKey: KeyEmpty, hbbsSrc: "Environment=", hbbrKey: KeyFile, hbbrSrc: "Environment=",
			want: []string{"hbbs-key-unenforced"}, unwanted: []string{"hbbr-key-unenforced"}},
		{name: "hbbs's .env overrides its environment, hbbr's does not", hbbs: "Environment=KEY=_", hbbr: "Environment=KEY=_", env: "KEY=\n",
			hbbsKey: KeyEmpty, hbbsSrc: ".env", hbbrKey: KeyFile, hbbrSrc: "Environment=",
			want: []string{"hbbs-key-unenforced"}, unwanted: []string{"hbbr-key-unenforced"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inspectUnits(t, "ExecStart=/usr/bin/hbbs\n"+tc.hbbs, "ExecStart=/usr/bin/hbbr\n"+tc.hbbr, tc.env, 0o600)
			if in.HBBS.Key != tc.hbbsKey || in.HBBS.KeySource != tc.hbbsSrc {
				t.Errorf("hbbs key %s from %s, want %s from %s", in.HBBS.Key, in.HBBS.KeySource, tc.hbbsKey, tc.hbbsSrc)
			}
			if in.HBBR.Key != tc.hbbrKey || in.HBBR.KeySource != tc.hbbrSrc {
				t.Errorf("hbbr key %s from %s, want %s from %s", in.HBBR.Key, in.HBBR.KeySource, tc.hbbrKey, tc.hbbrSrc)
			}
			wantFindings(t, in, tc.want...)
			noFindings(t, in, tc.unwanted...)
		})
	}
}

// hbbs reads the relay from its .env by any spelling, but from its
// environment only as RELAY-SERVERS (1.1.16's init_args).
func TestRelayEnvNames(t *testing.T) {
	for _, tc := range []struct {
		name, hbbs, env string
		relay, source   string
	}{
		{name: ".env, underscores", env: "RELAY_SERVERS=a.example\n", relay: "a.example:21117", source: ".env"},
		{name: "Environment=, dashes", hbbs: "Environment=RELAY-SERVERS=b.example", relay: "b.example:21117", source: "Environment="},
		{name: "Environment=, underscores: ignored", hbbs: "Environment=RELAY_SERVERS=c.example"},
		{name: "Environment=, lower case: ignored", hbbs: "Environment=relay-servers=c.example"},
		{name: ".env over Environment=", hbbs: "Environment=RELAY-SERVERS=b.example", env: "relay_servers=a.example\n", relay: "a.example:21117", source: ".env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inspectUnits(t, "ExecStart=/usr/bin/hbbs\n"+tc.hbbs, "ExecStart=/usr/bin/hbbr -k _", tc.env, 0o600)
			if in.Relay != tc.relay || in.RelaySource != tc.source {
				t.Errorf("relay %q from %q, want %q from %q", in.Relay, in.RelaySource, tc.relay, tc.source)
			}
			if tc.relay == "" {
				wantFindings(t, in, "no-relay")
			}
		})
	}
}

// What hbbs 1.1.16 makes of id_ed25519 (measured): an unpadded secret is a
// key; halves that disagree or a directory leave nothing enforced.
func TestKeyFileVerdicts(t *testing.T) {
	p, _ := keys.Generate(nil)
	raw := p.SecretFileBytes()
	for _, tc := range []struct {
		name           string
		setup          func(t *testing.T, dir string)
		want, unwanted []string
	}{
		{name: "unpadded", setup: func(t *testing.T, dir string) {
			write(t, dir, keys.SecretFile, string(raw[:86]), 0o600)
		}, unwanted: []string{"key-invalid", FindingKeyFileUnenforced}},
		{name: "directory", setup: func(t *testing.T, dir string) {
			noErr(t, os.MkdirAll(filepath.Join(dir, keys.SecretFile), 0o700))
		}, want: []string{FindingKeyFileUnenforced}, unwanted: []string{"key-invalid", "no-key-yet"}},
		{name: "halves disagree", setup: func(t *testing.T, dir string) {
			q, _ := keys.Generate(nil)
			// p's seed with q's public half: 64 bytes that decode
			mixed, _ := keys.ParseSecret(append(append([]byte{}, raw[:43]...), q.SecretFileBytes()[43:]...))
			if mixed.IsZero() {
				t.Skip("the spliced halves did not decode")
			}
			write(t, dir, keys.SecretFile, string(mixed.SecretFileBytes()), 0o600)
		}, want: []string{FindingKeyFileUnenforced}, unwanted: []string{"key-invalid"}},
		{name: "malformed", setup: func(t *testing.T, dir string) {
			write(t, dir, keys.SecretFile, nonCanonical(string(raw)), 0o600)
		}, want: []string{"key-invalid"}, unwanted: []string{FindingKeyFileUnenforced}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			unit := "[Service]\nWorkingDirectory=/srv/rd\nUser=rd\n"
			write(t, root, "/etc/systemd/system/rustdesk-hbbs.service", unit+"ExecStart=/usr/bin/hbbs\n", 0o644)
			write(t, root, "/etc/systemd/system/rustdesk-hbbr.service", unit+"ExecStart=/usr/bin/hbbr -k _\n", 0o644)
			tc.setup(t, filepath.Join(root, "/srv/rd"))
			in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
			noErr(t, err)
			wantFindings(t, in, tc.want...)
			noFindings(t, in, tc.unwanted...)
			if tc.name == "unpadded" && in.PublicKey != p.PublicBase64() {
				t.Errorf("public key %q, want %q (padded, as hbbs serves it)", in.PublicKey, p.PublicBase64())
			}
		})
	}
}

// The Debian units send stdout to hbbs.log, where the "Fatal error" line
// is (hbbs logs everything on stdout); -b is noted as 1.1.17+ only.
func TestLogFileAndBind(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/lib/systemd/system/rustdesk-hbbs.service", strings.Replace(debianHBBS, "ExecStart=/usr/bin/hbbs", "ExecStart=/usr/bin/hbbs -b 192.0.2.1", 1), 0o644)
	write(t, root, "/lib/systemd/system/rustdesk-hbbr.service", debianHBBR, 0o644)
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	noErr(t, err)
	if in.HBBS.LogFile != "/var/log/rustdesk-server/hbbs.log" || in.HBBR.LogFile != "/var/log/rustdesk-server/hbbr.log" {
		t.Errorf("log files %q %q", in.HBBS.LogFile, in.HBBR.LogFile)
	}
	wantFindings(t, in, FindingBindNeeds1117)
	in = inspectUnits(t, "ExecStart=/usr/bin/hbbs", "ExecStart=/usr/bin/hbbr", "", 0)
	if in.HBBS.LogFile != "" {
		t.Errorf("no StandardOutput=: log file %q", in.HBBS.LogFile)
	}
	noFindings(t, in, FindingBindNeeds1117)
}

// A server on another port than its default (-p, or PORT as each server
// reads it) is a custom-port warning: rdctl's firewall, proxy and doctor
// assume the defaults. A .env shared by both with PORT=21116 is the
// defaults (hbbr takes PORT + 1).
func TestCustomPort(t *testing.T) {
	for _, tc := range []struct {
		name, hbbs, hbbr, dotenv string
		want                     string // in the finding's message; "" is no finding
	}{
		{"defaults", "ExecStart=/usr/bin/hbbs -r rd.example.com", "ExecStart=/usr/bin/hbbr", "", ""},
		{"hbbs -p", "ExecStart=/usr/bin/hbbs -p 31116", "ExecStart=/usr/bin/hbbr", "", "rustdesk-hbbs.service listens on port 31116 (-p), not on 21116"},
		{"hbbs -p default", "ExecStart=/usr/bin/hbbs -p 21116", "ExecStart=/usr/bin/hbbr -p 21117", "", ""},
		{"hbbr --port", "ExecStart=/usr/bin/hbbs", "ExecStart=/usr/bin/hbbr --port=31117", "", "rustdesk-hbbr.service listens on port 31117 (-p), not on 21117"},
		{"shared .env, defaults", "ExecStart=/usr/bin/hbbs", "ExecStart=/usr/bin/hbbr", "PORT=21116\n", ""},
		{"shared .env", "ExecStart=/usr/bin/hbbs", "ExecStart=/usr/bin/hbbr", "PORT=31116\n", "rustdesk-hbbr.service listens on port 31117 (PORT in .env, plus 1), not on 21117"},
		{"environment", "ExecStart=/usr/bin/hbbs\nEnvironment=PORT=31116", "ExecStart=/usr/bin/hbbr", "", "rustdesk-hbbs.service listens on port 31116 (PORT in its environment), not on 21116"},
		{"-p wins", "ExecStart=/usr/bin/hbbs -p 21116\nEnvironment=PORT=31116", "ExecStart=/usr/bin/hbbr", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inspectUnits(t, tc.hbbs, tc.hbbr, tc.dotenv, 0o600)
			var msgs []string
			for _, f := range in.Findings {
				if f.ID == FindingCustomPort {
					msgs = append(msgs, f.Message)
				}
			}
			if tc.want == "" {
				if len(msgs) != 0 {
					t.Errorf("findings %q", msgs)
				}
				return
			}
			if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Errorf("findings %q, want %q", msgs, tc.want)
			}
		})
	}
}
