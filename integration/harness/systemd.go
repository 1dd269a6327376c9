//go:build integration

package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Option configures BootSystemd.
type Option func(*bootConfig)

type bootConfig struct {
	rootfs         string
	privateNetwork bool
	nspawnArgs     []string
	initArgs       []string
	timeout        time.Duration
}

// WithPrivateNetwork gives the machine its own network namespace with only a loopback interface
// (nspawn --private-network), so that machines booted in parallel can all listen on the same
// ports. Reach it from the host with Machine.InNetns or Machine.NetCommand. Default: the machine
// shares the host's network, as a real server would.
func WithPrivateNetwork() Option { return func(c *bootConfig) { c.privateNetwork = true } }

// WithBind bind-mounts hostPath at guestPath, read-write (nspawn --bind).
func WithBind(hostPath, guestPath string) Option {
	return func(c *bootConfig) { c.nspawnArgs = append(c.nspawnArgs, "--bind="+hostPath+":"+guestPath) }
}

// WithBindReadOnly bind-mounts hostPath at guestPath, read-only (nspawn --bind-ro).
func WithBindReadOnly(hostPath, guestPath string) Option {
	return func(c *bootConfig) { c.nspawnArgs = append(c.nspawnArgs, "--bind-ro="+hostPath+":"+guestPath) }
}

// WithNspawnArgs appends raw systemd-nspawn options (before the boot arguments).
func WithNspawnArgs(args ...string) Option {
	return func(c *bootConfig) { c.nspawnArgs = append(c.nspawnArgs, args...) }
}

// WithInitArgs passes arguments to the container's systemd, kernel-command-line style
// (for example "systemd.mask=foo.service").
func WithInitArgs(args ...string) Option {
	return func(c *bootConfig) { c.initArgs = append(c.initArgs, args...) }
}

// WithBootTimeout bounds the wait for `systemctl is-system-running` to say running or degraded.
// Default 90 s (a boot takes about 0.5 s on the development machine).
func WithBootTimeout(d time.Duration) Option { return func(c *bootConfig) { c.timeout = d } }

// WithRootfs boots another rootfs than RDCTL_IT_ROOTFS or DefaultRootfs. It is never written to:
// the machine runs on a tmpfs overlay (--volatile=overlay).
func WithRootfs(dir string) Option { return func(c *bootConfig) { c.rootfs = dir } }

// guestEnv is the whole environment of commands run in a machine: the test process's own
// environment means nothing there and must not leak into what is tested.
var guestEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C",
	"USER=root",
	"LOGNAME=root",
}

// Machine is a running systemd-nspawn container with systemd as its PID 1 (the leader).
// Its root filesystem is a tmpfs overlay over the cached rootfs: everything written to it is
// gone after shutdown. It is shut down by the cleanup that BootSystemd registers.
type Machine struct {
	name       string
	leader     int
	nsenter    string
	cmd        *exec.Cmd
	done       chan struct{} // closed once systemd-nspawn has exited
	console    *lockedBuffer
	cgroups    []string // the cgroup dirs made for this machine, one per hierarchy
	bootTime   time.Duration
	privateNet bool
}

