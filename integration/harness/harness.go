//go:build integration

// Package harness provides the real things rdctl's integration tests run against:
//
//   - BootSystemd: a real systemd, booted as PID 1 of a systemd-nspawn container from the rootfs
//     that scripts/setup-integration caches (default /var/cache/rdctl-it/rootfs), controlled from
//     the host over the container's system bus or with nsenter;
//   - Docker: a real Docker engine with the Compose v2 plugin, FROM-scratch images built from
//     static binaries, and compose projects that are removed afterwards;
//   - BuildStatic: static (CGO_ENABLED=0) builds of Go packages to put into machines and images;
//   - NewNetns: network namespaces joined to the host by a veth pair on private test addresses.
//
// Prerequisites come from scripts/setup-integration, run once as root. When one is missing, a
// helper skips the test with a message saying what to run; with RDCTL_IT_STRICT=1 in the
// environment it fails the test instead, so that a CI job cannot go green by skipping everything.
// RDCTL_IT_ROOTFS overrides the rootfs location.
//
// Cleanup is registered with t.Cleanup and only ever signals, deletes or removes what the helper
// itself created: processes by the PID it started, namespaces, links, cgroups, containers,
// networks, volumes and images by the name, ID or label it gave them. Nothing found on the host
// is touched.
//
// All traffic these helpers make possible stays on the host: loopback, the machines' own
// network namespaces, and the /30 links between the host and namespaces a test created.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultRootfs is where scripts/setup-integration caches the debootstrapped bookworm rootfs
// (systemd, systemd-sysv, dbus, iproute2, nftables). RDCTL_IT_ROOTFS overrides it.
const DefaultRootfs = "/var/cache/rdctl-it/rootfs"

// rootfsMarker is the file setup-integration writes into the rootfs once it is complete.
const rootfsMarker = ".rdctl-it-rootfs"

// setupHint is appended to every "prerequisite missing" message.
const setupHint = "run scripts/setup-integration as root first"

// unavailable skips the test because a prerequisite is missing, or fails it when
// RDCTL_IT_STRICT=1 asks for missing prerequisites to be errors.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "harness: " + fmt.Sprintf(format, args...)
	if os.Getenv("RDCTL_IT_STRICT") == "1" {
		t.Fatal(msg + " (RDCTL_IT_STRICT=1 makes this an error instead of a skip)")
	}
	t.Skip(msg)
}

// RequireRoot skips the test (or fails it under RDCTL_IT_STRICT=1) unless it runs as root, which
// systemd-nspawn, nsenter, cgroup writes and network namespaces all need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "needs root (systemd-nspawn, namespaces, cgroups); run the integration tests as root after scripts/setup-integration")
	}
}

// lookPath finds a host binary or reports it as an unavailable prerequisite.
func lookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "%s not found (Debian package %s); %s", name, pkg, setupHint)
	}
	return p
}

// Run runs cmd to completion with its stdout and stderr captured (unless the caller already set
// them). err is nil whenever the process ran and exited by itself, whatever its exit code: a
// non-zero exit is reported through exitCode alone. err is set, and exitCode is -1, when the
// process could not be started, was killed by a signal, or cmd's context ended first.
func Run(cmd *exec.Cmd) (stdout, stderr string, exitCode int, err error) {
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	err = cmd.Run()
	stdout, stderr = out.String(), errb.String()
	if err == nil {
		return stdout, stderr, 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return stdout, stderr, ee.ExitCode(), nil
	}
	return stdout, stderr, -1, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
}

// mustRun runs cmd and fails the test unless it exits 0. It returns stdout.
func mustRun(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	stdout, stderr, code, err := Run(cmd)
	if err != nil {
		t.Fatalf("harness: %v\nstderr: %s", err, stderr)
	}
	if code != 0 {
		t.Fatalf("harness: %s: exit status %d\nstdout: %s\nstderr: %s", strings.Join(cmd.Args, " "), code, stdout, stderr)
	}
	return stdout
}

// failure describes why a command did not succeed, for messages: the error if it did not run,
// else its exit code and the last lines of its stderr.
func failure(code int, err error, stderr string) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("exit status %d: %s", code, tail(strings.TrimSpace(stderr), 3))
}

// randomID returns n random bytes as 2n lowercase hex digits, for names that must not collide
// with those of other tests or of other test processes running at the same time.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// testContext returns a context for a helper's own commands: the test's context, bounded by d.
func testContext(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// cleanupContext returns a context for cleanup work, which runs after the test's context ended.
func cleanupContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// lockedBuffer is an io.Writer safe for the concurrent writes of a child's stdout and stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LookPath finds a host program, or skips the test (fails it under
// RDCTL_IT_STRICT=1) naming the Debian package that provides it.
func LookPath(t testing.TB, name, pkg string) string {
	t.Helper()
	return lookPath(t, name, pkg)
}
