package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/keys"
)

// A secret key passed on hbbs's command line or in a .env is reported as
// exposed and never printed, in any output format.
func TestAdoptNeverPrintsASecretFromUnitsOrEnv(t *testing.T) {
	p, err := keys.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := string(p.SecretFileBytes())
	root := t.TempDir()
	write := func(rel, data string, mode os.FileMode) {
		full := filepath.Join(root, rel)
		noErr(t, os.MkdirAll(filepath.Dir(full), 0o755))
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("lib/systemd/system/rustdesk-hbbs.service", "[Service]\nExecStart=/usr/bin/hbbs -r rd.example.com -k "+secret+"\nWorkingDirectory=/var/lib/rustdesk-server\nUser=rustdesk\n", 0o644)
	write("lib/systemd/system/rustdesk-hbbr.service", "[Service]\nExecStart=/usr/bin/hbbr\nWorkingDirectory=/var/lib/rustdesk-server\nUser=rustdesk\n", 0o644)
	write("var/lib/rustdesk-server/.env", "KEY="+secret+"\n", 0o644)
	for _, args := range [][]string{{"--dry-run", "adopt"}, {"--dry-run", "--json", "adopt"}, {"adopt"}, {"doctor"}, {"--json", "doctor"}, {"status"}} {
		_, out, errOut := runInProcess(t, append([]string{"--root", root}, args...)...)
		for _, form := range secretForms(p) {
			if strings.Contains(out+errOut, string(form)) {
				t.Fatalf("%v printed the secret key", args)
			}
		}
		if args[len(args)-1] == "adopt" && !strings.Contains(out, "secret") {
			t.Errorf("%v: the exposed secret is not reported:\n%s", args, out)
		}
	}
	_, out, _ := runInProcess(t, "--root", root, "--dry-run", "adopt", "--force")
	for _, want := range []string{"hbbs takes its secret key from -k, not from id_ed25519",
		"can be read by other users in the command line", "can be read by other users in /var/lib/rustdesk-server/.env (mode 0644)"} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt output lacks %q:\n%s", want, out)
		}
	}
}

// With no systemd install and no reachable Docker engine, adopt on a live
// host falls through to "found nothing"; --backend compose says the engine
// is unreachable. Neither writes a record.
func TestAdoptComposeNoEngine(t *testing.T) {
	if found, err := adopt.Detect(""); err != nil || len(found) > 0 {
		t.Skipf("this host has a systemd install of hbbs (%v)", err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	rec := filepath.Join(t.TempDir(), "rdctl.toml")
	code, out, errOut := runInProcess(t, "--config", rec, "--lock-wait", "0s", "adopt", "--id-host", "rd.example.com")
	if code != 1 || !strings.Contains(errOut, "found no hbbs/hbbr install in this host") || !strings.Contains(errOut, "compose projects") || out != "" {
		t.Errorf("fallthrough: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = runInProcess(t, "--config", rec, "adopt", "--backend", "compose", "--id-host", "rd.example.com")
	if code != 1 || !strings.Contains(errOut, "cannot reach the Docker engine") || out != "" {
		t.Errorf("--backend compose: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("a record was written: %v", err)
	}
}

func TestAdoptComposeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"adopt", "--backend", "docker"},
		{"adopt", "--backend", "systemd", "--project", "rd"},
		{"adopt", "--project", "rd", "--origin", "debian"},
		{"--root", t.TempDir(), "adopt", "--backend", "compose"},
	} {
		if code, _, errOut := runInProcess(t, append([]string{"--config", filepath.Join(t.TempDir(), "r.toml")}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}