// BootSystemd boots a real systemd and returns once `systemctl is-system-running` inside says
// running or degraded (the failed units of a degraded boot are logged). The machine is started
// as
//
//	systemd-nspawn -D ROOTFS -b --register=no --keep-unit --volatile=overlay -M NAME ...
//
// from a cgroup of its own in every cgroup hierarchy systemd uses (name=systemd and unified on a
// hybrid host, the single tree on a pure cgroup v2 host): with --keep-unit nspawn nests the
// container below the cgroup it was started from, so two machines started from the same cgroup
// would share one tree and each systemd would kill the other's processes.
//
// t.Cleanup shuts it down: SIGTERM to the nspawn PID (an orderly poweroff), a wait, SIGKILL to
// the machine's own processes only if it has not stopped after 30 s, then removal of the cgroup
// dirs it made. The test is skipped when not root or when the rootfs cache is missing.
func BootSystemd(t testing.TB, opts ...Option) *Machine {
	t.Helper()
	RequireRoot(t)
	cfg := bootConfig{rootfs: DefaultRootfs, timeout: 90 * time.Second}
	if env := os.Getenv("RDCTL_IT_ROOTFS"); env != "" {
		cfg.rootfs = env
	}
	for _, o := range opts {
		o(&cfg)
	}
	nspawn := lookPath(t, "systemd-nspawn", "systemd-container")
	m := &Machine{
		name:       "rdit-" + randomID(4),
		nsenter:    lookPath(t, "nsenter", "util-linux"),
		done:       make(chan struct{}),
		console:    &lockedBuffer{},
		privateNet: cfg.privateNetwork,
	}
	if _, err := os.Stat(filepath.Join(cfg.rootfs, rootfsMarker)); err != nil {
		unavailable(t, "no rootfs cache at %s (%v); %s", cfg.rootfs, err, setupHint)
	}

	hierarchies, err := cgroupHierarchies()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	// Registered before anything is made, so that a failure half-way still removes what was.
	t.Cleanup(func() { m.shutdown(t) })
	var procs []string
	for _, h := range hierarchies {
		dir := filepath.Join(h, "rdctl-it-"+m.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("harness: create cgroup for %s: %v", m.name, err)
		}
		m.cgroups = append(m.cgroups, dir)
		procs = append(procs, filepath.Join(dir, "cgroup.procs"))
	}

	args := []string{
		"-D", cfg.rootfs, "-b",
		"--register=no",       // there is no machined on the host to register with
		"--keep-unit",         // and no host systemd to make a scope: stay in our own cgroup
		"--volatile=overlay",  // every boot starts from the pristine rootfs, nothing is written back
		"--link-journal=no",   // leave the host's /var/log/journal alone
		"--console=read-only", // boot messages go to the console buffer
		"-M", m.name,
	}
	if cfg.privateNetwork {
		args = append(args, "--private-network")
	}
	args = append(args, cfg.nspawnArgs...)
	args = append(args, cfg.initArgs...)
	// The shell moves itself into the machine's cgroups, then becomes systemd-nspawn (same PID).
	script := `while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"`
	shArgs := append([]string{"-c", script, "sh"}, procs...)
	shArgs = append(shArgs, "--", nspawn)
	shArgs = append(shArgs, args...)
	m.cmd = exec.Command("/bin/sh", shArgs...)
	m.cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	m.cmd.Stdout = m.console
	m.cmd.Stderr = m.console
	// If the test binary dies without running its cleanups (a go test timeout, a SIGKILL), nspawn
	// gets SIGTERM and powers the container off instead of leaving it running.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}

	start := time.Now()
	if err := m.cmd.Start(); err != nil {
		close(m.done)
		t.Fatalf("harness: start systemd-nspawn: %v", err)
	}
	go func() {
		m.cmd.Wait()
		close(m.done)
	}()

	if err := m.waitBooted(t, start.Add(cfg.timeout)); err != nil {
		t.Fatalf("harness: machine %s did not boot: %v\nconsole:\n%s", m.name, err, tail(m.console.String(), 60))
	}
	m.bootTime = time.Since(start)
	t.Logf("harness: machine %s booted in %v (nspawn pid %d, leader pid %d)", m.name, m.bootTime.Round(time.Millisecond), m.cmd.Process.Pid, m.leader)
	return m
}

