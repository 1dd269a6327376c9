//go:build integration

package harness

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupHierarchies lists the cgroup hierarchies a machine needs a cgroup of its own in: the
// single tree on a pure cgroup v2 host; the name=systemd v1 tree and the (possibly empty)
// unified v2 tree on a hybrid host, which is what the development machines run. The v1
// controller hierarchies are left alone: nspawn does not need them and the container sees them
// read-only anyway.
func cgroupHierarchies() ([]string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("no cgroup filesystem at /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{"/sys/fs/cgroup"}, nil
	}
	var hs []string
	for _, h := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"} {
		if unix.Statfs(h, &st) == nil && (st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC) {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return nil, errors.New("neither a cgroup v2 tree nor a name=systemd hierarchy is mounted under /sys/fs/cgroup; systemd cannot boot in a container here")
	}
	return hs, nil
}

// removeCgroup removes the cgroup dir and everything below it, deepest first. A cgroup can only
// be removed once its processes are gone, which lags behind their exit a little, so it retries
// until timeout. Past half the timeout it SIGKILLs the processes still listed in the tree: the
// tree was made for one machine, so they are that machine's processes.
func removeCgroup(dir string, timeout time.Duration) error {
	start := time.Now()
	killed := false
	for {
		var dirs []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) && len(dirs) == 0 {
			return nil
		}
		slices.Reverse(dirs) // WalkDir lists parents before children
		var lastErr error
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				lastErr = fmt.Errorf("remove cgroup %s: %w", d, err)
			}
		}
		if lastErr == nil {
			return nil
		}
		elapsed := time.Since(start)
		if elapsed > timeout {
			return fmt.Errorf("%w (processes left: %v)", lastErr, cgroupPIDs(dirs))
		}
		if !killed && elapsed > timeout/2 {
			killed = true
			for _, pid := range cgroupPIDs(dirs) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupPIDs lists the processes in the given cgroup dirs.
func cgroupPIDs(dirs []string) []int {
	var pids []int
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
