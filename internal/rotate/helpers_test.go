package rotate

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// testNow is the fixed clock of every transaction in these tests, so backup
// stamps are known in advance.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

// testStamp is testNow as a backup stamp (UTC).
const testStamp = "20260314T140926Z"

// seedStream is a deterministic randomness source for keys.Generate: the
// k-th 32-byte block (k from 0) is filled with the byte first+k. Each block
// is one candidate seed, so the n-th generated pair is predictable.
type seedStream struct {
	first byte
	off   int
}

func (s *seedStream) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.first + byte(s.off/32)
		s.off++
	}
	return len(p), nil
}

// pairFromByte is the pair whose seed is 32 copies of b.
func pairFromByte(t testing.TB, b byte) keys.Pair {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = b
	}
	p, err := keys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// me owns everything the tests create: a non-root run cannot chown to root.
func me() keys.Owner { return keys.Owner{UID: os.Getuid(), GID: os.Getgid()} }

// fakeRuntime records Stop and Start calls and fails them on request.
type fakeRuntime struct {
	calls   []string
	running bool
	// stopErrs and startErrs are consumed one per call (a nil entry
	// succeeds); once empty, alwaysFailStart decides.
	stopErrs, startErrs []error
	alwaysFailStart     error
}

func newFakeRuntime() *fakeRuntime { return &fakeRuntime{running: true} }

func (f *fakeRuntime) Name() string { return "fake" }

func (f *fakeRuntime) Stop(context.Context) error {
	f.calls = append(f.calls, "stop")
	if len(f.stopErrs) > 0 {
		err := f.stopErrs[0]
		f.stopErrs = f.stopErrs[1:]
		if err != nil {
			return err
		}
	}
	f.running = false
	return nil
}

func (f *fakeRuntime) Start(context.Context) error {
	f.calls = append(f.calls, "start")
	err := f.alwaysFailStart
	if len(f.startErrs) > 0 {
		err = f.startErrs[0]
		f.startErrs = f.startErrs[1:]
	}
	if err != nil {
		return err
	}
	f.running = true
	return nil
}

func (f *fakeRuntime) Running(context.Context) (bool, error) { return f.running, nil }

func (f *fakeRuntime) callString() string { return strings.Join(f.calls, ",") }

// preparingRuntime is a fakeRuntime that is also a deploy.Preparer.
type preparingRuntime struct {
	*fakeRuntime
	prepareErr error
}

func (p *preparingRuntime) Prepare(context.Context) (func(), error) {
	p.calls = append(p.calls, "prepare")
	if p.prepareErr != nil {
		return func() {}, p.prepareErr
	}
	return func() { p.calls = append(p.calls, "release") }, nil
}

// verifyCall is one call of a recording Verify.
type verifyCall struct{ newKey, oldKey string }

// recordVerify returns a Verify that records its arguments and returns err.
func recordVerify(calls *[]verifyCall, err error) func(context.Context, string, string) error {
	return func(_ context.Context, newKey, oldKey string) error {
		*calls = append(*calls, verifyCall{newKey, oldKey})
		return err
	}
}

// fixture is a working directory holding a valid pair, and the options of
// a transaction on it.
type fixture struct {
	wd  string
	sd  string // rdctl's state directory, created by the first write
	old keys.Pair
	rt  *fakeRuntime
}

// oldSeedByte seeds the fixture's initial key; the seed stream of the
// options starts elsewhere so the two never coincide.
const oldSeedByte = 0xA0

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{wd: t.TempDir(), sd: filepath.Join(t.TempDir(), "state"), old: pairFromByte(t, oldSeedByte), rt: newFakeRuntime()}
	f.writeLive(t, f.old)
	return f
}