// waitBooted finds the container's PID 1 and waits for `systemctl is-system-running`.
func (m *Machine) waitBooted(t testing.TB, deadline time.Time) error {
	last := "no leader yet"
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("systemd-nspawn exited (%v)", m.cmd.ProcessState)
		default:
		}
		// The first child of nspawn is short-lived; the container's PID 1 is the child running
		// systemd, so re-resolve it on every try.
		if leader := systemdChild(m.cmd.Process.Pid); leader > 0 {
			m.leader = leader
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, _, _, err := m.Exec(ctx, "systemctl", "is-system-running")
			cancel()
			state := strings.TrimSpace(out)
			switch {
			case err != nil:
				last = err.Error()
			case state == "running":
				return nil
			case state == "degraded":
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				failed, _, _, _ := m.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
				cancel()
				t.Logf("harness: machine %s booted degraded; failed units:\n%s", m.name, failed)
				return nil
			default:
				last = "is-system-running: " + state
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("timed out; last state: %s", last)
}

// systemdChild returns the PID of the child of pid whose command is systemd, or 0.
func systemdChild(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(data)) {
		c, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
			return c
		}
	}
	return 0
}

// shutdown powers the machine off and removes its cgroups. It only ever signals the nspawn
// process it started and, if that does not stop, the container's own PID 1 and the processes in
// the machine's own cgroups.
func (m *Machine) shutdown(t testing.TB) {
	if t.Failed() && m.console != nil {
		t.Logf("harness: console of machine %s:\n%s", m.name, tail(m.console.String(), 40))
	}
	start := time.Now()
	if m.cmd != nil && m.cmd.Process != nil {
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Signal(syscall.SIGTERM) // nspawn turns this into an orderly poweroff
			select {
			case <-m.done:
			case <-time.After(30 * time.Second):
				t.Errorf("harness: machine %s still running 30 s after SIGTERM; killing it", m.name)
				if m.leader > 0 && systemdChild(m.cmd.Process.Pid) == m.leader {
					// SIGKILL to PID 1 of the container's PID namespace ends every process in it.
					_ = syscall.Kill(m.leader, syscall.SIGKILL)
				}
				_ = m.cmd.Process.Kill()
				select {
				case <-m.done:
				case <-time.After(10 * time.Second):
					t.Errorf("harness: systemd-nspawn (pid %d) did not exit after SIGKILL", m.cmd.Process.Pid)
				}
			}
		}
	}
	stopped := time.Since(start)
	if stopped > 5*time.Second && !t.Failed() {
		t.Logf("harness: machine %s took %v to stop; console:\n%s", m.name, stopped.Round(time.Millisecond), tail(m.console.String(), 25))
	}
	for _, dir := range m.cgroups {
		if err := removeCgroup(dir, 10*time.Second); err != nil {
			t.Errorf("harness: %v", err)
		}
	}
	// nspawn leaves an empty directory per machine here; remove it if it is empty, nothing more.
	_ = os.Remove(filepath.Join("/run/systemd/nspawn/propagate", m.name))
	if m.leader > 0 {
		t.Logf("harness: machine %s shut down in %v (nspawn exited after %v)", m.name, time.Since(start).Round(time.Millisecond), stopped.Round(time.Millisecond))
	}
}

// Name is the machine's name (nspawn -M), also its hostname. Unique per boot: "rdit-" + 8 hex.
func (m *Machine) Name() string { return m.name }

// Leader is the PID, in the host's PID namespace, of the machine's PID 1 (its systemd).
func (m *Machine) Leader() int { return m.leader }

// NspawnPID is the PID of the systemd-nspawn process that runs the machine.
func (m *Machine) NspawnPID() int { return m.cmd.Process.Pid }

// BootTime is how long the boot took, from starting nspawn to systemd reporting running.
func (m *Machine) BootTime() time.Duration { return m.bootTime }

// PrivateNetwork reports whether the machine has a network namespace of its own.
func (m *Machine) PrivateNetwork() bool { return m.privateNet }

// CgroupDirs are the cgroup directories made for this machine (removed by the cleanup).
func (m *Machine) CgroupDirs() []string { return append([]string(nil), m.cgroups...) }

// Console is everything the machine printed on its console (the boot and shutdown log).
func (m *Machine) Console() string { return m.console.String() }

