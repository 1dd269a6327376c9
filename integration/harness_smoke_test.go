//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	"github.com/rdctl/rdctl/integration/harness"
)

// TestSmokeSystemd boots a real systemd and drives a unit in it from the host over D-Bus with
// go-systemd, as rdctl's systemd backend does; then checks that the shutdown leaves nothing.
func TestSmokeSystemd(t *testing.T) {
	var m *harness.Machine
	t.Run("machine", func(t *testing.T) {
		start := time.Now()
		m = harness.BootSystemd(t, harness.WithPrivateNetwork())
		t.Logf("TIMING boot %v", time.Since(start).Round(time.Millisecond))

		const unit = "rdit-sleep.service"
		unitText := "[Unit]\nDescription=rdctl harness smoke sleeper\n\n[Service]\nExecStart=/bin/sleep 1000\n\n[Install]\nWantedBy=multi-user.target\n"
		if err := m.WriteFile("/etc/systemd/system/"+unit, []byte(unitText), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := m.ReadFile("/etc/systemd/system/" + unit); err != nil || string(got) != unitText {
			t.Fatalf("ReadFile back: %q, %v", got, err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cycle := time.Now()
		conn, err := sddbus.NewConnection(func() (*godbus.Conn, error) {
			c, err := godbus.Dial(m.DBusAddress(), godbus.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			if err := c.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
				c.Close()
				return nil, err
			}
			if err := c.Hello(); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		})
		if err != nil {
			t.Fatalf("connect to %s: %v", m.DBusAddress(), err)
		}
		defer conn.Close()

		if err := conn.ReloadContext(ctx); err != nil {
			t.Fatalf("daemon-reload: %v", err)
		}
		_, changes, err := conn.EnableUnitFilesContext(ctx, []string{unit}, false, true)
		if err != nil {
			t.Fatalf("enable: %v", err)
		}
		if len(changes) == 0 || changes[0].Type != "symlink" {
			t.Fatalf("enable made no symlink: %+v", changes)
		}
		done := make(chan string, 1)
		if _, err := conn.StartUnitContext(ctx, unit, "replace", done); err != nil {
			t.Fatalf("start: %v", err)
		}
		select {
		case r := <-done:
			if r != "done" {
				t.Fatalf("start job result %q\njournal:\n%s", r, m.Journal(unit))
			}
		case <-ctx.Done():
			t.Fatal("start job did not finish")
		}
		props, err := conn.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TIMING dbus reload+enable+start+read %v", time.Since(cycle).Round(time.Millisecond))
		if props["ActiveState"] != "active" || props["SubState"] != "running" || props["UnitFileState"] != "enabled" {
			t.Fatalf("ActiveState=%v SubState=%v UnitFileState=%v", props["ActiveState"], props["SubState"], props["UnitFileState"])
		}
		mainPID, err := conn.GetServicePropertyContext(ctx, unit, "MainPID")
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := mainPID.Value.Value().(uint32)
		if pid == 0 {
			t.Fatalf("MainPID = %v", mainPID.Value)
		}
		// Cross-check from inside the machine: the same unit, PID and command line.
		if got := strings.TrimSpace(m.MustExec(t, "systemctl", "is-active", unit)); got != "active" {
			t.Fatalf("systemctl is-active = %q", got)
		}
		cmdline := m.MustExec(t, "cat", fmt.Sprintf("/proc/%d/cmdline", pid))
		if cmdline != "/bin/sleep\x001000\x00" {
			t.Fatalf("MainPID %d runs %q", pid, cmdline)
		}
		link := strings.TrimSpace(m.MustExec(t, "readlink", "/etc/systemd/system/multi-user.target.wants/"+unit))
		if link != "/etc/systemd/system/"+unit {
			t.Fatalf("enable link points to %q", link)
		}
		// Exec reports exit codes without an error.
		if _, _, code, err := m.Exec(ctx, "systemctl", "is-active", "no-such.service"); err != nil || code == 0 {
			t.Fatalf("is-active of a missing unit: code %d, err %v", code, err)
		}

		stopped := make(chan string, 1)
		if _, err := conn.StopUnitContext(ctx, unit, "replace", stopped); err != nil {
			t.Fatal(err)
		}
		if r := <-stopped; r != "done" {
			t.Fatalf("stop job result %q", r)
		}
		props, err = conn.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		if props["ActiveState"] != "inactive" {
			t.Fatalf("after stop ActiveState=%v", props["ActiveState"])
		}
		if j := m.Journal(unit); !strings.Contains(j, "Started rdit-sleep.service") || !strings.Contains(j, "Stopped rdit-sleep.service") {
			t.Fatalf("journal lacks start/stop lines:\n%s", j)
		}

		// A command in the machine can be killed: directly (GuestProcess), and by its context.
		cmd := m.Command(ctx, "sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p, err := m.GuestProcess(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid)); strings.TrimSpace(string(comm)) != "sleep" {
			t.Fatalf("GuestProcess is %q, not sleep", comm)
		}
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("after SIGKILL of the guest process: %v", err)
		}
		waitGone(t, p.Pid)
		short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
		cmd = m.Command(short, "sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if p, err = m.GuestProcess(cmd); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_ = cmd.Wait()
		cancelShort()
		if time.Since(began) > 5*time.Second {
			t.Fatalf("context end took %v to stop the command", time.Since(began))
		}
		waitGone(t, p.Pid)

		// The private network has only a loopback interface, seen from a thread that joined it.
		var names []string
		if err := m.InNetns(func() error {
			ifs, err := net.Interfaces()
			for _, i := range ifs {
				names = append(names, i.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{"lo"}) {
			t.Fatalf("machine interfaces = %v, want [lo]", names)
		}
	})
	if m == nil || t.Failed() {
		return
	}
	// The subtest's cleanup has shut the machine down: no nspawn, no leader, no cgroups.
	if err := syscall.Kill(m.NspawnPID(), 0); err == nil {
		t.Errorf("systemd-nspawn pid %d still exists after cleanup", m.NspawnPID())
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.Leader())); err == nil && strings.TrimSpace(string(comm)) == "systemd" {
		t.Errorf("leader pid %d still runs systemd after cleanup", m.Leader())
	}
	for _, d := range m.CgroupDirs() {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left behind", d)
		}
	}
}

// TestSmokeTwoMachines boots two machines side by side and checks that each runs in a cgroup
// tree of its own (machines started from one cgroup would share a tree and kill each other's
// processes) and in a network namespace of its own.
func TestSmokeTwoMachines(t *testing.T) {
	a := harness.BootSystemd(t, harness.WithPrivateNetwork())
	b := harness.BootSystemd(t, harness.WithPrivateNetwork())
	for _, m := range []*harness.Machine{a, b} {
		out := m.MustExec(t, "systemctl", "show", "-p", "ControlGroup", "--value", "dbus.service")
		if strings.TrimSpace(out) != "/system.slice/dbus.service" {
			t.Fatalf("%s: dbus ControlGroup %q", m.Name(), out)
		}
		conn, err := m.SystemdConn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		v, err := conn.GetServicePropertyContext(t.Context(), "dbus.service", "MainPID")
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		pid := fmt.Sprint(v.Value.Value())
		// MainPID is in the machine's PID namespace; look at the cgroup from inside, and at the
		// leader's cgroup from the host.
		inside := m.MustExec(t, "cat", "/proc/"+pid+"/cgroup")
		if !strings.Contains(inside, "/system.slice/dbus.service") {
			t.Fatalf("%s: dbus-daemon cgroup %q", m.Name(), inside)
		}
		host, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", m.Leader()))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(host), "/rdctl-it-"+m.Name()+"/payload") {
			t.Fatalf("%s: leader cgroup on the host:\n%s", m.Name(), host)
		}
	}
	if a.NetnsPath() == b.NetnsPath() {
		t.Fatal("same netns path")
	}
	var ia, ib os.FileInfo
	ia, _ = os.Stat(a.NetnsPath())
	ib, _ = os.Stat(b.NetnsPath())
	if ia == nil || ib == nil || os.SameFile(ia, ib) {
		t.Fatal("the two machines share a network namespace")
	}
	// The same port is free in both: listen on it in each.
	for _, m := range []*harness.Machine{a, b} {
		if err := m.InNetns(func() error {
			ln, err := net.Listen("tcp", "127.0.0.1:21116")
			if err != nil {
				return err
			}
			return ln.Close()
		}); err != nil {
			t.Fatalf("%s: %v", m.Name(), err)
		}
	}
}

// helloSource is a tiny server: it answers every TCP connection on :8080 with "hello\n".
const helloSource = `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		fmt.Fprintln(c, "hello")
		c.Close()
	}
}
`

// TestSmokeDocker builds a FROM scratch image from a static Go program and runs it as a compose
// project on the real engine, then checks the cleanup removed the project and the image.
func TestSmokeDocker(t *testing.T) {
	var d *harness.DockerEnv
	var project, imageID string
	t.Run("compose", func(t *testing.T) {
		d = harness.Docker(t)
		t.Logf("engine %s, API %s, compose %s", d.ServerVersion, d.APIVersion, d.ComposeVersion)

		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(helloSource), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		bin := harness.BuildStatic(t, src)
		t.Logf("TIMING go build (static) %v", time.Since(start).Round(time.Millisecond))

		tag := "rdctl-it/smoke-hello:" + strconv.FormatInt(time.Now().UnixNano(), 36)
		start = time.Now()
		imageID = d.BuildScratchImage(t, harness.ScratchImage{
			Tag:        tag,
			Files:      []harness.ImageFile{{Host: bin, Image: "/usr/bin/hello"}},
			Workdir:    "/root",
			Entrypoint: []string{"hello"},
		})
		t.Logf("TIMING docker build %v", time.Since(start).Round(time.Millisecond))

		port := freePort(t)
		p := d.NewProject(t, fmt.Sprintf(`services:
  hello:
    image: %s
    pull_policy: never
    ports: ["127.0.0.1:%d:8080"]
    restart: unless-stopped
`, tag, port))
		project = p.Name
		start = time.Now()
		p.MustCompose(t, "up", "-d", "--wait")
		t.Logf("TIMING compose up -d %v", time.Since(start).Round(time.Millisecond))

		if got := readLine(t, fmt.Sprintf("127.0.0.1:%d", port)); got != "hello" {
			t.Fatalf("server said %q", got)
		}
		// `compose ps --format json` is NDJSON: one object per line.
		ps := p.MustCompose(t, "ps", "--format", "json")
		var c struct{ Service, State, Project string }
		if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(ps), "\n", 2)[0]), &c); err != nil {
			t.Fatalf("compose ps: %v\n%s", err, ps)
		}
		if c.Service != "hello" || c.State != "running" || c.Project != p.Name {
			t.Fatalf("compose ps = %+v", c)
		}

		start = time.Now()
		p.MustCompose(t, "down")
		t.Logf("TIMING compose down %v", time.Since(start).Round(time.Millisecond))
		if left := d.MustExec(t, "ps", "-aq", "--filter", "label="+harness.ComposeProjectLabel+"="+p.Name); strings.TrimSpace(left) != "" {
			t.Fatalf("containers left after down: %s", left)
		}

		// Bring it up again and leave it running: the cleanup must remove it.
		p.MustCompose(t, "up", "-d", "--wait")
	})
	if d == nil || t.Failed() {
		return
	}
	for _, kind := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}} {
		args := append(kind, "--filter", "label="+harness.ComposeProjectLabel+"="+project)
		if left := d.MustExec(t, args...); strings.TrimSpace(left) != "" {
			t.Errorf("docker %v: left after cleanup: %s", kind, left)
		}
	}
	if _, _, code, _ := d.Exec(t.Context(), "image", "inspect", imageID); code == 0 {
		t.Errorf("image %s left after cleanup", imageID)
	}
}

