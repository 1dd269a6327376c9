package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
)

// installTree builds an image tree in-process and returns its root and
// working directory.
func installTree(t *testing.T) (root, wd string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "img")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com"}, &out, &out); code != 0 {
		t.Fatalf("install: %s", out.String())
	}
	return root, filepath.Join(root, "var/lib/rustdesk")
}

// rdctlExec runs the real rdctl binary (testscript puts it on PATH).
func rdctlExec(env []string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command("rdctl", args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func livePub(t *testing.T, wd string) string {
	t.Helper()
	d, err := safefs.OpenDir(wd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Valid || !st.PubMatches {
		t.Fatalf("pair in %s: valid=%v pub matches=%v (%v)", wd, st.Valid, st.PubMatches, st.SecretErr)
	}
	return st.Pair.PublicBase64()
}

// assertConsistent checks what every recovery must leave: a valid pair
// whose .pub agrees, no journal, no temporary or half-written files, and a
// backup holding oldPub.
func assertConsistent(t *testing.T, wd, oldPub string) string {
	t.Helper()
	root := strings.TrimSuffix(wd, deploy.DefaultWorkingDir)
	pub := livePub(t, wd)
	if _, err := os.Stat(filepath.Join(stateDirIn(root), rotate.JournalFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal still present: %v", err)
	}
	filepath.WalkDir(wd, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), safefs.TempMarker) || strings.Contains(d.Name(), ".rdctl-new")) {
			t.Errorf("leftover %s", p)
		}
		return nil
	})
	all, err := rotate.ListBackups(wd, stateDirIn(root))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range all {
		if b.Error != "" {
			t.Errorf("unusable backup %s: %s", b.Stamp, b.Error)
		}
		found = found || b.PublicKey == oldPub
	}
	if !found {
		t.Errorf("no backup holds the old key %s", oldPub)
	}
	return pub
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestRotateCrashMatrixImage kills rotate with SIGKILL at every step
// boundary of an image-tree rotation; the next rdctl run must recover.
func TestRotateCrashMatrixImage(t *testing.T) {
	for _, point := range rotate.Points {
		for _, next := range []string{"resume", "install"} {
			t.Run(point+"/"+next, func(t *testing.T) {
				root, wd := installTree(t)
				oldPub := livePub(t, wd)
				_, stderr, err := rdctlExec([]string{faultKillEnv + "=" + point}, "--root", root, "rotate")
				if !killedBySIGKILL(err) {
					t.Fatalf("rotate was not killed at %s: %v\n%s", point, err, stderr)
				}
				j, err := os.ReadFile(filepath.Join(stateDirIn(root), rotate.JournalFile))
				if err != nil {
					t.Fatalf("no journal after a kill at %s: %v", point, err)
				}
				var journal rotate.Journal
				json.Unmarshal(j, &journal)

				var args []string
				if next == "resume" {
					args = []string{"--root", root, "rotate", "--resume"}
				} else {
					args = []string{"--root", root, "install", "systemd", "--relay", "rd.example.com"}
				}
				_, stderr, err = rdctlExec(nil, args...)
				if err != nil {
					t.Fatalf("%v after a kill at %s: %v\n%s", args, point, err, stderr)
				}
				if !strings.Contains(stderr, "found an interrupted rotate") {
					t.Errorf("recovery not reported: %s", stderr)
				}
				pub := assertConsistent(t, wd, oldPub)
				switched := point != rotate.PointJournal && point != rotate.PointBackup && point != rotate.PointNewFiles && point != rotate.PointStopped
				want := map[bool]string{true: journal.NewPublicKey, false: oldPub}[switched]
				if pub != want {
					t.Errorf("after a kill at %s the live key is %s, want %s (switched=%v)", point, pub, want, switched)
				}
				// and a full rotation still works afterwards
				if _, stderr, err := rdctlExec(nil, "--root", root, "rotate"); err != nil {
					t.Fatalf("rotate after recovery: %v %s", err, stderr)
				}
				assertConsistent(t, wd, pub)
			})
		}
	}
}

// TestRotateConcurrent runs 20 rotations at once: each runs whole or exits
// 3, and every successful one leaves its own backup of the key it replaced.
func TestRotateConcurrent(t *testing.T) {
	root, wd := installTree(t)
	first := livePub(t, wd)
	type res struct {
		out  string
		code int
	}
	results := make([]res, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, _, err := rdctlExec(nil, "--root", root, "--json", "--lock-wait", "0s", "rotate")
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			results[i] = res{out, code}
		}()
	}
	wg.Wait()
	backups := map[string]bool{}
	olds := map[string]bool{}
	wins := 0
	for _, r := range results {
		switch r.code {
		case 0:
			wins++
			var got struct {
				Old    string `json:"old_public_key"`
				Backup string `json:"backup"`
			}
			if err := json.Unmarshal([]byte(r.out), &got); err != nil {
				t.Fatalf("json: %v: %s", err, r.out)
			}
			if backups[got.Backup] || olds[got.Old] {
				t.Errorf("two runs share backup %s / old key %s", got.Backup, got.Old)
			}
			backups[got.Backup], olds[got.Old] = true, true
			p, err := keys.ParseSecret(mustRead(t, filepath.Join(got.Backup, keys.SecretFile)))
			if err != nil || p.PublicBase64() != got.Old {
				t.Errorf("backup %s does not hold %s", got.Backup, got.Old)
			}
		case exitLocked:
		default:
			t.Errorf("a rotation exited %d: %s", r.code, r.out)
		}
	}
	if wins == 0 {
		t.Fatal("no rotation ran")
	}
	if !olds[first] {
		t.Error("no run replaced the original key")
	}
	assertConsistent(t, wd, first)
	t.Logf("%d of 20 ran, %d exited 3", wins, 20-wins)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRotateRefusesSymlinks plants symlinks at the key files, the backups
// dir, the staged dir and the new-file name; nothing outside is touched.
// backups and staged in the working directory are where an older rdctl kept
// its state: a link there is left alone (and reported) while rdctl's state
// goes to its own directory; a link at that state directory is refused.
func TestRotateRefusesSymlinks(t *testing.T) {
	for _, planted := range []string{keys.SecretFile, keys.PublicFile, "backups", "staged", "id_ed25519.rdctl-new", "state"} {
		t.Run(planted, func(t *testing.T) {
			root, wd := installTree(t)
			outside := t.TempDir()
			bait := filepath.Join(outside, "bait")
			noErr(t, os.WriteFile(bait, []byte("untouched"), 0o644))
			target := bait
			if planted == "backups" || planted == "staged" {
				target = outside
			}
			p := filepath.Join(wd, planted)
			if planted == "state" {
				target = outside
				p = stateDirIn(root)
				noErr(t, os.MkdirAll(filepath.Dir(p), 0o700))
			}
			// Not every planted name exists in a fresh install.
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			args := []string{"--root", root, "rotate"}
			if planted == "staged" {
				args = append(args, "--stage")
			}
			_, stderr, err := rdctlExec(nil, args...)
			switch planted {
			case "backups", "staged":
				if err != nil {
					t.Fatalf("rotate: %v %s", err, stderr)
				}
				if !strings.Contains(stderr, "warning: left "+p+" in the working directory: not a directory") {
					t.Errorf("stderr does not report the link: %s", stderr)
				}
				if _, err := os.Readlink(p); err != nil {
					t.Errorf("planted link: %v", err)
				}
				if _, err := os.Stat(filepath.Join(stateDirIn(root), planted)); err != nil {
					t.Errorf("rdctl's own %s: %v", planted, err)
				}
			case "id_ed25519.rdctl-new":
				// A leftover at rdctl's own scratch name is removed (the link
				// itself, never its target) before the rotation runs.
				if err != nil {
					t.Fatalf("rotate: %v %s", err, stderr)
				}
				if _, err := os.Lstat(p); err == nil {
					t.Error("planted link still there")
				}
			default:
				if err == nil {
					t.Fatalf("rotate succeeded with a symlink at %s", planted)
				}
				if !strings.Contains(stderr, "symbolic link") {
					t.Errorf("stderr does not say why: %s", stderr)
				}
			}
			if b, _ := os.ReadFile(bait); string(b) != "untouched" {
				t.Errorf("bait changed: %q", b)
			}
			if fi, _ := os.Stat(bait); fi.Mode().Perm() != 0o644 {
				t.Errorf("bait mode changed: %o", fi.Mode().Perm())
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("files appeared outside: %v", ents)
			}
		})
	}
}

func TestStageCommitRestore(t *testing.T) {
	root, wd := installTree(t)
	orig := livePub(t, wd)
	out, _, err := rdctlExec(nil, "--root", root, "--json", "rotate", "--stage")
	if err != nil {
		t.Fatal(err, out)
	}
	var staged struct {
		New string `json:"new_public_key"`
	}
	json.Unmarshal([]byte(out), &staged)
	if livePub(t, wd) != orig {
		t.Fatal("--stage switched the key")
	}
	fi, err := os.Stat(filepath.Join(stateDirIn(root), "staged", keys.SecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("staged secret: %v", err)
	}
	// staging twice keeps the same next key
	out2, _, _ := rdctlExec(nil, "--root", root, "--json", "rotate", "--stage")
	if !strings.Contains(out2, staged.New) {
		t.Fatal("second --stage made a different key")
	}
	if _, stderr, err := rdctlExec(nil, "--root", root, "rotate", "--commit"); err != nil {
		t.Fatal(err, stderr)
	}
	if got := livePub(t, wd); got != staged.New {
		t.Fatalf("after commit %s, want staged %s", got, staged.New)
	}
	if _, err := os.Stat(filepath.Join(wd, "staged")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("staged dir left after commit")
	}
	_, stderr, err := rdctlExec(nil, "--root", root, "rotate", "--commit")
	if err == nil || !strings.Contains(stderr, "no staged key") {
		t.Errorf("commit with nothing staged: %v %s", err, stderr)
	}
	all, _ := rotate.ListBackups(wd, stateDirIn(root))
	if len(all) != 1 || all[0].PublicKey != orig {
		t.Fatalf("backups %+v", all)
	}
	if _, stderr, err := rdctlExec(nil, "--root", root, "rotate", "--restore", all[0].Stamp); err != nil {
		t.Fatal(err, stderr)
	}
	if got := livePub(t, wd); got != orig {
		t.Fatalf("restore left %s, want %s", got, orig)
	}
	assertConsistent(t, wd, staged.New) // the restore backed up the staged key first
	if _, _, err := rdctlExec(nil, "--root", root, "rotate", "--restore", "../../etc"); err == nil {
		t.Error("restore of a path outside backups accepted")
	}
}

func TestBackupsPrune(t *testing.T) {
	root, wd := installTree(t)
	for i := 0; i < 4; i++ {
		if _, stderr, err := rdctlExec(nil, "--root", root, "rotate"); err != nil {
			t.Fatal(err, stderr)
		}
	}
	all, _ := rotate.ListBackups(wd, stateDirIn(root))
	if len(all) != 4 {
		t.Fatalf("%d backups", len(all))
	}
	out, stderr, err := rdctlExec(nil, "--root", root, "backups", "prune", "--keep", "2")
	if err != nil {
		t.Fatal(err, stderr)
	}
	if strings.Count(out, "removed ") != 2 || !strings.Contains(stderr, "copy-on-write") {
		t.Errorf("prune output: %s / %s", out, stderr)
	}
	left, _ := rotate.ListBackups(wd, stateDirIn(root))
	if len(left) != 2 || left[0].Stamp != all[2].Stamp || left[1].Stamp != all[3].Stamp {
		t.Errorf("kept %+v", left)
	}
	if _, _, err := rdctlExec(nil, "--root", root, "backups", "prune", "--keep", "0"); err == nil {
		t.Error("--keep 0 accepted")
	}
}

// TestRotateDiskFull fills a small tmpfs to different levels: every rotation
// either completes or fails clearly with the old key intact.
func TestRotateDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	failures := 0
	for _, free := range []int{0, 1, 2, 3, 4, 6, 8} {
		t.Run(fmt.Sprintf("free-%d-pages", free), func(t *testing.T) {
			mnt := t.TempDir()
			if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=128k"); err != nil {
				t.Skipf("mount tmpfs: %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(mnt, 0) })
			root := filepath.Join(mnt, "img")
			var out bytes.Buffer
			if code := run(context.Background(), []string{"rdctl", "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com"}, &out, &out); code != 0 {
				t.Fatalf("install: %s", out.String())
			}
			wd := filepath.Join(root, "var/lib/rustdesk")
			oldPub := livePub(t, wd)
			fillTo(t, mnt, free)
			_, stderr, err := rdctlExec(nil, "--root", root, "rotate")
			if err != nil {
				failures++
				if !strings.Contains(stderr, "no space left on device") {
					t.Errorf("unclear error: %s", stderr)
				}
				if got := livePub(t, wd); got != oldPub {
					t.Errorf("failed rotation changed the key")
				}
				if _, err := os.Stat(filepath.Join(stateDirIn(root), rotate.JournalFile)); err == nil {
					t.Errorf("journal left after a clean failure")
				}
				return
			}
			livePub(t, wd) // a completed rotation leaves a valid pair
		})
	}
	if failures == 0 {
		t.Error("the disk never filled; the test proved nothing")
	}
}

// fillTo fills the filesystem at dir until only about free pages remain.
func fillTo(t *testing.T, dir string, free int) {
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	for {
		if _, err := f.Write(page); err != nil {
			break
		}
	}
	f.Sync()
	if free > 0 {
		fi, _ := f.Stat()
		f.Truncate(fi.Size() - int64(free*4096))
	}
}

// BenchmarkRotateImage rotates an image tree in-process and reports the
// outage window (renames and fsync) and the whole transaction.
func BenchmarkRotateImage(b *testing.B) {
	root := filepath.Join(b.TempDir(), "img")
	var out bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com"}, &out, &out); code != 0 {
		b.Fatal(out.String())
	}
	var outage float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if code := run(context.Background(), []string{"rdctl", "--json", "--root", root, "rotate"}, &out, &bytes.Buffer{}); code != 0 {
			b.Fatal(out.String())
		}
		var r struct {
			Outage float64 `json:"outage_ms"`
		}
		json.Unmarshal(out.Bytes(), &r)
		outage += r.Outage
	}
	b.ReportMetric(outage/float64(b.N), "outage-ms/op")
}

