package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// crashOutcome says, for each step boundary, whether a transaction killed
// there is finished by Resume (the new key stays) or rolled back (the old
// key stays). The secret is renamed into place between PointStopped and
// PointRenamedSecret; from then on the new key is what hbbs would serve.
var crashOutcome = []struct {
	point    string
	finished bool
}{
	{PointJournal, false},
	{PointBackup, false},
	{PointNewFiles, false},
	{PointStopped, false},
	{PointRenamedSecret, true},
	{PointRenamed, true},
	{PointStarted, true},
	{PointVerified, true},
}

// The table above must name every point, in order: a new step boundary
// needs its expected outcome here before the crash matrix passes.
func TestCrashOutcomeCoversPoints(t *testing.T) {
	var got []string
	for _, c := range crashOutcome {
		got = append(got, c.point)
	}
	if !slices.Equal(got, Points) {
		t.Errorf("crash table points %q, rotate.Points %q", got, Points)
	}
}

// TestCrashMatrix kills each kind of transaction at every step boundary
// (see crashAt) and runs Resume, as the next rdctl would.
func TestCrashMatrix(t *testing.T) {
	type txn struct {
		op string
		// prepare readies the fixture and returns the key the transaction
		// switches to.
		prepare func(t *testing.T, f *fixture, o Options) keys.Pair
		run     func(ctx context.Context, o Options) (*Result, error)
	}
	txns := []txn{
		{"rotate", func(t *testing.T, _ *fixture, _ Options) keys.Pair { return pairFromByte(t, 1) }, Rotate},
		{"commit", func(t *testing.T, _ *fixture, o Options) keys.Pair {
			o.Rand = &seedStream{first: 0x40}
			p, _, err := Stage(o)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}, Commit},
		{"restore", func(t *testing.T, f *fixture, o Options) keys.Pair {
			// Rotate once (backups/<testStamp> holds the fixture's key),
			// then restore that backup: the "old" key of the crashed
			// transaction is the rotated-to one.
			if _, err := Rotate(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			back := f.old
			f.old = f.live(t)
			f.rt.calls = nil
			return back
		}, func(ctx context.Context, o Options) (*Result, error) { return Restore(ctx, o, testStamp) }},
	}
	for _, tx := range txns {
		for _, c := range crashOutcome {
			t.Run(tx.op+"/"+c.point, func(t *testing.T) {
				f := newFixture(t)
				o := f.opts()
				next := tx.prepare(t, f, o)
				old := f.old
				var vcalls []verifyCall
				o.Verify = recordVerify(&vcalls, nil)

				crashAt(t, c.point, func(hook func(string)) error {
					o := o
					o.Hook = hook
					_, err := tx.run(context.Background(), o)
					return err
				})

				// What the kill left: a journal naming both keys.
				d, err := safefs.OpenDir(f.sd)
				if err != nil {
					t.Fatal(err)
				}
				j, err := readJournal(d)
				d.Close()
				if err != nil || j == nil {
					t.Fatalf("journal after a kill at %s: %+v, %v", c.point, j, err)
				}
				if j.Op != tx.op || j.OldPublicKey != old.PublicBase64() || j.NewPublicKey != next.PublicBase64() {
					t.Errorf("journal %+v, want op %s old %s new %s", j, tx.op, old.PublicBase64(), next.PublicBase64())
				}
				stoppedByCrash := !f.rt.running

				vcalls = nil
				f.rt.calls = nil
				rec, err := Resume(context.Background(), o)
				if err != nil {
					t.Fatalf("Resume after a kill at %s: %v", c.point, err)
				}
				wantAction, want := "rolled back", old
				if c.finished {
					wantAction, want = "finished", next
				}
				if rec == nil || rec.Action != wantAction {
					t.Fatalf("Resume after a kill at %s: %+v, want action %q", c.point, rec, wantAction)
				}
				if rec.Journal == nil || *rec.Journal != *j {
					t.Errorf("Recovery.Journal %+v, want %+v", rec.Journal, j)
				}
				f.assertLive(t, want, wantAction)
				f.assertClean(t)
				f.assertBackupOf(t, old)
				if !f.rt.running || !slices.Contains(f.rt.calls, "start") {
					t.Errorf("services not started by Resume (calls %v, stopped by the crash: %v)", f.rt.calls, stoppedByCrash)
				}
				// A finished rotation is verified (new, old); a rolled-back
				// one has nothing new to verify.
				if c.finished {
					if !rec.Verified || len(vcalls) != 1 || vcalls[0] != (verifyCall{next.PublicBase64(), old.PublicBase64()}) {
						t.Errorf("Resume verified=%v with %+v, want one Verify(new, old)", rec.Verified, vcalls)
					}
				} else if len(vcalls) != 0 || rec.Verified {
					t.Errorf("a rollback verified=%v with %+v", rec.Verified, vcalls)
				}
				// The new files exist from PointNewFiles until the renames.
				if c.point == PointNewFiles || c.point == PointStopped {
					for _, n := range []string{newSecret, newPublic} {
						if !slices.Contains(rec.RemovedTemps, n) {
							t.Errorf("RemovedTemps %q lacks %s", rec.RemovedTemps, n)
						}
					}
				}

				// Nothing is left to resume, and the next transaction works.
				f.rt.calls = nil
				if rec, err := Resume(context.Background(), o); rec != nil || err != nil || len(f.rt.calls) != 0 {
					t.Errorf("second Resume: %+v, %v, calls %v; want nothing to do", rec, err, f.rt.calls)
				}
				o.Rand = &seedStream{first: 0x60}
				before := f.live(t)
				res, err := Rotate(context.Background(), o)
				if err != nil {
					t.Fatalf("rotation after recovery: %v", err)
				}
				if res.Recovered != nil {
					t.Errorf("rotation after recovery recovered again: %+v", res.Recovered)
				}
				f.assertClean(t)
				f.assertBackupOf(t, before)
			})
		}
	}
}

// Without a journal Resume only removes what a crashed plain write left,
// and does not touch the services.
func TestResumeWithoutJournal(t *testing.T) {
	t.Run("nothing to do", func(t *testing.T) {
		f := newFixture(t)
		rec, err := Resume(context.Background(), f.opts())
		if rec != nil || err != nil || len(f.rt.calls) != 0 {
			t.Errorf("Resume: %+v, %v, calls %v; want nil, nil, none", rec, err, f.rt.calls)
		}
	})
	t.Run("leftovers", func(t *testing.T) {
		f := newFixture(t)
		leftovers := []string{
			newSecret,
			newPublic,
			"." + keys.SecretFile + safefs.TempMarker + "0a1b2c",
			backupsDir + "/." + "x" + safefs.TempMarker + "0a1b2c",
			backupsDir + "/" + testStamp + "/." + keys.SecretFile + safefs.TempMarker + "0a1b2c",
			stagedDir + "/." + keys.SecretFile + safefs.TempMarker + "0a1b2c",
		}
		for _, dir := range []string{backupsDir + "/" + testStamp, stagedDir} {
			if err := os.MkdirAll(filepath.Join(f.sd, dir), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(f.sd, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, n := range leftovers {
			dir := f.wd
			if strings.HasPrefix(n, backupsDir+"/") || strings.HasPrefix(n, stagedDir+"/") {
				dir = f.sd
			}
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rec, err := Resume(context.Background(), f.opts())
		if err != nil || rec == nil {
			t.Fatalf("Resume: %+v, %v", rec, err)
		}
		got := slices.Sorted(slices.Values(rec.RemovedTemps))
		want := slices.Sorted(slices.Values(leftovers))
		if !slices.Equal(got, want) {
			t.Errorf("RemovedTemps %q, want %q", got, want)
		}
		if rec.Action != "" || rec.Journal != nil || len(f.rt.calls) != 0 {
			t.Errorf("Recovery %+v, calls %v; want no action, no runtime calls", rec, f.rt.calls)
		}
		f.assertClean(t)
		f.assertLive(t, f.old, "leftovers only")
	})
}

// A journal Resume cannot trust is an error, and Resume leaves everything
// (the journal included) for a human rather than guess.
func TestResumeBadJournal(t *testing.T) {
	for _, tc := range []struct{ name, journal string }{
		{"not json", "{"},
		{"wrong format", `{"format":2,"stamp":"s","old_public_key":"a","new_public_key":"b"}`},
		{"no stamp", `{"format":1,"old_public_key":"a","new_public_key":"b"}`},
		{"no new key", `{"format":1,"stamp":"s","old_public_key":"a"}`},
		// Hostile: fields that would be printed or used as a directory
		// name carry terminal escapes, newlines, separators.
		{"escape in stamp", `{"format":1,"op":"rotate","stamp":"20260314T140926Z\u001b[2J","old_public_key":"` + pk(0xA0) + `","new_public_key":"` + pk(1) + `"}`},
		{"newline in stamp", `{"format":1,"op":"rotate","stamp":"20260314T140926Z\nrdctl: ok","old_public_key":"` + pk(0xA0) + `","new_public_key":"` + pk(1) + `"}`},
		{"stamp escapes backups", `{"format":1,"op":"rotate","stamp":"../../etc","old_public_key":"` + pk(0xA0) + `","new_public_key":"` + pk(1) + `"}`},
		{"key not base64", `{"format":1,"op":"rotate","stamp":"20260314T140926Z","old_public_key":"\u001b]0;x\u0007","new_public_key":"` + pk(1) + `"}`},
		{"unknown op", `{"format":1,"op":"rm -rf","stamp":"20260314T140926Z","old_public_key":"` + pk(0xA0) + `","new_public_key":"` + pk(1) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := os.Mkdir(f.sd, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(f.sd, JournalFile), []byte(tc.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			before := f.snapshot(t)
			rec, err := Resume(context.Background(), f.opts())
			if err == nil {
				t.Fatalf("Resume: %+v, want an error", rec)
			}
			var je *JournalError
			if !errors.As(err, &je) {
				t.Errorf("Resume: %v (%T), want a *JournalError", err, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07\n") || strings.Contains(msg, "rm -rf") || strings.Contains(msg, "../") {
				t.Errorf("the error quotes the journal: %q", msg)
			}
			if pending, err := NeedsResume(f.wd, f.sd); err == nil {
				t.Errorf("NeedsResume: %v, nil; want the journal's error", pending)
			}
			if _, err := Rotate(context.Background(), f.opts()); err == nil {
				t.Fatal("Rotate ran over an unreadable journal")
			}
			if after := f.snapshot(t); !slices.Equal(before, after) {
				t.Errorf("the working directory changed:\nbefore %q\nafter  %q", before, after)
			}
			if len(f.rt.calls) != 0 {
				t.Errorf("runtime calls %v", f.rt.calls)
			}
		})
	}
}

// crashedRotation leaves a rotation killed at point and returns the key it
// was switching to.
func crashedRotation(t *testing.T, f *fixture, point string) keys.Pair {
	t.Helper()
	crashAt(t, point, func(hook func(string)) error {
		o := f.opts()
		o.Hook = hook
		_, err := Rotate(context.Background(), o)
		return err
	})
	f.rt.calls = nil
	return pairFromByte(t, 1)
}

// Neither key of the journal is live (the secret was lost or replaced after
// the crash): Resume puts the backup of the old key back.
func TestResumeNeitherKeyLive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, f *fixture)
	}{
		{"secret missing", func(t *testing.T, f *fixture) {
			// With no secret to take the owner from, Resume writes the
			// backup back owned by root (the zero Owner).
			if os.Getuid() != 0 {
				t.Skip("needs root: the restored secret is chowned to root")
			}
			if err := os.Remove(filepath.Join(f.wd, keys.SecretFile)); err != nil {
				t.Fatal(err)
			}
		}},
		{"foreign secret", func(t *testing.T, f *fixture) { f.writeLive(t, pairFromByte(t, 0x77)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			crashedRotation(t, f, PointRenamedSecret)
			tc.damage(t, f)
			rec, err := Resume(context.Background(), f.opts())
			if err != nil || rec == nil || rec.Action != "rolled back" {
				t.Fatalf("Resume: %+v, %v; want rolled back", rec, err)
			}
			f.assertLive(t, f.old, "the backup put back")
			f.assertClean(t)
			if !f.rt.running || f.rt.callString() != "start" {
				t.Errorf("runtime calls %q running=%v", f.rt.callString(), f.rt.running)
			}
		})
	}
	t.Run("backup gone too", func(t *testing.T) {
		f := newFixture(t)
		crashedRotation(t, f, PointRenamedSecret)
		f.writeLive(t, pairFromByte(t, 0x77))
		if err := os.RemoveAll(filepath.Join(f.sd, backupsDir, testStamp)); err != nil {
			t.Fatal(err)
		}
		before := f.snapshot(t)
		if rec, err := Resume(context.Background(), f.opts()); err == nil {
			t.Fatalf("Resume without a backup: %+v, want an error", rec)
		}
		if after := f.snapshot(t); !slices.Equal(before, after) {
			t.Errorf("Resume changed what a human must inspect:\nbefore %q\nafter  %q", before, after)
		}
	})
}

// The new key of an interrupted rotation that fails verification on resume
// is rolled back to the backup.
func TestResumeVerifyFails(t *testing.T) {
	f := newFixture(t)
	next := crashedRotation(t, f, PointRenamed)
	o := f.opts()
	var vcalls []verifyCall
	o.Verify = recordVerify(&vcalls, errVerify)
	_, err := Resume(context.Background(), o)
	var rb *RolledBackError
	if !errors.As(err, &rb) || !errors.Is(err, errVerify) || rb.RestoreErr != nil {
		t.Fatalf("Resume: %v, want a clean RolledBackError caused by the verify failure", err)
	}
	if want := filepath.Join(f.sd, backupsDir, testStamp); rb.Backup != want {
		t.Errorf("RolledBackError.Backup = %q, want %q", rb.Backup, want)
	}
	if len(vcalls) != 1 || vcalls[0] != (verifyCall{next.PublicBase64(), f.old.PublicBase64()}) {
		t.Errorf("Verify calls %+v, want one (new, old)", vcalls)
	}
	f.assertLive(t, f.old, "rolled back after a failed verify")
	f.assertClean(t)
	if !f.rt.running {
		t.Error("services not running")
	}
}

// If Resume cannot start the services it fails and keeps the journal, so
// the next run can still finish the rotation.
func TestResumeStartFails(t *testing.T) {
	for _, c := range []struct {
		point    string
		finished bool
	}{{PointStopped, false}, {PointRenamed, true}} {
		t.Run(c.point, func(t *testing.T) {
			f := newFixture(t)
			next := crashedRotation(t, f, c.point)
			f.rt.startErrs = []error{errStart}
			if _, err := Resume(context.Background(), f.opts()); !errors.Is(err, errStart) {
				t.Fatalf("Resume: %v, want the start failure", err)
			}
			if !exists(t, f.sd, JournalFile) {
				t.Fatal("journal removed although the services did not start")
			}
			rec, err := Resume(context.Background(), f.opts())
			if err != nil || rec == nil {
				t.Fatalf("second Resume: %+v, %v", rec, err)
			}
			want := map[bool]keys.Pair{true: next, false: f.old}[c.finished]
			f.assertLive(t, want, rec.Action)
			f.assertClean(t)
			f.assertBackupOf(t, f.old)
			if !f.rt.running {
				t.Error("services not running")
			}
		})
	}
}

// With the secret gone, the key Resume puts back belongs to whoever owns
// the other key files (the service user on a live host), not to root: hbbs
// runs as that user and must be able to read it.
func TestResumeNeitherKeyLiveKeepsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the key files another owner")
	}
	const uid, gid = 4321, 4322
	f := newFixture(t)
	for _, n := range []string{keys.SecretFile, keys.PublicFile} {
		if err := os.Lchown(filepath.Join(f.wd, n), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	crashedRotation(t, f, PointRenamedSecret)
	if err := os.Remove(filepath.Join(f.wd, keys.SecretFile)); err != nil {
		t.Fatal(err)
	}
	if rec, err := Resume(context.Background(), f.opts()); err != nil || rec == nil || rec.Action != "rolled back" {
		t.Fatalf("Resume: %+v, %v; want rolled back", rec, err)
	}
	f.assertLive(t, f.old, "the backup put back")
	for _, n := range []string{keys.SecretFile, keys.PublicFile} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(f.wd, n), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", n, st.Uid, st.Gid, uid, gid)
		}
	}
}

// pk is the public key string of pairFromByte(b).
func pk(b byte) string {
	return pairFromByte(&testing.T{}, b).PublicBase64()
}
