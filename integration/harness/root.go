//go:build integration

package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// openInRoot opens path relative to the directory rootfd as if rootfd were "/": absolute
// symlinks and ".." met on the way stay inside it (openat2 RESOLVE_IN_ROOT), so a file of a
// machine is never confused with the host's file of the same name.
func openInRoot(rootfd int, path string, flags int, mode uint32) (int, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

// mkdirAllInRoot creates dir and its missing parents (0755) below rootfd, resolving as
// openInRoot does.
func mkdirAllInRoot(rootfd int, dir string) error {
	clean := filepath.Clean("/" + dir)
	if clean == "/" {
		return nil
	}
	fd, err := openInRoot(rootfd, clean, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == nil {
		unix.Close(fd)
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return err
	}
	parent := filepath.Dir(clean)
	if err := mkdirAllInRoot(rootfd, parent); err != nil {
		return err
	}
	pfd, err := openInRoot(rootfd, parent, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, filepath.Base(clean), 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// doInNetns runs fn on a dedicated OS thread that has joined the network namespace at nsPath,
// then moves the thread back. If moving back fails, the thread stays locked and the Go runtime
// discards it when the goroutine ends, so no other goroutine ever runs in the wrong namespace.
func doInNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back to the host namespace: %w", err))
			return // still locked: the thread is thrown away
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