// A prune after a crashed rotation first finishes or rolls back that
// rotation, so the backup its recovery needs is never pruned first.
func TestPruneResumesInterruptedRotation(t *testing.T) {
	root, wd := installTree(t)
	for i := 0; i < 2; i++ {
		if _, stderr, err := rdctlExec(nil, "--root", root, "rotate"); err != nil {
			t.Fatal(err, stderr)
		}
	}
	old := livePub(t, wd)
	if _, _, err := rdctlExec([]string{faultKillEnv + "=" + rotate.PointRenamedSecret}, "--root", root, "rotate"); !killedBySIGKILL(err) {
		t.Fatalf("rotate not killed: %v", err)
	}
	_, stderr, err := rdctlExec(nil, "--root", root, "backups", "prune", "--keep", "1")
	if err != nil {
		t.Fatal(err, stderr)
	}
	if !strings.Contains(stderr, "found an interrupted rotate") {
		t.Errorf("prune did not resume the rotation first: %s", stderr)
	}
	pub := assertConsistent(t, wd, old)
	if pub == old {
		t.Error("a rotation killed after the secret rename should have been finished")
	}
	if all, _ := rotate.ListBackups(wd, stateDirIn(root)); len(all) != 1 {
		t.Errorf("%d backups left, want 1", len(all))
	}
}

// stateDirIn is rdctl's state directory of the default deployment in the
// image tree root.
func stateDirIn(root string) string {
	return filepath.Join(root, deploy.StateDirFor(deploy.DefaultWorkingDir))
}
