package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
)

type doctorDoc struct {
	OK       bool `json:"ok"`
	Problems int  `json:"problems"`
	Fixed    []struct {
		ID, Change, Error string
	} `json:"fixed"`
	Checks []struct {
		ID       string `json:"id"`
		OK       bool   `json:"ok"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Fixable  bool   `json:"fixable"`
		Skipped  bool   `json:"skipped"`
	} `json:"checks"`
}

func decodeDoctor(t *testing.T, out string) doctorDoc {
	t.Helper()
	var d doctorDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return d
}

// doctor --fix --json on an image with every safe-to-fix problem at once:
// each is reported fixed, the result is clean, the secret's bytes stay.
func TestDoctorFixJSON(t *testing.T) {
	root, wd := installTree(t)
	secret := mustRead(t, filepath.Join(wd, keys.SecretFile))
	noErr(t, os.Chmod(filepath.Join(wd, keys.SecretFile), 0o640))
	noErr(t, os.Remove(filepath.Join(wd, keys.PublicFile)))
	noErr(t, os.MkdirAll(filepath.Join(stateDirIn(root), "staged"), 0o700))
	noErr(t, os.Chmod(filepath.Join(stateDirIn(root), "staged"), 0o750))
	noErr(t, os.Chmod(wd, 0o770))

	code, out, _ := runInProcess(t, "--root", root, "--json", "doctor")
	d := decodeDoctor(t, out)
	if code != 1 || d.OK || d.Problems != 4 || len(d.Fixed) != 0 {
		t.Fatalf("before: exit %d, %+v", code, d)
	}
	for _, c := range d.Checks {
		if !c.OK && !c.Fixable {
			t.Errorf("%s failed and is not fixable: %s", c.ID, c.Message)
		}
		if c.Severity != "error" && c.Severity != "warning" && c.Severity != "info" {
			t.Errorf("%s: severity %q", c.ID, c.Severity)
		}
	}
	code, out, errOut := runInProcess(t, "--root", root, "--json", "doctor", "--fix")
	d = decodeDoctor(t, out)
	if code != 0 || !d.OK || d.Problems != 0 || len(d.Fixed) != 4 {
		t.Fatalf("after --fix: exit %d, %+v %s", code, d, errOut)
	}
	got := mustRead(t, filepath.Join(wd, keys.SecretFile))
	if string(got) != string(secret) {
		t.Fatal("doctor --fix changed the secret key")
	}
	staged := filepath.Join(stateDirIn(root), "staged")
	for p, want := range map[string]os.FileMode{filepath.Join(wd, keys.SecretFile): 0o600, filepath.Join(wd, keys.PublicFile): 0o644, staged: 0o700, wd: 0o750} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s: %v, want %04o", p, fi.Mode(), want)
		}
	}
}
