package adopt

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/systemd"
)

// Debian's units as shipped (rustdesk-server's systemd/rustdesk-hbbs.service
// and rustdesk-hbbr.service), hbbr differing only in names.
const debianHBBS = `[Unit]
Description=Rustdesk Signal Server
[Service]
Type=simple
LimitNOFILE=1000000
ExecStart=/usr/bin/hbbs
WorkingDirectory=/var/lib/rustdesk-server/
User=
Group=
Restart=always
StandardOutput=append:/var/log/rustdesk-server/hbbs.log
StandardError=append:/var/log/rustdesk-server/hbbs.error
RestartSec=10
[Install]
WantedBy=multi-user.target
`

var debianHBBR = strings.NewReplacer("Signal", "Relay", "hbbs", "hbbr").Replace(debianHBBS)

// The installer scripts' units (techahold/rustdeskinstall): no arguments,
// /opt/rustdesk, run as whoever ran the script.
const scriptSignal = `[Unit]
Description=Rustdesk Signal Server
[Service]
Type=simple
LimitNOFILE=1000000
ExecStart=/opt/rustdesk/hbbs
WorkingDirectory=/opt/rustdesk/
User=root
Group=root
Restart=always
StandardOutput=append:/var/log/rustdesk/signalserver.log
StandardError=append:/var/log/rustdesk/signalserver.error
RestartSec=10
[Install]
WantedBy=multi-user.target
`

var scriptRelay = strings.NewReplacer("Signal", "Relay", "hbbs", "hbbr", "signalserver", "relayserver").Replace(scriptSignal)

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, p, data string, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

// keyPair writes a generated pair into dir under root with the given
// secret mode and returns it.
func keyPair(t *testing.T, root, dir string, secretMode os.FileMode) keys.Pair {
	t.Helper()
	p, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, filepath.Join(dir, keys.SecretFile), string(p.SecretFileBytes()), secretMode)
	write(t, root, filepath.Join(dir, keys.PublicFile), string(p.PublicFileBytes()), 0o644)
	return p
}

func ids(in *Install) []string {
	var out []string
	for _, f := range in.Findings {
		out = append(out, f.ID)
	}
	return out
}

func wantFindings(t *testing.T, in *Install, want ...string) {
	t.Helper()
	got := ids(in)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("finding %q missing; got %v", w, got)
		}
	}
}

func noFindings(t *testing.T, in *Install, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if slices.Contains(ids(in), w) {
			t.Errorf("unexpected finding %q in %v", w, in.Findings)
		}
	}
}

