package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
)

// unpadForms are id_ed25519 contents hbbs 1.1.16 loads that rdctl never
// writes (measured against the real hbbs 1.1.16): no padding, partial
// padding, with a CRLF.
var unpadForms = map[string]func(canonical []byte) []byte{
	"no padding":          func(c []byte) []byte { return c[:86:86] },
	"partial padding":     func(c []byte) []byte { return c[:87:87] },
	"no padding, CRLF":    func(c []byte) []byte { return append(c[:86:86], '\r', '\n') },
	"partial padding, LF": func(c []byte) []byte { return append(c[:87:87], '\n') },
}

// rotate on a working dir whose id_ed25519 hbbs loads but is not in the
// canonical form: it is the live key, the backup holds its exact bytes,
// and the new key is written padded.
func TestRotateUnpaddedLiveKey(t *testing.T) {
	t.Parallel()
	for name, form := range unpadForms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root, wd := installTree(t)
			canonical := mustRead(t, filepath.Join(wd, keys.SecretFile))
			old := form(canonical)
			noErr(t, os.WriteFile(filepath.Join(wd, keys.SecretFile), old, 0o600))
			oldPub := string(mustRead(t, filepath.Join(wd, keys.PublicFile)))

			code, stdout, stderr := runInProcess(t, "--root", root, "--json", "rotate")
			if code != 0 {
				t.Fatalf("rotate: exit %d\n%s\n%s", code, stdout, stderr)
			}
			var res struct {
				Old    string `json:"old_public_key"`
				New    string `json:"new_public_key"`
				Backup string `json:"backup"`
			}
			noErr(t, json.Unmarshal([]byte(stdout), &res))
			if res.Old != oldPub || res.New == oldPub {
				t.Errorf("old %s new %s, want old %s", res.Old, res.New, oldPub)
			}
			if got := mustRead(t, filepath.Join(res.Backup, keys.SecretFile)); string(got) != string(old) {
				t.Errorf("the backup holds %d bytes, not the live file's %d byte for byte", len(got), len(old))
			}
			live := mustRead(t, filepath.Join(wd, keys.SecretFile))
			p, err := keys.ParseSecret(live)
			if err != nil || len(live) != 88 || !strings.HasSuffix(string(live), "==") || !p.Canonical() || p.PublicBase64() != res.New {
				t.Errorf("the new key is not written padded, 88 bytes: %d bytes, %v", len(live), err)
			}
			// and the old one goes back exactly as it was backed up
			stamp := filepath.Base(res.Backup)
			if code, _, stderr := runInProcess(t, "-q", "--root", root, "rotate", "--restore", stamp); code != 0 {
				t.Fatalf("restore: exit %d: %s", code, stderr)
			}
			if got := livePub(t, wd); got != oldPub {
				t.Errorf("restored %s, want %s", got, oldPub)
			}
		})
	}
}

// check derives the expected key from an unpadded id_ed25519 as hbbs does
// and finds it served. The stand-ins start on the padded file, which is then
// rewritten unpadded next to a .pub that disagrees: the key hbbs loads from
// either is the same, and only the secret can say which it is.
func TestCheckUnpaddedRecordKey(t *testing.T) {
	t.Parallel()
	root, wd, _, _ := recordedStandins(t)
	canonical := mustRead(t, filepath.Join(wd, keys.SecretFile))
	pub := string(mustRead(t, filepath.Join(wd, keys.PublicFile)))
	noErr(t, os.WriteFile(filepath.Join(wd, keys.SecretFile), canonical[:86], 0o600))
	// a .pub that disagrees proves the key came from the secret
	other, _ := keys.Generate(nil)
	noErr(t, os.WriteFile(filepath.Join(wd, keys.PublicFile), other.PublicFileBytes(), 0o644))

	code, stdout, stderr := runInProcess(t, "--root", root, "check")
	if code != 0 || !strings.Contains(stdout, "expected key: "+pub+" (id_ed25519 in "+wd+")") || strings.Contains(stderr, "not usable") {
		t.Errorf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = runInProcess(t, "--root", root, "--json", "check")
	if out := decodeCheck(t, stdout); code != 0 || out.Targets[0].KeyStatus != "match" {
		t.Errorf("exit %d: %s", code, stdout)
	}
	// the unpadded secret given as --key is refused as a secret, unechoed
	for _, form := range unpadForms {
		code, stdout, stderr := runInProcess(t, "check", "127.0.0.1:2", "--key", string(form(canonical)))
		if code != exitUsage || !strings.Contains(stderr, "--key: that is a secret key") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		if strings.Contains(stdout+stderr, string(canonical[:40])) {
			t.Error("the secret was echoed")
		}
	}
}