// Command prepares argv to run inside the machine, in all its namespaces and its root, through
// `nsenter -t LEADER -a`. The environment is a minimal root environment (PATH, HOME, LANG, USER,
// LOGNAME); append to cmd.Env to add variables. Callers may set Stdin, Stdout, Stderr.
// argv[0] is looked up in the machine's PATH.
//
// To enter the machine's PID namespace nsenter has to fork: cmd.Process is nsenter, and the
// command itself is its child. nsenter waits for it and exits the same way (same exit code, same
// fatal signal). Signalling cmd.Process does not reach the command: signal GuestProcess instead.
// Killing nsenter itself would orphan the command to the host's init, whose late reaping leaves
// a zombie that stalls the machine's shutdown by 10 s. When ctx ends, the command is killed
// (and nsenter too, if it has not exited 5 s later).
func (m *Machine) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(m.leader), "-a", "--"}, argv...)
	cmd := exec.CommandContext(ctx, m.nsenter, args...)
	cmd.Env = append([]string(nil), guestEnv...)
	cmd.Cancel = func() error {
		if p, err := childProcess(cmd.Process.Pid, 0); err == nil {
			return p.Kill() // nsenter reaps it and dies of the same signal
		}
		return cmd.Process.Kill() // not forked yet
	}
	// Bounds both nsenter's exit after Cancel and pipes held open by anything the command left.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// GuestProcess returns the process a started Command runs in the machine (nsenter's child), to
// signal it, e.g. with SIGKILL in a crash test. It waits up to 5 s for nsenter to fork it and for
// the child to exec the command, so the process returned is the command itself. Its Pid is the
// host's PID of the process.
func (m *Machine) GuestProcess(cmd *exec.Cmd) (*os.Process, error) {
	if cmd.Process == nil {
		return nil, errors.New("command not started")
	}
	return childProcess(cmd.Process.Pid, 5*time.Second)
}