func TestDetectDebian(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/lib/systemd/system/rustdesk-hbbs.service", debianHBBS, 0o644)
	write(t, root, "/lib/systemd/system/rustdesk-hbbr.service", debianHBBR, 0o644)
	write(t, root, "/var/lib/rustdesk-server/.env", "# shared by hbbs and hbbr\nrelay-servers=rd.example.com\n", 0o644)
	p := keyPair(t, root, "/var/lib/rustdesk-server", 0o644) // as hbbs leaves it

	found, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("found %d installs, want 1", len(found))
	}
	in := found[0]
	if in.Origin != OriginDebian || in.HBBS.WorkingDir != "/var/lib/rustdesk-server" || in.HBBS.User != "root" {
		t.Errorf("install: origin %s, dir %s, user %s", in.Origin, in.HBBS.WorkingDir, in.HBBS.User)
	}
	if in.Relay != "rd.example.com:21117" || in.RelaySource != ".env" {
		t.Errorf("relay %q from %q", in.Relay, in.RelaySource)
	}
	if in.HBBS.Key != KeyDefault || in.HBBR.Key != KeyNone {
		t.Errorf("keys: hbbs %s, hbbr %s", in.HBBS.Key, in.HBBR.Key)
	}
	if in.PublicKey != p.PublicBase64() || in.SecretMode != "0644" {
		t.Errorf("key %s mode %s", in.PublicKey, in.SecretMode)
	}
	wantFindings(t, in, "runs-as-root", "purge-deletes-keys", "hbbr-key-unenforced", "secret-readable")
	noFindings(t, in, "no-relay", "secret-exposed", "split-working-dirs")

	rec, err := in.Record(RecordOptions{IDHost: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Record{Format: 1, Backend: "systemd", Origin: "debian", IDHost: "id.example.com", Relay: "rd.example.com:21117",
		WorkingDir: "/var/lib/rustdesk-server", BinDir: "/usr/bin", ServiceUser: "root",
		HBBSUnit: "rustdesk-hbbs.service", HBBRUnit: "rustdesk-hbbr.service", HBBREnforcesKey: false}
	if !reflect.DeepEqual(*rec, want) {
		t.Errorf("record\n got %+v\nwant %+v", *rec, want)
	}
}

// An admin's override in /etc (a drop-in and a copied unit) changes what
// runs, as it does for systemd.
func TestDebianWithOverrides(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/usr/lib/systemd/system/rustdesk-hbbs.service", debianHBBS, 0o644)
	write(t, root, "/usr/lib/systemd/system/rustdesk-hbbr.service", debianHBBR, 0o644)
	// a drop-in that runs hbbs as its own user with a relay, and one in
	// /usr/lib of the same name that the /etc one masks
	write(t, root, "/etc/systemd/system/rustdesk-hbbs.service.d/10-user.conf",
		"[Service]\nUser=rustdesk\nExecStart=\nExecStart=/usr/bin/hbbs \\\n    -r relay.example.net:443\n", 0o644)
	write(t, root, "/usr/lib/systemd/system/rustdesk-hbbs.service.d/10-user.conf", "[Service]\nUser=nobody\n", 0o644)
	write(t, root, "/etc/systemd/system/rustdesk-hbbr.service.d/key.conf", "[Service]\nUser=rustdesk\nEnvironment=\"KEY=_\" RUST_LOG=info\n", 0o644)
	write(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nrustdesk:x:998:998::/var/lib/rustdesk-server:/usr/sbin/nologin\n", 0o644)
	keyPair(t, root, "/var/lib/rustdesk-server", 0o600)

	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	if in.HBBS.User != "rustdesk" || in.HBBR.User != "rustdesk" {
		t.Errorf("users %s %s", in.HBBS.User, in.HBBR.User)
	}
	if in.Relay != "relay.example.net:443" || in.RelaySource != "-r" {
		t.Errorf("relay %q from %q", in.Relay, in.RelaySource)
	}
	if in.HBBR.Key != KeyFile || in.HBBR.KeySource != "Environment=" {
		t.Errorf("hbbr key %s from %s", in.HBBR.Key, in.HBBR.KeySource)
	}
	if len(in.HBBS.Unit.DropIns) != 1 || in.HBBS.Unit.DropIns[0] != "/etc/systemd/system/rustdesk-hbbs.service.d/10-user.conf" {
		t.Errorf("drop-ins %v", in.HBBS.Unit.DropIns)
	}
	wantFindings(t, in, "purge-deletes-keys")
	noFindings(t, in, "runs-as-root", "hbbr-key-unenforced", "secret-readable", "secret-exposed")
}

func TestDetectInstallerScript(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/etc/systemd/system/rustdesksignal.service", scriptSignal, 0o644)
	write(t, root, "/etc/systemd/system/rustdeskrelay.service", scriptRelay, 0o644)
	keyPair(t, root, "/opt/rustdesk", 0o600)
	found, err := Detect(root)
	if err != nil || len(found) != 1 {
		t.Fatalf("found %d, %v", len(found), err)
	}
	in := found[0]
	if in.Origin != OriginInstallerScript || in.HBBS.WorkingDir != "/opt/rustdesk" || in.HBBS.Program != "/opt/rustdesk/hbbs" {
		t.Errorf("%+v", in.HBBS)
	}
	wantFindings(t, in, "runs-as-root", "hbbr-key-unenforced", "no-relay")
	noFindings(t, in, "purge-deletes-keys", "secret-readable")
	if _, err := in.Record(RecordOptions{IDHost: "rd.example.com"}); err != nil {
		t.Fatal(err)
	}
	// nothing found: the record cannot say which relay, so the caller must
	if in.Relay != "" {
		t.Errorf("relay %q", in.Relay)
	}
}

// rdctl's own units, as internal/systemd renders them, read back to the
// record they were made from.
func TestDetectRdctlOwn(t *testing.T) {
	root := t.TempDir()
	rec := &deploy.Record{Format: 1, Backend: "systemd", Origin: "rdctl", IDHost: "id.example.com", Relay: "rd.example.com:21117",
		TailnetOnly: true, WorkingDir: deploy.DefaultWorkingDir, BinDir: deploy.DefaultBinDir, ServiceUser: "rustdesk",
		HBBSUnit: "hbbs.service", HBBRUnit: "hbbr.service", HBBREnforcesKey: true, Bind: "192.0.2.7"}
	spec := systemd.SpecFromRecord(rec)
	write(t, root, "/etc/systemd/system/hbbs.service", string(systemd.HBBS(spec)), 0o644)
	write(t, root, "/etc/systemd/system/hbbr.service", string(systemd.HBBR(spec)), 0o644)
	keyPair(t, root, deploy.DefaultWorkingDir, 0o600)
	found, err := Detect(root)
	if err != nil || len(found) != 1 {
		t.Fatalf("found %d, %v", len(found), err)
	}
	in := found[0]
	if in.Problems() != 0 {
		t.Errorf("rdctl's own units have problems: %v", in.Findings)
	}
	got, err := in.Record(RecordOptions{IDHost: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, *rec) {
		t.Errorf("record\n got %+v\nwant %+v", *got, *rec)
	}

	// the same names without rdctl's header are someone else's units
	data, _ := os.ReadFile(filepath.Join(root, "/etc/systemd/system/hbbs.service"))
	write(t, root, "/etc/systemd/system/hbbs.service", strings.Replace(string(data), "# Written by rdctl", "# mine", 1), 0o644)
	found, _ = Detect(root)
	if len(found) != 1 || found[0].Origin != OriginCustom {
		t.Errorf("origin %v", found)
	}
}

// A secret given on the command line or in a unit file is reported, and
// never appears in what adopt returns.
func TestSecretGivenDirectly(t *testing.T) {
	p, _ := keys.Generate(nil)
	secret := string(p.SecretFileBytes())
	for _, tc := range []struct {
		name, hbbs, hbbr, env string
		envMode               os.FileMode
		where                 string
	}{
		{name: "argv", hbbs: "ExecStart=/usr/bin/hbbs -k " + secret, hbbr: "ExecStart=/usr/bin/hbbr -k" + secret, where: "command line"},
		{name: "environment", hbbs: "ExecStart=/usr/bin/hbbs\nEnvironment=KEY=" + secret, hbbr: "ExecStart=/usr/bin/hbbr --key=_", where: "world-readable"},
		{name: "dotenv", hbbs: "ExecStart=/usr/bin/hbbs", hbbr: "ExecStart=/usr/bin/hbbr", env: "KEY='" + secret + "'\n", envMode: 0o644, where: ".env (mode 0644)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			unit := "[Service]\nWorkingDirectory=/srv/rd\nUser=rd\n"
			write(t, root, "/etc/systemd/system/rustdesk-hbbs.service", unit+tc.hbbs+"\n", 0o644)
			write(t, root, "/etc/systemd/system/rustdesk-hbbr.service", unit+tc.hbbr+"\n", 0o644)
			if tc.env != "" {
				write(t, root, "/srv/rd/.env", tc.env, tc.envMode)
			}
			in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
			if err != nil {
				t.Fatal(err)
			}
			if in.HBBS.Key != KeySecret {
				t.Errorf("hbbs key %s", in.HBBS.Key)
			}
			wantFindings(t, in, "key-not-from-file", "secret-exposed")
			found := false
			for _, f := range in.Findings {
				found = found || (f.ID == "secret-exposed" && strings.Contains(f.Message, tc.where))
			}
			if !found {
				t.Errorf("secret-exposed does not say %q: %v", tc.where, in.Findings)
			}
			if !in.HBBR.Key.Enforced() {
				t.Errorf("hbbr key %s", in.HBBR.Key)
			}
			out, _ := json.Marshal(in)
			if bytes.Contains(out, []byte(secret[:40])) {
				t.Fatal("the secret key appears in the install's JSON")
			}
			for _, f := range in.Findings {
				if strings.Contains(f.Message, secret[:40]) {
					t.Fatal("the secret key appears in a finding")
				}
			}
		})
	}
}

func TestSplitWorkingDirs(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/etc/systemd/system/rustdesk-hbbs.service", "[Service]\nExecStart=/usr/bin/hbbs -r rd.example.com,rd2.example.com:443\nWorkingDirectory=/srv/a\nUser=rd\n", 0o644)
	write(t, root, "/etc/systemd/system/rustdesk-hbbr.service", "[Service]\nExecStart=/usr/bin/hbbr -k _\nWorkingDirectory=/srv/b\nUser=rd\n", 0o644)
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, in, "split-working-dirs", "relay-list", "no-key-yet")
	// Every relay is recorded, each with its port, as hbbs hands them out.
	if in.Relay != "rd.example.com:21117,rd2.example.com:443" {
		t.Errorf("relay %q", in.Relay)
	}
}

// hbbs skips empty entries of -r; an entry that is no host[:port] is
// dropped (hbbs drops it at startup too) with a finding.
func TestRelayListAsHBBSSplitsIt(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/etc/systemd/system/rustdesk-hbbs.service", "[Service]\nExecStart=/usr/bin/hbbs -r ,a.example.com,,b.example.com:21118,bad_name\nWorkingDirectory=/srv/a\nUser=rd\n", 0o644)
	write(t, root, "/etc/systemd/system/rustdesk-hbbr.service", "[Service]\nExecStart=/usr/bin/hbbr -k _\nWorkingDirectory=/srv/a\nUser=rd\n", 0o644)
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, in, "relay-invalid", "relay-list", "no-key-yet")
	if in.Relay != "a.example.com:21117,b.example.com:21118" {
		t.Errorf("relay %q", in.Relay)
	}
}