// TestSmokeNetns makes a namespace, talks between it and the host over the /30 link and only
// there, applies an nftables rule inside it, and checks the cleanup removes it.
func TestSmokeNetns(t *testing.T) {
	var n *harness.Netns
	t.Run("netns", func(t *testing.T) {
		n = harness.NewNetns(t, "smoke")
		// Nothing leads out of the namespace: the only route is the /30 to the host side.
		routes := strings.TrimSpace(n.MustExec(t, "ip", "-4", "route", "show"))
		if routes != fmt.Sprintf("%s dev %s proto kernel scope link src %s", n.Prefix, n.NsIf, n.NsAddr) {
			t.Fatalf("routes in the namespace:\n%s", routes)
		}
		// Ping the host-side address of the link, from inside.
		n.MustExec(t, "ping", "-c", "1", "-W", "5", n.HostAddr.String())

		// A TCP server inside, reached from the host over the link.
		var ln net.Listener
		if err := n.Do(func() (err error) {
			ln, err = net.Listen("tcp", net.JoinHostPort(n.NsAddr.String(), "0"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(c, "from-netns")
				c.Close()
			}
		}()
		addr := ln.Addr().String()
		if got := readLine(t, addr); got != "from-netns" {
			t.Fatalf("got %q", got)
		}

		// nftables inside the namespace only: reject the port, and the host can no longer connect.
		_, port, _ := net.SplitHostPort(addr)
		rules := "table inet rdit_smoke {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport " + port + " reject with tcp reset\n }\n}\n"
		cmd := n.Command(t.Context(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if _, stderr, code, err := harness.Run(cmd); err != nil || code != 0 {
			t.Fatalf("nft -f: code %d %v %s", code, err, stderr)
		}
		if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			c.Close()
			t.Fatal("connected through the rejecting nftables rule")
		}
		if !strings.Contains(n.MustExec(t, "nft", "list", "tables"), "rdit_smoke") {
			t.Fatal("table not listed inside the namespace")
		}
		if out, _, _, _ := harness.Run(execCommand(t, "nft", "list", "tables")); strings.Contains(out, "rdit_smoke") {
			t.Fatal("the namespace's table leaked into the host ruleset")
		}
	})
	if n == nil || t.Failed() {
		return
	}
	if _, err := os.Stat(n.Path()); err == nil {
		t.Errorf("netns %s left after cleanup", n.Name)
	}
	if _, err := net.InterfaceByName(n.HostIf); err == nil {
		t.Errorf("link %s left after cleanup", n.HostIf)
	}
}

// waitGone waits up to 5 s for the process to exit and be reaped (or left a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state is the field after the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readLine connects to addr, retrying for up to 10 s while it is not yet listening, and returns
// the first line it sends.
func readLine(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line from %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execCommand prepares a host command bound to the test's context.
func execCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(t.Context(), name, args...)
}