// childProcess finds the (single) child of pid, waiting up to wait for it to appear and exec:
// between fork and exec the child is a copy of nsenter, with nsenter's command line and name.
// Both are compared: inside execve the kernel switches the command line before the name, so
// a look in between sees the new command line under nsenter's name.
func childProcess(pid int, wait time.Duration) (*os.Process, error) {
	deadline := time.Now().Add(wait)
	parentCmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	parentComm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil {
			return nil, fmt.Errorf("process %d: %w", pid, err)
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			c, err := strconv.Atoi(f[0])
			if err != nil {
				return nil, err
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			comm, cerr := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
			if wait == 0 || (err == nil && cerr == nil && string(cmdline) != string(parentCmdline) && string(comm) != string(parentComm)) {
				return os.FindProcess(c) // a pidfd on Linux: it cannot hit a reused PID later
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("process %d has no child running the command after %v", pid, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Exec runs argv inside the machine (see Command) and returns its output and exit code.
// err is nil whenever the command ran and exited, whatever its exit code; it is set only when it
// could not be run, was killed, or ctx ended (then exitCode is -1).
func (m *Machine) Exec(ctx context.Context, argv ...string) (stdout, stderr string, exitCode int, err error) {
	return Run(m.Command(ctx, argv...))
}

// MustExec runs argv inside the machine with a 2-minute bound and fails t unless it exits 0.
// It returns stdout.
func (m *Machine) MustExec(t testing.TB, argv ...string) string {
	t.Helper()
	ctx, cancel := testContext(t, 2*time.Minute)
	defer cancel()
	return mustRun(t, m.Command(ctx, argv...))
}

// NetCommand prepares a HOST binary to run in the machine's network namespace only
// (`nsenter -t LEADER -n`): it sees the machine's interfaces and ports, and the host's files.
// With WithPrivateNetwork this is how host tools (rdctl check, nmap, curl) reach the machine's
// services on 127.0.0.1.
func (m *Machine) NetCommand(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(m.leader), "-n", "--"}, argv...)
	return exec.CommandContext(ctx, m.nsenter, args...)
}

// NetnsPath is the machine's network namespace (/proc/LEADER/ns/net).
func (m *Machine) NetnsPath() string { return fmt.Sprintf("/proc/%d/ns/net", m.leader) }

// InNetns runs fn on an OS thread that has joined the machine's network namespace, so that
// sockets fn creates (net.Dial, net.Listen with IP literals) live there; a listener made inside
// keeps working after fn returns. Goroutines fn starts run outside the namespace.
func (m *Machine) InNetns(fn func() error) error { return doInNetns(m.NetnsPath(), fn) }

// Path is the host path of guest path p: /proc/LEADER/root + p. Files can be read and written
// through it, but an absolute symlink met on the way resolves against the HOST's root, not the
// machine's: prefer WriteFile, ReadFile and CopyFile, which resolve every link inside the machine.
func (m *Machine) Path(p string) string {
	return fmt.Sprintf("/proc/%d/root", m.leader) + filepath.Clean("/"+p)
}

// openRoot opens the machine's root directory as an O_PATH descriptor.
func (m *Machine) openRoot() (int, error) {
	return unix.Open(fmt.Sprintf("/proc/%d/root", m.leader), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// WriteFile writes data to the guest path (creating missing parent dirs 0755, owned by root) and
// sets its mode to exactly mode. Symlinks on the way resolve inside the machine.
func (m *Machine) WriteFile(path string, data []byte, mode os.FileMode) error {
	return m.writeFrom(path, strings.NewReader(string(data)), mode)
}

// CopyFile copies the host file hostPath to guestPath with mode, as WriteFile does.
func (m *Machine) CopyFile(hostPath, guestPath string, mode os.FileMode) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	return m.writeFrom(guestPath, f, mode)
}

func (m *Machine) writeFrom(path string, r io.Reader, mode os.FileMode) error {
	root, err := m.openRoot()
	if err != nil {
		return fmt.Errorf("machine %s: %w", m.name, err)
	}
	defer syscall.Close(root)
	if err := mkdirAllInRoot(root, filepath.Dir(filepath.Clean("/"+path))); err != nil {
		return fmt.Errorf("machine %s: mkdir for %s: %w", m.name, path, err)
	}
	fd, err := openInRoot(root, path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, uint32(mode.Perm()))
	if err != nil {
		return fmt.Errorf("machine %s: open %s: %w", m.name, path, err)
	}
	f := os.NewFile(uintptr(fd), m.Path(path))
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode) // the umask may have narrowed it at creation
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("machine %s: write %s: %w", m.name, path, err)
	}
	return nil
}

// ReadFile reads the guest path; symlinks on the way resolve inside the machine.
func (m *Machine) ReadFile(path string) ([]byte, error) {
	root, err := m.openRoot()
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", m.name, err)
	}
	defer syscall.Close(root)
	fd, err := openInRoot(root, path, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("machine %s: open %s: %w", m.name, path, err)
	}
	f := os.NewFile(uintptr(fd), m.Path(path))
	defer f.Close()
	return io.ReadAll(f)
}

// DBusAddress is the address of the machine's system bus as seen from the host, for go-systemd
// (sddbus.NewConnection with a godbus dialer, or DBUS_SYSTEM_BUS_ADDRESS for
// NewSystemConnectionContext). systemd's private socket cannot be used from the host: sd-bus
// rejects peers from another PID namespace.
func (m *Machine) DBusAddress() string {
	return fmt.Sprintf("unix:path=/proc/%d/root/run/dbus/system_bus_socket", m.leader)
}

// Journal returns the machine's journal for unit (`journalctl -u UNIT -o short-precise`), or a
// line describing why it could not be read. Meant for test failure messages.
func (m *Machine) Journal(unit string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, code, err := m.Exec(ctx, "journalctl", "--no-pager", "--no-hostname", "-o", "short-precise", "-u", unit)
	if err != nil || code != 0 {
		return fmt.Sprintf("(journalctl -u %s failed: code %d, err %v: %s)\n%s", unit, code, err, strings.TrimSpace(stderr), out)
	}
	return out
}