func TestMaskedAndMissing(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/lib/systemd/system/rustdesk-hbbs.service", debianHBBS, 0o644)
	write(t, root, "/lib/systemd/system/rustdesk-hbbr.service", debianHBBR, 0o644)
	noErr(t, os.MkdirAll(filepath.Join(root, "/etc/systemd/system"), 0o755))
	if err := os.Symlink("/dev/null", filepath.Join(root, "/etc/systemd/system/rustdesk-hbbs.service")); err != nil {
		t.Fatal(err)
	}
	found, err := Detect(root)
	if err != nil || len(found) != 0 {
		t.Fatalf("a masked unit was detected: %v %v", found, err)
	}
	if _, err := Inspect(t.TempDir(), OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service"); !errors.Is(err, ErrNoUnit) {
		t.Errorf("no units: %v", err)
	}
	// hbbs without hbbr is found but cannot be recorded
	root = t.TempDir()
	write(t, root, "/lib/systemd/system/rustdesk-hbbs.service", debianHBBS, 0o644)
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	wantFindings(t, in, "no-hbbr-unit")
	if _, err := in.Record(RecordOptions{IDHost: "rd.example.com"}); err == nil {
		t.Error("recorded an install without hbbr")
	}
}

// A unit symlinked with an absolute target (systemctl link) resolves
// inside the root, never on the host.
func TestUnitSymlinkStaysInRoot(t *testing.T) {
	root := t.TempDir()
	write(t, root, "/opt/units/rustdesk-hbbs.service", debianHBBS, 0o644)
	write(t, root, "/lib/systemd/system/rustdesk-hbbr.service", debianHBBR, 0o644)
	noErr(t, os.MkdirAll(filepath.Join(root, "/etc/systemd/system"), 0o755))
	noErr(t, os.Symlink("/opt/units/rustdesk-hbbs.service", filepath.Join(root, "/etc/systemd/system/rustdesk-hbbs.service")))
	in, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service")
	if err != nil {
		t.Fatal(err)
	}
	if in.HBBS.Program != "/usr/bin/hbbs" {
		t.Errorf("program %q", in.HBBS.Program)
	}
	// a relative link climbing out of the root is refused
	noErr(t, os.Remove(filepath.Join(root, "/etc/systemd/system/rustdesk-hbbs.service")))
	noErr(t, os.Symlink("../../../../../../../../../../etc/passwd", filepath.Join(root, "/etc/systemd/system/rustdesk-hbbs.service")))
	if _, err := Inspect(root, OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service"); err == nil || !strings.Contains(err.Error(), "outside the root") {
		t.Errorf("link out of the root: %v", err)
	}
}