func (f *fixture) writeLive(t *testing.T, p keys.Pair) {
	t.Helper()
	d, err := safefs.OpenDir(f.wd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := keys.Write(d, p, me()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) opts() Options {
	return Options{
		WorkingDir:  f.wd,
		StateDir:    f.sd,
		Runtime:     f.rt,
		BackupOwner: me(),
		Now:         func() time.Time { return testNow },
		Rand:        &seedStream{first: 1},
	}
}

// live returns the live pair after checking it is valid and its .pub agrees.
func (f *fixture) live(t *testing.T) keys.Pair {
	t.Helper()
	d, err := safefs.OpenDir(f.wd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Valid || !st.PubMatches {
		t.Fatalf("live pair in %s: valid=%v (%v), pub matches=%v (%q)", f.wd, st.Valid, st.SecretErr, st.PubMatches, st.PubKey)
	}
	if st.SecretInfo.Mode.Perm() != keys.SecretMode || st.PubInfo.Mode.Perm() != keys.PublicMode {
		t.Errorf("live modes %04o/%04o, want %04o/%04o", st.SecretInfo.Mode.Perm(), st.PubInfo.Mode.Perm(), keys.SecretMode, keys.PublicMode)
	}
	return st.Pair
}

// assertLive checks that the live pair is consistent and is want.
func (f *fixture) assertLive(t *testing.T, want keys.Pair, what string) {
	t.Helper()
	if got := f.live(t); !got.Equal(want) {
		t.Errorf("live key is %s, want %s (%s)", got.PublicBase64(), want.PublicBase64(), what)
	}
}

// assertClean checks what every finished transaction must leave: no
// journal, no new-key files, no safefs temporaries anywhere below wd or
// the state directory.
func (f *fixture) assertClean(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(f.sd, JournalFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("journal still present (%v)", err)
	}
	for _, root := range []string{f.wd, f.sd} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == f.sd {
				return nil
			}
			if err != nil {
				t.Errorf("walk %s: %v", p, err)
				return nil
			}
			if n := d.Name(); strings.Contains(n, safefs.TempMarker) || strings.HasSuffix(n, ".rdctl-new") {
				t.Errorf("leftover %s", p)
			}
			return nil
		})
	}
}

// assertBackupOf checks that some backup holds p, whole: the listing says
// valid and the files read back, the .pub agreeing with the secret.
func (f *fixture) assertBackupOf(t *testing.T, p keys.Pair) string {
	t.Helper()
	all, err := ListBackups(f.wd, f.sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range all {
		if b.PublicKey != p.PublicBase64() {
			continue
		}
		if !b.Valid || b.Error != "" {
			t.Errorf("backup %s of %s: valid=%v %s", b.Stamp, b.PublicKey, b.Valid, b.Error)
		}
		sec, err := os.ReadFile(filepath.Join(b.Path, keys.SecretFile))
		if err != nil {
			t.Fatal(err)
		}
		got, err := keys.ParseSecret(sec)
		if err != nil || !got.Equal(p) {
			t.Errorf("backup %s secret reads back as %v (%v)", b.Stamp, got.PublicBase64(), err)
		}
		pub, err := os.ReadFile(filepath.Join(b.Path, keys.PublicFile))
		if err != nil || string(pub) != p.PublicBase64() {
			t.Errorf("backup %s .pub = %q (%v), want %q", b.Stamp, pub, err, p.PublicBase64())
		}
		for _, n := range []string{keys.SecretFile, keys.PublicFile} {
			if fi, err := os.Stat(filepath.Join(b.Path, n)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("backup %s/%s: mode %v (%v), want 0600", b.Stamp, n, fi.Mode().Perm(), err)
			}
		}
		if fi, err := os.Stat(b.Path); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("backup dir %s: mode %v (%v), want 0700", b.Stamp, fi.Mode().Perm(), err)
		}
		return b.Stamp
	}
	t.Errorf("no backup holds %s (backups: %+v)", p.PublicBase64(), all)
	return ""
}

// exists reports whether wd/rel exists (without following a last symlink).
func exists(t *testing.T, wd, rel string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(wd, rel))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// crashAt runs txn with a hook that "kills" it at point, and reports
// whether it got there.
//
// The kill is runtime.Goexit in the goroutine running the transaction. A
// SIGKILL stops the process at the hook: no later statement of the
// transaction runs, and the state on disk is what the step boundary left.
// Goexit ends the goroutine at the same place with the same effect on disk;
// the deferred calls it does run only close directory descriptors
// (d.Close), which change nothing on disk. Unlike a panic, Goexit cannot be
// recovered, so no recover() in the code under test could turn the "kill"
// into an ordinary error return and let cleanup run that a real crash
// would skip. The fake runtime keeps the state the kill left (stopped after
// PointStopped), as systemd would after rdctl died.
func crashAt(t *testing.T, point string, txn func(hook func(string)) error) {
	t.Helper()
	type outcome struct {
		returned bool
		err      error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() { done <- o }()
		hook := func(p string) {
			if p == point {
				runtime.Goexit()
			}
		}
		o.err = txn(hook)
		o.returned = true
	}()
	if o := <-done; o.returned {
		t.Fatalf("the transaction returned (%v) without reaching %s", o.err, point)
	}
}

// nopReader is a Rand with nothing left in it.
var nopReader io.Reader = strings.NewReader("")
