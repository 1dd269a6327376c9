//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
)

// The service user's working directory and what rdctl keeps there.
const (
	attackWD   = "/var/lib/rustdesk"
	attackPub  = attackWD + "/id_ed25519.pub"
	attackStmp = "20250101T000000Z"
)

// canaryPaths are root's files that no rdctl command may change, whatever
// the service user plants. /etc/canary-hl is reachable by path for the
// service user (so it can hard-link it); /root is not.
var canaryPaths = []string{"/etc/passwd", "/etc/shadow", "/etc/canary-hl", "/root/canary", "/root/canary-dir"}

// attackCommands are run, in order, after every plant. uninstall is last;
// the restore step reinstalls.
var attackCommands = [][]string{
	{"install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip"},
	{"adopt", "--id-host", "rd.example.com"},
	{"rotate", "--commit"},
	{"rotate"},
	{"rotate", "--stage"},
	{"rotate", "--commit"},
	{"export", "--format", "all", "--out", "/root/attack-export"},
	{"key", "show"},
	{"backups", "prune", "--keep", "1"},
	{"doctor", "--fix"},
	{"firewall", "--apply", "--backend", "nftables"},
	{"firewall", "--remove", "--backend", "nftables"},
	{"status"},
	{"uninstall"},
}

// canary is a listing of the canary tree: path, mode, owner, type, size,
// and sha256 of each regular file. Link counts are left out: planting a hard
// link changes them, and that is the attack, not rdctl.
func canary(t *testing.T, m *harness.Machine) string {
	t.Helper()
	args := strings.Join(canaryPaths, " ")
	return m.MustExec(t, "sh", "-c",
		"find "+args+" -printf '%p %m %U:%G %y %s\\n' | sort; find "+args+" -type f -exec sha256sum {} + | sort")
}

// asUser runs a shell script inside the machine as user.
func asUser(t *testing.T, m *harness.Machine, user, script string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errOut, code, err := m.Exec(ctx, "setpriv", "--reuid="+user, "--regid="+user, "--clear-groups", "--", "sh", "-c", script)
	if err != nil && code == 0 {
		t.Fatalf("as %s: %s: %v", user, script, err)
	}
	return out, errOut, code
}

func mustAsService(t *testing.T, m *harness.Machine, script string) {
	t.Helper()
	if out, errOut, code := asUser(t, m, "rustdesk", script); code != 0 {
		t.Fatalf("as rustdesk: %s: exit %d\n%s\n%s", script, code, out, errOut)
	}
}

// servesAttacker says whether hbbs accepts the attacker's key. A server
// that does not answer (stopped by uninstall) does not serve it.
func servesAttacker(t *testing.T, m *harness.Machine, attacker string) bool {
	t.Helper()
	st, err := probeKey(m, attacker)
	if err != nil {
		t.Logf("  probe: %v (hbbs not answering)", err)
		return false
	}
	return st == probe.KeyMatch
}

// liveKey is the public key rdctl key show reads, or "" if it cannot.
func liveKey(t *testing.T, m *harness.Machine) string {
	out, _, code := rdctlIn(t, m, nil, "--json", "key", "show")
	if code != 0 {
		return ""
	}
	var k struct {
		PublicKey string `json:"public_key"`
	}
	json.Unmarshal([]byte(out), &k)
	return k.PublicKey
}