func TestClassifyKey(t *testing.T) {
	// a key whose secret has both '+' or '/' (so the URL-safe spelling
	// differs) and a last data symbol that can carry set bits
	var p keys.Pair
	for {
		p, _ = keys.Generate(nil)
		if strings.ContainsAny(string(p.SecretFileBytes()), "+/") {
			break
		}
	}
	for v, want := range map[string]KeyKind{
		"": KeyEmpty, "-": KeyFile, "_": KeyFile, string(p.SecretFileBytes()): KeySecret,
		p.PublicBase64(): KeyPublic, "hunter2": KeyLiteral, "AAAA": KeyLiteral,
		// hbbs decodes a secret with missing or partial padding (measured on
		// 1.1.16); one with set bits past the data or the URL-safe alphabet
		// is no secret to it, so it is enforced as a literal string.
		string(p.SecretFileBytes()[:86]): KeySecret, string(p.SecretFileBytes()[:87]): KeySecret,
		nonCanonical(string(p.SecretFileBytes()[:86])):                               KeyLiteral,
		strings.NewReplacer("+", "-", "/", "_").Replace(string(p.SecretFileBytes())): KeyLiteral,
		string(p.SecretFileBytes()[:86]) + "===":                                     KeyLiteral,
	} {
		if got := classifyKey(v); got != want {
			t.Errorf("classifyKey(%.10q…) = %s, want %s", v, got, want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		`/usr/bin/hbbs -r a`:           {"/usr/bin/hbbs", "-r", "a"},
		`"KEY=a b" X=1`:                {"KEY=a b", "X=1"},
		`'a "b"' c\ d`:                 {`a "b"`, "c d"},
		"  a\t b  ":                    {"a", "b"},
		`a\\b`:                         {`a\b`},
		``:                             nil,
		`-/usr/bin/hbbs`:               {"-/usr/bin/hbbs"},
		`KEY="" OTHER=`:                {"KEY=", "OTHER="},
		`"quoted word"continued plain`: {"quoted wordcontinued", "plain"},
	} {
		got, err := splitWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"open`, `'open`, `trailing\`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) accepted", bad)
		}
	}
	argv, err := splitExec(`!!-@/usr/bin/hbbs hbbs -k _`)
	if err != nil || argv[0] != "/usr/bin/hbbs" {
		t.Errorf("splitExec: %q %v", argv, err)
	}
}

// Names are kept as written: hbbs normalises its .env's, hbbr does not
// (measured on 1.1.16). (This test used to expect normalised names, which hid
// hbbr ignoring "key=".)
func TestParseEnvFile(t *testing.T) {
	got := parseEnvFile([]byte("# c\nrelay-servers=a.example:21117\nexport KEY=\"_\"\nALWAYS_USE_RELAY=Y # forced\nbroken line\n=x\nEMPTY=\r\n"))
	want := envVars{{"relay-servers", "a.example:21117", ""}, {"KEY", "_", ""}, {"ALWAYS_USE_RELAY", "Y", ""}, {"EMPTY", "", ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name       string
		exact, hbb bool
	}{{"RELAY-SERVERS", false, true}, {"KEY", true, true}, {"ALWAYS-USE-RELAY", false, true}, {"key", false, false}} {
		_, exact := got.exact(tc.name)
		_, norm := got.normalised(tc.name)
		if exact != tc.exact || norm != tc.hbb {
			t.Errorf("%s: exact %v, normalised %v; want %v, %v", tc.name, exact, norm, tc.exact, tc.hbb)
		}
	}
}
