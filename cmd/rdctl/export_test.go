package main

import (
	"bytes"
	"fmt"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/export"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
)

// containsSecret reports whether data holds any encoding of any of the
// secrets (see secretForms).
func containsSecret(data []byte, secrets []keys.Pair) bool {
	for _, s := range secrets {
		for _, form := range secretForms(s) {
			if bytes.Contains(data, form) {
				return true
			}
		}
	}
	return false
}

// zxingText decodes a QR code PNG with gozxing: rdctl ships no QR reader,
// so this is what proves the exported code scans.
func zxingText(t *testing.T, data []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText()
}

// exportTreeFormats maps each file of the --format all tree to the format
// it holds ("" for the files that are not one format).
var exportTreeFormats = map[string]clientconf.Format{
	"windows/rustdesk/RustDesk2.toml":     clientconf.FormatTOML,
	"windows/rustdesk/server.conf":        clientconf.FormatServerConf,
	"windows/rustdesk/install-config.ps1": clientconf.FormatPS1,
	"linux/RustDesk2.toml":                clientconf.FormatTOML,
	"macos/RustDesk2.toml":                clientconf.FormatTOML,
	"config-string.txt":                   clientconf.FormatString,
	"installer-name.txt":                  "",
	"config-qr.png":                       clientconf.FormatQR,
	"README.txt":                          "",
}

// TestExportEveryFormatHasNoSecret exports every format, live and staged,
// from an installed image tree, to files and to stdout. Every output must
// decode (with rdctl's decoders, and the QR code with gozxing too) to the
// expected server and public key, and none may hold any encoding of any
// secret key in the tree: the live one, the staged one, the backups.
func TestExportEveryFormatHasNoSecret(t *testing.T) {
	root, wd := installTree(t)
	live := livePub(t, wd)
	if code, _, stderr := runInProcess(t, "-q", "--root", root, "rotate", "--stage"); code != 0 {
		t.Fatal(stderr)
	}
	next, err := rotate.Staged(stateDirIn(root))
	if err != nil || next.IsZero() {
		t.Fatalf("staged: %v", err)
	}
	secrets := secretsUnder(root)
	if len(secrets) < 2 {
		t.Fatalf("found %d secrets under the tree, want the live and the staged one", len(secrets))
	}
	// The check must be able to fail: the secret files themselves are caught.
	for _, s := range secrets {
		if !containsSecret(append([]byte("x"), s.SecretFileBytes()...), secrets) {
			t.Fatal("containsSecret misses a secret file's own bytes")
		}
	}

	out := t.TempDir()
	var formats []string
	for _, f := range clientconf.Formats {
		formats = append(formats, string(f))
	}
	formats = append(formats, exportFormatAll)
	for _, staged := range []bool{false, true} {
		want := clientconf.Server{Host: "rd.example.com", Key: live}
		flags := []string{"--root", root, "export"}
		if staged {
			want.Key = next.PublicBase64()
			flags = append(flags, "--staged")
		}
		for _, f := range formats {
			name := strings.ReplaceAll(f, ".", "_") + map[bool]string{true: "-staged", false: ""}[staged]
			target := filepath.Join(out, name)
			code, stdout, stderr := runInProcess(t, append(flags, "--format", f, "--out", target)...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", name, code, stderr)
			}
			if containsSecret([]byte(stdout+stderr), secrets) {
				t.Errorf("%s: a secret appeared in rdctl's output", name)
			}
			if f != exportFormatAll && f != string(clientconf.FormatQR) {
				code, stdout, stderr := runInProcess(t, append(flags, "--format", f)...)
				if code != 0 {
					t.Fatalf("%s to stdout: exit %d: %s", name, code, stderr)
				}
				if containsSecret([]byte(stdout+stderr), secrets) {
					t.Errorf("%s: a secret appeared on stdout or stderr", name)
				}
				file, _ := os.ReadFile(target)
				if stdout != string(file) {
					t.Errorf("%s: stdout and --out differ:\n%q\n%q", name, stdout, file)
				}
			}
			checked := 0
			filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Error(err)
					return nil
				}
				if d.IsDir() {
					return nil
				}
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if containsSecret(data, secrets) {
					t.Errorf("%s: a secret key is in %s", name, p)
				}
				format := clientconf.Format(f)
				rel := "."
				if f == exportFormatAll {
					rel, _ = filepath.Rel(target, p)
					var ok bool
					if format, ok = exportTreeFormats[filepath.ToSlash(rel)]; !ok {
						t.Errorf("unexpected file %s in the tree", rel)
					}
				}
				checkExported(t, name+"/"+rel, format, data, want)
				checked++
				return nil
			})
			if wantFiles := map[bool]int{true: len(exportTreeFormats), false: 1}[f == exportFormatAll]; checked != wantFiles {
				t.Errorf("%s: %d files, want %d", name, checked, wantFiles)
			}
		}
	}
}