// attackerPair is a fixed pair (deterministic seed): the key the service
// user wants the server to use.
func attackerPair(t *testing.T) keys.Pair {
	p, err := keys.Generate(rand.New(rand.NewSource(0x5eed)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type attackScenario struct {
	name  string
	plant func(t *testing.T)
	// remove is what root deletes (rm -rf) from the working dir afterwards.
	remove []string
	// noESC: nothing rdctl prints may hold an ESC byte.
	noESC bool
	// run replaces the standard command sequence.
	run func(t *testing.T, runCmd func(args ...string) (string, string, int))
}

func TestSystemdAttackSuite(t *testing.T) {
	suiteStart := time.Now()
	m := serverMachine(t)
	t.Logf("boot: %v", m.BootTime())
	start := time.Now()
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	t.Logf("install: %v", time.Since(start))
	genuine, _ := keyShow(t, m)

	m.MustExec(t, "sh", "-c", `set -e
umask 077
echo 'root canary' > /root/canary
echo 'etc canary' > /etc/canary-hl
chmod 600 /etc/canary-hl
mkdir -p /root/canary-dir
echo one > /root/canary-dir/a
echo two > /root/canary-dir/b
chmod 600 /root/canary-dir/*`)
	if _, _, code, _ := m.Exec(context.Background(), "id", "mallory"); code != 0 {
		m.MustExec(t, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "mallory")
	}

	// Loosen the kernel's link protections so the service user can plant
	// what a less careful host would let it plant.
	// The image has no sysctl(8): write /proc/sys directly. These knobs
	// are not namespaced, so a write that succeeds is undone at the end.
	for _, knob := range []string{"protected_hardlinks", "protected_symlinks"} {
		p := "/proc/sys/fs/" + knob
		was, _, _, _ := m.Exec(context.Background(), "cat", p)
		was = strings.TrimSpace(was)
		_, errOut, code, _ := m.Exec(context.Background(), "sh", "-c", "echo 0 > "+p)
		if code != 0 {
			t.Logf("NOTE: setting fs.%s=0 is not allowed in the container (%s; it was %s); links the service user cannot make are made by root instead", knob, strings.TrimSpace(errOut), was)
			continue
		}
		t.Logf("fs.%s=0 (was %s)", knob, was)
		t.Cleanup(func() { m.Exec(context.Background(), "sh", "-c", "echo "+was+" > "+p) })
	}
	hardlinksOpen := false
	if v, _, _, _ := m.Exec(context.Background(), "cat", "/proc/sys/fs/protected_hardlinks"); strings.TrimSpace(v) == "0" {
		hardlinksOpen = true
	}
	t.Logf("fs.protected_hardlinks open for the service user: %v", hardlinksOpen)

	// hardlink plants `ln target link`: as the service user when the
	// kernel lets it, as root (simulating a host without the protection)
	// otherwise.
	hardlink := func(t *testing.T, target, link string) {
		t.Helper()
		if _, errOut, code := asUser(t, m, "rustdesk", "ln "+target+" "+link); code == 0 {
			t.Logf("  hard link %s -> %s made by rustdesk", link, target)
			return
		} else {
			t.Logf("  rustdesk cannot hard-link %s (%s); root makes it to simulate", target, strings.TrimSpace(errOut))
		}
		m.MustExec(t, "ln", target, link)
	}

	ap := attackerPair(t)
	attacker := ap.PublicBase64()
	if attacker == genuine {
		t.Fatal("attacker key equals the generated key")
	}
	writeAsService := func(t *testing.T, path string, data []byte) {
		t.Helper()
		// go through a root-written temp file the service user can read
		tmp := "/tmp/plant-" + strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_")
		if err := m.WriteFile(tmp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mustAsService(t, m, "cat "+tmp+" > "+path)
		m.MustExec(t, "rm", "-f", tmp)
	}
	plantPair := func(t *testing.T, dir string, withRecord bool) {
		t.Helper()
		mustAsService(t, m, "mkdir -p "+dir)
		writeAsService(t, dir+"/id_ed25519", ap.SecretFileBytes())
		writeAsService(t, dir+"/id_ed25519.pub", ap.PublicFileBytes())
		if withRecord {
			rec, _ := json.Marshal(map[string]any{"format": 1, "public_key": attacker})
			writeAsService(t, dir+"/staged.json", rec)
		}
		mustAsService(t, m, "chmod 600 "+dir+"/*; chmod 700 "+dir)
	}

	// The canary listing is taken after each plant: a planted hard link
	// changes the target's link count, which is the attack, not rdctl.
	scenarios := []attackScenario{
		{
			name: "hardlink-pub-to-root-file",
			plant: func(t *testing.T) {
				mustAsService(t, m, "rm -f "+attackPub)
				hardlink(t, "/etc/canary-hl", attackPub)
			},
			remove: []string{"id_ed25519.pub"},
		},
		{
			name: "hardlink-shadow-as-legacy-backup",
			plant: func(t *testing.T) {
				mustAsService(t, m, "mkdir -p "+attackWD+"/backups/"+attackStmp)
				hardlink(t, "/etc/canary-hl", attackWD+"/backups/"+attackStmp+"/id_ed25519")
				hardlink(t, "/etc/shadow", attackWD+"/backups/"+attackStmp+"/id_ed25519.pub")
			},
			remove: []string{"backups"},
		},
		{
			name:   "fifo-pub",
			plant:  func(t *testing.T) { mustAsService(t, m, "rm -f "+attackPub+" && mkfifo "+attackPub) },
			remove: []string{"id_ed25519.pub"},
		},
		{
			name:   "sparse-1TiB-pub",
			plant:  func(t *testing.T) { mustAsService(t, m, "rm -f "+attackPub+" && truncate -s 1T "+attackPub) },
			remove: []string{"id_ed25519.pub"},
		},
		{
			name:   "symlink-pub-to-root-canary",
			plant:  func(t *testing.T) { mustAsService(t, m, "rm -f "+attackPub+" && ln -s /root/canary "+attackPub) },
			remove: []string{"id_ed25519.pub"},
		},
		{
			name:   "legacy-staged-attacker-pair",
			plant:  func(t *testing.T) { plantPair(t, attackWD+"/staged", true) },
			remove: []string{"staged"},
		},
		{
			name: "legacy-backups-planted",
			plant: func(t *testing.T) {
				plantPair(t, attackWD+"/backups/"+attackStmp, false)
				mustAsService(t, m, "mkdir -p "+attackWD+"/backups/20250101T000001Z && mkfifo "+attackWD+"/backups/20250101T000001Z/id_ed25519"+
					" && ln -s /root/canary "+attackWD+"/backups/20250101T000001Z/id_ed25519.pub"+
					" && ln -s /root/canary-dir "+attackWD+"/backups/20250101T000002Z"+
					" && mkdir -p '"+attackWD+"/backups/x\033]0;pwn\007' && truncate -s 1T "+attackWD+"/backups/20250101T000001Z/staged.json")
			},
			remove: []string{"backups"},
			noESC:  true,
		},
		{
			name:   "legacy-backups-symlink-to-root-dir",
			plant:  func(t *testing.T) { mustAsService(t, m, "ln -s /root/canary-dir "+attackWD+"/backups") },
			remove: []string{"backups"},
		},
		{
			name: "legacy-journal-hostile-stamp",
			plant: func(t *testing.T) {
				j, _ := json.Marshal(map[string]any{
					"format": 1, "op": "restore",
					"stamp":          attackStmp + "\x1b]0;owned\x07\n\x1b[2Jfake: rotation done",
					"old_public_key": genuine, "new_public_key": attacker, "pid": 1,
				})
				writeAsService(t, attackWD+"/.rdctl-rotation.json", j)
				// and a backup under the stamp's printable prefix holding
				// the attacker's pair, for a resume that would trust it
				plantPair(t, attackWD+"/backups/"+attackStmp, false)
			},
			remove: []string{".rdctl-rotation.json", "backups"},
			noESC:  true,
		},
		{
			name: "mallory-holds-lock",
			plant: func(t *testing.T) {
				// mallory must not be able to open the lock, whatever exists
				_, errOut, code := asUser(t, m, "mallory", "exec flock -n /run/rdctl/rdctl.lock true")
				if code == 0 {
					t.Errorf("mallory could open and lock /run/rdctl/rdctl.lock")
				} else {
					t.Logf("  mallory flock: exit %d: %s", code, strings.TrimSpace(errOut))
				}
				if _, _, code := asUser(t, m, "mallory", "mkdir -p /run/rdctl 2>/dev/null; : > /run/rdctl/rdctl.lock"); code == 0 {
					t.Errorf("mallory could create /run/rdctl/rdctl.lock")
				}
				// start a long-lived flock attempt as mallory in the
				// background: it must fail at once and not block rdctl
				m.MustExec(t, "sh", "-c", "setpriv --reuid=mallory --regid=mallory --clear-groups -- flock /run/rdctl/rdctl.lock sleep 300 >/dev/null 2>&1 & echo $! > /root/mallory.pid")
				t.Logf("  lock dir: %s", strings.TrimSpace(m.MustExec(t, "sh", "-c", "stat -c '%U:%G %a' /run/rdctl 2>&1 || true")))
			},
		},
	}

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			scStart := time.Now()
			pre := liveKey(t, m)
			sc.plant(t)
			before := canary(t, m)
			runCmd := func(args ...string) (string, string, int) {
				full := append([]string{"--lock-wait", "1s"}, args...)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cstart := time.Now()
				out, errOut, code, err := m.Exec(ctx, append([]string{"/usr/local/sbin/rdctl"}, full...)...)
				d := time.Since(cstart)
				if ctx.Err() != nil {
					t.Errorf("rdctl %v hung (killed after %v)", args, d)
					return out, errOut, -1
				}
				if err != nil && code == 0 {
					t.Errorf("rdctl %v: %v", args, err)
				}
				active, _, _, _ := m.Exec(context.Background(), "systemctl", "is-active", "hbbs.service")
				t.Logf("  rdctl %-28s exit %d in %v (hbbs %s): %s", strings.Join(args, " "), code, d.Round(time.Millisecond), strings.TrimSpace(active), firstLine(errOut))
				if code < 0 || code > 3 {
					t.Errorf("rdctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
				}
				for _, p := range []string{"panic:", "goroutine ", "runtime error", "fatal error:"} {
					if strings.Contains(errOut, p) || strings.Contains(out, p) {
						t.Errorf("rdctl %v: Go panic/crash text %q:\n%s", args, p, errOut)
					}
				}
				if sc.noESC && (strings.ContainsRune(out, 0x1b) || strings.ContainsRune(errOut, 0x1b) || strings.ContainsRune(errOut, 0x07)) {
					t.Errorf("rdctl %v printed a raw control character:\nstdout %q\nstderr %q", args, out, errOut)
				}
				if servesAttacker(t, m, attacker) {
					t.Errorf("after rdctl %v hbbs serves the attacker's key", args)
				}
				if servesAttacker(t, m, pre) {
					t.Logf("    hbbs still serves the key live before the plant")
				}
				if k := liveKey(t, m); k == attacker {
					t.Errorf("after rdctl %v the live key file is the attacker's", args)
				}
				return out, errOut, code
			}
			if sc.run != nil {
				sc.run(t, runCmd)
			} else {
				for _, c := range attackCommands {
					runCmd(c...)
				}
			}
			if after := canary(t, m); after != before {
				t.Errorf("canary changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// quarantined or migrated attacker pairs must never be live, and
			// the attacker pair must not be installed anywhere root trusts
			// as staged
			if out := m.MustExec(t, "sh", "-c", "cat /var/lib/rdctl/*/staged/id_ed25519.pub 2>/dev/null || true"); strings.Contains(out, attacker) {
				t.Errorf("the attacker's pair is staged in the state directory")
			}
			// No plant may leave an interrupted rotation behind: a journal
			// would block every later command until root cleaned up.
			if out := m.MustExec(t, "sh", "-c", "ls /var/lib/rdctl/*/rotation-journal.json 2>/dev/null || true"); strings.TrimSpace(out) != "" {
				t.Errorf("a rotation journal remains after the scenario: %s", out)
			}
			t.Logf("  scenario %s: %v", sc.name, time.Since(scStart).Round(time.Millisecond))

			// restore
			for _, r := range sc.remove {
				m.MustExec(t, "rm", "-rf", "--", attackWD+"/"+r)
			}
			m.MustExec(t, "sh", "-c", "if [ -f /root/mallory.pid ]; then kill $(cat /root/mallory.pid) 2>/dev/null; rm -f /root/mallory.pid; fi; true")
			restoreAttack(t, m)
			if servesAttacker(t, m, attacker) {
				t.Errorf("after restore hbbs serves the attacker's key")
			}
		})
	}
	t.Logf("attack suite: %v", time.Since(suiteStart).Round(time.Millisecond))
}

// restoreAttack brings the server back to a clean, serving state: reinstall
// (uninstall ran last), resume, doctor --fix.
func restoreAttack(t *testing.T, m *harness.Machine) {
	t.Helper()
	start := time.Now()
	mustRdctl(t, m, "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip")
	if _, errOut, code := rdctlIn(t, m, nil, "rotate", "--resume"); code != 0 {
		t.Logf("  restore: rotate --resume exit %d: %s", code, firstLine(errOut))
	}
	if out, errOut, code := rdctlIn(t, m, nil, "doctor", "--fix"); code != 0 {
		t.Logf("  restore: doctor --fix exit %d: %s; %s", code, firstLine(errOut), problemLines(out))
	}
	live, _ := keyShow(t, m)
	if st := keyStatus(t, m, live); st != probe.KeyMatch {
		t.Fatalf("after restore hbbs does not serve the live key: %s\n%s", st, m.Journal("hbbs.service"))
	}
	t.Logf("  restore: %v", time.Since(start).Round(time.Millisecond))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return fmt.Sprintf("%q", s)
}

// problemLines are doctor's lines that are not "ok".
func problemLines(out string) string {
	var p []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(strings.ToLower(l), "ok") {
			p = append(p, l)
		}
	}
	return fmt.Sprintf("%q", p)
}
