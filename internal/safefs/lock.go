package safefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockPath is where the lock lives on a live system; with --root it
// is resolved under the root.
const DefaultLockPath = "/run/lock/rdctl.lock"

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
func Lock(path string, wait time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &PathError{Op: "create lock directory", Path: filepath.Dir(path), Err: err}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, &PathError{Op: "open lock", Path: path, Err: err}
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				unix.Flock(int(f.Fd()), unix.LOCK_UN)
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
