package safefs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockPath is where the lock lives on a live system. Its directory
// is rdctl's own (0700, owned by root): the lock used to be in /run/lock,
// which is world-writable, so any local user could hold it (and make
// every rotation exit 3), put a directory in its place, or, with
// fs.protected_symlinks=0, a symlink that made root create a file where
// the user chose.
const DefaultLockPath = "/run/rdctl/rdctl.lock"

// lockDirMode is the mode of a lock directory rdctl creates.
const lockDirMode = 0o700

// LockPath is the lock a run with --root root takes; "" means the live
// system (DefaultLockPath). An image tree's lock is never inside the tree
// (the tree is what gets shipped): it is in the caller's own runtime
// directory, $XDG_RUNTIME_DIR/rdctl when that is set and the caller's, else
// $TMPDIR/rdctl-<euid>, named after a hash of the tree's absolute path, so
// two runs on the same tree exclude each other and runs on different trees
// do not.
func LockPath(root string) (string, error) {
	if root == "" {
		return DefaultLockPath, nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", &PathError{Op: "resolve root", Path: root, Err: err}
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return filepath.Join(runtimeLockDir(), "root-"+hex.EncodeToString(sum[:12])+".lock"), nil
}

// runtimeLockDir is the directory of --root locks.
func runtimeLockDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		// Only a runtime directory that is really the caller's: under sudo
		// it may still name the invoking user's.
		var st unix.Stat_t
		if unix.Lstat(d, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == os.Geteuid() {
			return filepath.Join(d, "rdctl")
		}
	}
	return filepath.Join(os.TempDir(), "rdctl-"+strconv.Itoa(os.Geteuid()))
}

// UnsafeLockError reports a lock directory or lock file that another user
// could interfere with: not a real directory (or regular file), a symlink,
// owned by someone else, or group- or world-writable. rdctl refuses to
// lock there rather than fix it, since whoever made it may be holding it.
type UnsafeLockError struct {
	Path    string
	Problem string // what is wrong, in a few words
}

func (e *UnsafeLockError) Error() string {
	return fmt.Sprintf("unsafe lock %q: %s", e.Path, e.Problem)
}

// ErrUnsafeLock matches an *UnsafeLockError with errors.Is.
var ErrUnsafeLock = errors.New("unsafe lock")

// Is makes errors.Is(err, ErrUnsafeLock) true.
func (e *UnsafeLockError) Is(target error) bool { return target == ErrUnsafeLock }

// lockPoll is how often Lock retries a held lock while it waits.
const lockPoll = 10 * time.Millisecond

// LockedError reports that another rdctl holds the lock. rdctl exits 3 on it.
type LockedError struct {
	Path string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("another rdctl is running (lock %q is held)", e.Path)
}

// ErrLocked matches a *LockedError with errors.Is.
var ErrLocked = errors.New("locked")

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock takes the exclusive lock at path (a dedicated file that is never
// renamed over), waiting at most wait for a holder to let go. It returns the
// function that releases it. The lock is an flock(2) on that file, tried
// without blocking and retried every lockPoll until wait is over, so an
// uncontended lock is taken at once however busy the machine is. The kernel
// releases it when the process dies, even on SIGKILL: there are no stale
// locks to clean up.
//
// The lock's directory is created 0700 when missing; when it exists it must
// be a directory (not a symlink) owned by the caller's effective uid and
// writable by no one else, and the lock file in it a regular file owned by
// the caller; anything else is an *UnsafeLockError. The file is opened
// relative to the opened directory, never following a symlink, so nothing
// another user controls decides what root opens or creates.
func Lock(path string, wait time.Duration) (unlock func(), err error) {
	dir, name := filepath.Dir(path), filepath.Base(path)
	dfd, err := openLockDir(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	unix.Close(dfd)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, &UnsafeLockError{Path: path, Problem: "is a symbolic link"}
	case errors.Is(err, unix.EISDIR):
		return nil, &UnsafeLockError{Path: path, Problem: "is a directory"}
	case err != nil:
		return nil, &PathError{Op: "open lock", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &PathError{Op: "stat lock", Path: path, Err: err}
	}
	if problem := unsafeLockFile(&st); problem != "" {
		f.Close()
		return nil, &UnsafeLockError{Path: path, Problem: problem}
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				unix.Flock(fd, unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, &PathError{Op: "lock", Path: path, Err: err}
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, &LockedError{Path: path}
		}
		time.Sleep(min(lockPoll, time.Until(deadline)+time.Millisecond))
	}
}

// openLockDir creates dir (0700) if it is missing, opens it without
// following a symlink and checks that only the caller controls it. Its
// parents are created 0755 if missing (/run always exists on a live host).
func openLockDir(dir string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return -1, &PathError{Op: "create lock directory", Path: filepath.Dir(dir), Err: err}
	}
	if err := unix.Mkdir(dir, lockDirMode); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &PathError{Op: "create lock directory", Path: dir, Err: err}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP):
		return -1, &UnsafeLockError{Path: dir, Problem: "is a symbolic link"}
	case errors.Is(err, unix.ENOTDIR):
		return -1, &UnsafeLockError{Path: dir, Problem: "is not a directory"}
	case err != nil:
		return -1, &PathError{Op: "open lock directory", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		unix.Close(dfd)
		return -1, &PathError{Op: "stat lock directory", Path: dir, Err: err}
	}
	switch {
	case int(st.Uid) != os.Geteuid():
		unix.Close(dfd)
		return -1, &UnsafeLockError{Path: dir, Problem: fmt.Sprintf("is owned by uid %d, not %d", st.Uid, os.Geteuid())}
	case st.Mode&0o022 != 0:
		unix.Close(dfd)
		return -1, &UnsafeLockError{Path: dir, Problem: fmt.Sprintf("is writable by others (mode %04o)", fs.FileMode(st.Mode&0o7777))}
	}
	return dfd, nil
}

// unsafeLockFile says what is wrong with an opened lock file, or "".
func unsafeLockFile(st *unix.Stat_t) string {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "is not a regular file"
	case int(st.Uid) != os.Geteuid():
		return fmt.Sprintf("is owned by uid %d, not %d", st.Uid, os.Geteuid())
	}
	return ""
}
