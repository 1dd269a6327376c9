package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every mutating command is one plan: --dry-run --json prints it and writes
// nothing, and the real run on the same input reports the same steps
// (runPlanned). export, adopt, doctor --fix and firewall --apply have their
// own tests (export_plan_test.go, adopt_plan_test.go, doctor_plan_test.go,
// firewall_plan_test.go); these are the others.
func TestEveryMutatingCommandIsOnePlan(t *testing.T) {
	installed := func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "img")
		mustRun(t, "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com")
		return root
	}
	wd := func(root string) string { return filepath.Join(root, "var/lib/rustdesk") }
	cases := []struct {
		name string
		// setup prepares a tree and returns the directory a dry run must
		// leave as it is, and the command's arguments.
		setup func(t *testing.T) (dir string, args []string)
	}{
		{"install systemd", func(t *testing.T) (string, []string) {
			root := t.TempDir()
			return root, []string{"install", "systemd", "--root", root, "--relay", "rd.example.com"}
		}},
		{"install systemd, a change", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"install", "systemd", "--root", root, "--relay", "other.example.com", "--tailnet-only"}
		}},
		{"install compose", func(t *testing.T) (string, []string) {
			root := t.TempDir()
			return root, []string{"install", "compose", "--root", root, "--relay", "rd.example.com"}
		}},
		{"upgrade (image tree)", func(t *testing.T) (string, []string) {
			root := t.TempDir()
			mustRun(t, "-q", "install", "compose", "--root", root, "--relay", "rd.example.com")
			return root, []string{"--root", root, "upgrade", "--image", "rustdesk/rustdesk-server-s6:1.1.16"}
		}},
		{"rotate", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "rotate"}
		}},
		{"rotate --stage", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "rotate", "--stage"}
		}},
		{"rotate --commit", func(t *testing.T) (string, []string) {
			root := installed(t)
			mustRun(t, "-q", "--root", root, "rotate", "--stage")
			return root, []string{"--root", root, "rotate", "--commit"}
		}},
		{"rotate --restore", func(t *testing.T) (string, []string) {
			root := installed(t)
			mustRun(t, "-q", "--root", root, "rotate")
			return root, []string{"--root", root, "rotate", "--restore", firstBackup(t, root)}
		}},
		{"rotate --resume after a crash", func(t *testing.T) (string, []string) {
			root := installed(t)
			// What a write killed before its rename leaves: the new
			// secret next to the live one.
			if err := os.WriteFile(filepath.Join(wd(root), "id_ed25519.rdctl-new"), []byte("partial"), 0o600); err != nil {
				t.Fatal(err)
			}
			return root, []string{"--root", root, "rotate", "--resume"}
		}},
		{"rotate --export", func(t *testing.T) (string, []string) {
			root := installed(t)
			return filepath.Dir(root), []string{"--root", root, "rotate", "--export", filepath.Join(filepath.Dir(root), "media")}
		}},
		{"key gen --dir", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			return dir, []string{"key", "gen", "--dir", filepath.Join(dir, "keys")}
		}},
		{"backups prune", func(t *testing.T) (string, []string) {
			root := installed(t)
			mustRun(t, "-q", "--root", root, "rotate")
			mustRun(t, "-q", "--root", root, "rotate")
			return root, []string{"--root", root, "backups", "prune", "--keep", "1"}
		}},
		{"proxy caddy --apply (image tree)", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "proxy", "caddy", "--domain", "rd.example.com", "--apply"}
		}},
		{"proxy caddy --apply, a change", func(t *testing.T) (string, []string) {
			root := installed(t)
			mustRun(t, "-q", "--root", root, "proxy", "caddy", "--domain", "rd.example.com", "--apply")
			return root, []string{"--root", root, "proxy", "caddy", "--domain", "other.example.com", "--apply"}
		}},
		{"proxy caddy --out", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "proxy", "caddy", "--domain", "rd.example.com", "--out", filepath.Join(root, "site.caddy")}
		}},
		{"install exporter", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "install", "exporter"}
		}},
		{"install exporter, no record", func(t *testing.T) (string, []string) {
			root := t.TempDir()
			return root, []string{"--root", root, "install", "exporter", "--listen", "127.0.0.1:9999"}
		}},
		{"uninstall", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "uninstall"}
		}},
		{"uninstall --purge-keys --yes", func(t *testing.T) (string, []string) {
			root := installed(t)
			return root, []string{"--root", root, "uninstall", "--purge-keys", "--yes"}
		}},
		{"uninstall --purge", func(t *testing.T) (string, []string) {
			root := installedWithBinaries(t)
			return root, []string{"--root", root, "uninstall", "--purge"}
		}},
		{"uninstall --purge --purge-keys --yes", func(t *testing.T) (string, []string) {
			root := installedWithBinaries(t)
			return root, []string{"--root", root, "uninstall", "--purge", "--purge-keys", "--yes"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, args := c.setup(t)
			dry, _ := runPlanned(t, dir, 0, 0, args...)
			if strings.Contains(dry, "would ") {
				t.Errorf("--json --dry-run printed text:\n%s", dry)
			}
		})
	}
}

// A plan that cannot be applied fails in the dry run as in the real run,
// with the same exit code and error, and changes nothing.
func TestDryRunFailsLikeTheRealRun(t *testing.T) {
	root := filepath.Join(t.TempDir(), "img")
	mustRun(t, "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com")
	for _, args := range [][]string{
		{"--root", root, "rotate", "--commit"},                           // nothing staged
		{"--root", root, "rotate", "--restore", "19990101T000000Z"},      // no such backup
		{"--root", root, "rotate", "--restore", "../x"},                  // not a backup name
		{"key", "gen", "--dir", filepath.Join(root, "var/lib/rustdesk")}, // a key is there
	} {
		before := treeSnapshot(t, root)
		dryCode, _, dryErr := runInProcess(t, append([]string{"--dry-run"}, args...)...)
		realCode, _, realErr := runInProcess(t, args...)
		if dryCode == 0 || dryCode != realCode || dryErr != realErr {
			t.Errorf("%v: dry run exit %d %q, real run exit %d %q", args, dryCode, dryErr, realCode, realErr)
		}
		after := treeSnapshot(t, root)
		if len(before) != len(after) {
			t.Errorf("%v changed the tree", args)
		}
		for p, s := range before {
			if after[p] != s {
				t.Errorf("%v changed %s", args, p)
			}
		}
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runInProcess(t, args...)
	if code != 0 {
		t.Fatalf("rdctl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// firstBackup is the stamp of the oldest backup in the tree.
func firstBackup(t *testing.T, root string) string {
	t.Helper()
	var doc struct {
		Backups []struct {
			Stamp string `json:"stamp"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "--root", root, "--json", "backups", "list")), &doc); err != nil || len(doc.Backups) == 0 {
		t.Fatalf("no backups: %v", err)
	}
	return doc.Backups[0].Stamp
}
