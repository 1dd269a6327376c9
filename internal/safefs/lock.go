package safefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/lockedfile"
)

// DefaultLockPath is where the lock lives on a live system; with --root it
// is resolved under the root.
const DefaultLockPath = "/run/lock/rdctl.lock"

// minLockWait is how long Lock waits even when told not to wait: an
// uncontended lock is taken in microseconds, but by another goroutine.
const minLockWait = 50 * time.Millisecond

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
// renamed over), waiting at most wait for a holder to let go (at least
// minLockWait, the time an uncontended flock needs). It returns the
// function that releases it. The lock is an flock(2) through go-internal's
// lockedfile, so it is released by the kernel when the process dies, even on
// SIGKILL: there are no stale locks to clean up.
func Lock(path string, wait time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, &PathError{Op: "create lock directory", Path: filepath.Dir(path), Err: err}
	}
	// lockedfile has no try-lock: wait for it in a goroutine and give up after
	// wait. A goroutine that gets the lock after we gave up releases it at once.
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	mu := lockedfile.MutexAt(path)
	go func() {
		u, err := mu.Lock()
		got <- result{u, err}
	}()
	timer := time.NewTimer(max(wait, minLockWait))
	defer timer.Stop()
	select {
	case r := <-got:
		if r.err != nil {
			return nil, &PathError{Op: "lock", Path: path, Err: r.err}
		}
		return r.unlock, nil
	case <-timer.C:
		go func() {
			if r := <-got; r.err == nil {
				r.unlock()
			}
		}()
		return nil, &LockedError{Path: path}
	}
}