// checkExported decodes one exported file and compares it with want.
func checkExported(t *testing.T, name string, f clientconf.Format, data []byte, want clientconf.Server) {
	t.Helper()
	switch {
	case strings.HasSuffix(name, "README.txt"):
		if !strings.Contains(string(data), "Key:          "+want.Key+"\n") {
			t.Errorf("%s does not name the key %s", name, want.Key)
		}
		return
	case strings.HasSuffix(name, "installer-name.txt"):
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "rustdesk-host=") || !strings.HasPrefix(lines[1], "rustdesk-licensed-") {
			t.Errorf("%s: %q, want the host= name then the licensed name", name, data)
		}
		for _, l := range lines {
			if got, err := clientconf.ParseExeName(l); err != nil || got != want {
				t.Errorf("%s: %q parses to %+v, %v; want %+v", name, l, got, err, want)
			}
		}
		return
	case f == clientconf.FormatQR:
		cs, err := clientconf.EncodeString(want)
		if err != nil {
			t.Fatal(err)
		}
		text := zxingText(t, data)
		if text != "config="+cs {
			t.Errorf("%s: gozxing reads %q, want config=%s", name, text, cs)
		}
		// rdctl reads no images: decode what the scanner read.
		if got, err := clientconf.DecodeQRText(text); err != nil || got != want {
			t.Errorf("%s: decodes to %+v, %v; want %+v", name, got, err, want)
		}
		return
	case f == clientconf.FormatString:
		s := strings.TrimSuffix(string(data), "\n")
		if got, err := clientconf.DecodeStringCLI(s); err != nil || got != want {
			t.Errorf("%s: rustdesk --config would read %+v, %v; want %+v", name, got, err, want)
		}
	case f == clientconf.FormatExeName || f == clientconf.FormatExeNameLicensed:
		data = bytes.TrimSuffix(data, []byte("\n"))
	}
	got, _, err := clientconf.Decode(f, data)
	if err != nil || got != want {
		t.Errorf("%s: decodes to %+v, %v; want %+v", name, got, err, want)
	}
}

// TestExportMismatchWritesNothing makes the round-trip check fail for one
// format and checks that the command fails with exit 1 as an internal error
// and that nothing at all is written, also for the tree.
func TestExportMismatchWritesNothing(t *testing.T) {
	root, _ := installTree(t)
	saved := export.ClientConfRender
	defer func() { export.ClientConfRender = saved }()
	export.ClientConfRender = func(f clientconf.Format, s clientconf.Server, o clientconf.Options) ([]byte, error) {
		if f == clientconf.FormatQR || f == clientconf.FormatTOML {
			return nil, &clientconf.MismatchError{Format: f, Want: s, Detail: "injected by the test"}
		}
		return saved(f, s, o)
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--format", "all", "--out", filepath.Join(dir, "media")},
		{"--format", "toml", "--out", filepath.Join(dir, "one.toml")},
		{"--format", "toml"},
	} {
		code, stdout, stderr := runInProcess(t, append([]string{"--root", root, "export"}, args...)...)
		if code != exitFailed {
			t.Errorf("%v: exit %d, want %d", args, code, exitFailed)
		}
		if !strings.HasPrefix(stderr, "rdctl: error: internal error: ") || !strings.Contains(stderr, "please report") {
			t.Errorf("%v: stderr %q", args, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: printed %q", args, stdout)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files were written: %v", ents)
	}
}

// TestExportNeedsNoLock: export only reads the server's files, so it works
// while another rdctl holds the lock (a rotation, for instance), and it
// leaves the image tree exactly as it was.
func TestExportNeedsNoLock(t *testing.T) {
	root, _ := installTree(t)
	path, err := safefs.LockPath(root)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := safefs.Lock(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before := treeListing(t, root)
	code, _, stderr := runInProcess(t, "--root", root, "--lock-wait", "0s", "export", "--format", "all", "--out", filepath.Join(t.TempDir(), "m"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if after := treeListing(t, root); after != before {
		t.Errorf("export changed the image tree:\n%s\n---\n%s", before, after)
	}
}

// treeListing lists every path under root with its mode and size.
func treeListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %v %d %v\n", p, fi.Mode(), fi.Size(), fi.ModTime())
		return nil
	})
	return b.String()
}

// FuzzExportValues holds the flag parsers to clientconf's rules: whatever
// --id-host, --relay, --api and --key accept must make a valid client
// configuration (export.Source.Config) whose config string decodes back to
// it exactly.
func FuzzExportValues(f *testing.F) {
	const k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	f.Add("rd.example.com", "", "", k)
	f.Add("rd.example.com:21116", "rd.example.com:21117", "https://rd.example.com/", k)
	f.Add("2001:db8::1", "[2001:db8::2]:21117", "http://[2001:db8::1]:21114", k)
	f.Add("203.0.113.10", "relay.example.com", "https://rd.example.com/a/b", "j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q=")
	f.Add("rd.example.com.", "x:1", "https://rd.example.com:8443/<x>", k)
	f.Add("rd_x.example.com", "rd.example.com:0", "https://a%20b", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	f.Fuzz(func(t *testing.T, id, relay, api, key string) {
		idHP, err := deploy.ParseHostPort("--id-host", id)
		if err != nil {
			return
		}
		var relayHP deploy.HostPort
		if relay != "" {
			if relayHP, err = deploy.ParseHostPort("--relay", relay); err != nil {
				return
			}
		}
		if api != "" {
			if api, err = export.ParseAPI("--api", api); err != nil {
				return
			}
		}
		if key, _, err = keys.ParsePublicArg("--key", key); err != nil {
			return
		}
		src := export.Source{Endpoints: export.Endpoints{ID: idHP, Relay: relayHP, API: api}, PublicKey: export.PublicKey{Key: key}}
		cfg, err := src.Config()
		if err != nil {
			t.Fatalf("flags accepted %q %q %q but clientconf rejects %+v: %v", id, relay, api, src, err)
		}
		s := cfg.Server
		str, err := clientconf.Render(clientconf.FormatString, s, clientconf.Options{})
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if got, err := clientconf.DecodeStringCLI(string(str)); err != nil || got != s {
			t.Fatalf("%+v: decodes to %+v, %v", s, got, err)
		}
		if _, err := clientconf.Render(clientconf.FormatTOML, s, clientconf.Options{}); err != nil {
			t.Fatalf("%+v: toml: %v", s, err)
		}
	})
}
