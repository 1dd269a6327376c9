package firewall

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests load the real nftables script with the real nft into network
// namespaces they create, and send packets only between those namespaces.

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nft need root")
	}
	for _, p := range []string{"unshare", "nsenter", "nft", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed", p)
		}
	}
}

// newNetns starts a process in a new network namespace and returns the
// namespace's path; the process (ours, by PID) is killed at cleanup.
func newNetns(t *testing.T) (nsPath string, pid int) {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "--", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	nsPath = fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	// wait until unshare has switched namespaces and exec'ed sleep
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l, err := os.Readlink(nsPath); err == nil && l != self {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); strings.HasSuffix(exe, "sleep") {
				return nsPath, cmd.Process.Pid
			}
		}
	}
	t.Fatal("unshare did not enter a new network namespace")
	return "", 0
}

func runIn(nsPath string) ExecRunner {
	return ExecRunner{Prefix: []string{"nsenter", "--net=" + nsPath, "--"}}
}

func must(t *testing.T, r ExecRunner, argv ...string) string {
	t.Helper()
	out, code, err := r.Run(context.Background(), argv, "")
	if err != nil || code != 0 {
		t.Fatalf("%v: exit %d %v: %s", argv, code, err, out)
	}
	return out
}

// inNetns runs f on an OS thread moved into the namespace, so the sockets f
// opens live there. The thread is never unlocked: it exits with the
// goroutine instead of returning to Go's pool in the wrong namespace.
func inNetns(t *testing.T, nsPath string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func TestNFTScriptLoadsIdempotently(t *testing.T) {
	needNetns(t)
	ns, _ := newNetns(t)
	r := runIn(ns)
	must(t, r, "nft", "add", "table", "inet", "other")
	ctx := context.Background()
	open, _ := Commands(NFTables, Options{})
	for i := 0; i < 2; i++ {
		if _, err := Apply(ctx, r, open); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	first := must(t, r, "nft", "list", "table", "inet", "rdctl")
	for _, want := range []string{"hook input priority filter - 1; policy accept;", "tcp dport 21115-21119 accept", "udp dport 21116 accept"} {
		if !strings.Contains(first, want) {
			t.Errorf("loaded table lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "21117 accept") && strings.Contains(first, "udp dport 21117") {
		t.Error("udp 21117 opened")
	}
	tables := must(t, r, "nft", "list", "tables")
	if tables != "table inet other\ntable inet rdctl\n" {
		t.Errorf("tables after two applies:\n%s", tables)
	}
	// switching to tailnet-only replaces the table's rules
	tail, _ := Commands(NFTables, Options{TailnetOnly: true})
	if _, err := Apply(ctx, r, tail); err != nil {
		t.Fatal(err)
	}
	second := must(t, r, "nft", "list", "table", "inet", "rdctl")
	if strings.Count(second, "drop") != 2 || strings.Count(second, "accept") != 3 {
		t.Errorf("tailnet table:\n%s", second)
	}
	if tables := must(t, r, "nft", "list", "tables"); tables != "table inet other\ntable inet rdctl\n" {
		t.Errorf("tables: %s", tables)
	}
}

// With --tailnet-only, RustDesk's ports answer over tailscale0 and not over
// any other interface, while other ports are left alone.
func TestTailnetOnlyDropsOtherInterfaces(t *testing.T) {
	needNetns(t)
	srv, _ := newNetns(t)
	cli, cliPid := newNetns(t)
	rs, rc := runIn(srv), runIn(cli)
	must(t, rs, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0c", "netns", fmt.Sprint(cliPid))
	must(t, rs, "ip", "addr", "add", "10.213.0.1/24", "dev", "eth0")
	must(t, rs, "ip", "link", "set", "eth0", "up")
	must(t, rs, "ip", "link", "set", "lo", "up")
	must(t, rc, "ip", "addr", "add", "10.213.0.2/24", "dev", "eth0c")
	must(t, rc, "ip", "link", "set", "eth0c", "up")

	var tl, other net.Listener
	var ul net.PacketConn
	if err := inNetns(t, srv, func() (err error) {
		if tl, err = net.Listen("tcp", "10.213.0.1:21116"); err != nil {
			return err
		}
		if other, err = net.Listen("tcp", "10.213.0.1:2222"); err != nil {
			return err
		}
		ul, err = net.ListenPacket("udp", "10.213.0.1:21116")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	defer other.Close()
	defer ul.Close()
	for _, l := range []net.Listener{tl, other} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			ul.WriteTo(buf[:n], from)
		}
	}()
	tcp := func(port int) error {
		return inNetns(t, cli, func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("10.213.0.1:%d", port), 400*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	tcp21116 := func() error { return tcp(21116) }
	udp := func() error {
		return inNetns(t, cli, func() error {
			c, err := net.Dial("udp", "10.213.0.1:21116")
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(400 * time.Millisecond))
			if _, err := c.Write([]byte("ping")); err != nil {
				return err
			}
			buf := make([]byte, 8)
			_, err = c.Read(buf)
			return err
		})
	}
	// a fresh veth link takes a moment to carry traffic
	if err := retry(tcp21116, 5*time.Second); err != nil {
		t.Fatalf("before any rule: %v", err)
	}
	if err := retry(udp, 2*time.Second); err != nil {
		t.Fatalf("udp before any rule: %v", err)
	}

	cmds, _ := Commands(NFTables, Options{TailnetOnly: true})
	if _, err := Apply(context.Background(), rs, cmds); err != nil {
		t.Fatal(err)
	}
	if err := tcp(21116); err == nil {
		t.Error("tcp 21116 answered over eth0 with --tailnet-only")
	}
	if err := udp(); err == nil {
		t.Error("udp 21116 answered over eth0 with --tailnet-only")
	}
	if err := tcp(2222); err != nil {
		t.Errorf("a port rdctl does not manage was blocked: %v", err)
	}

	// the same link, now named as tailscaled names its TUN device
	must(t, rs, "ip", "link", "set", "eth0", "down")
	must(t, rs, "ip", "link", "set", "eth0", "name", TailnetInterface)
	must(t, rs, "ip", "link", "set", TailnetInterface, "up")
	if err := retry(tcp21116, 5*time.Second); err != nil {
		t.Errorf("tcp 21116 over %s: %v", TailnetInterface, err)
	}
	if err := retry(udp, 2*time.Second); err != nil {
		t.Errorf("udp 21116 over %s: %v", TailnetInterface, err)
	}
}

// retry calls f until it succeeds or d has passed, and returns its last error.
func retry(f func() error, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With --proxy, the WebSocket ports 21118 and 21119 answer on loopback
// only, while hbbs's and hbbr's other ports still answer from outside.
func TestProxyModeLoopbackOnly(t *testing.T) {
	needNetns(t)
	srv, _ := newNetns(t)
	cli, cliPid := newNetns(t)
	rs, rc := runIn(srv), runIn(cli)
	must(t, rs, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0c", "netns", fmt.Sprint(cliPid))
	must(t, rs, "ip", "addr", "add", "10.214.0.1/24", "dev", "eth0")
	must(t, rs, "ip", "link", "set", "eth0", "up")
	must(t, rs, "ip", "link", "set", "lo", "up")
	must(t, rc, "ip", "addr", "add", "10.214.0.2/24", "dev", "eth0c")
	must(t, rc, "ip", "link", "set", "eth0c", "up")

	ports := []int{21115, 21116, 21117, 21118, 21119}
	var ls []net.Listener
	if err := inNetns(t, srv, func() error {
		for _, p := range ports {
			l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", p))
			if err != nil {
				return err
			}
			ls = append(ls, l)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	dial := func(ns, addr string) error {
		return inNetns(t, ns, func() error {
			c, err := net.DialTimeout("tcp", addr, 400*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := retry(func() error { return dial(cli, "10.214.0.1:21118") }, 5*time.Second); err != nil {
		t.Fatalf("before any rule: %v", err)
	}
	cmds, _ := Commands(NFTables, Options{Proxy: true})
	if _, err := Apply(context.Background(), rs, cmds); err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		err := dial(cli, fmt.Sprintf("10.214.0.1:%d", p))
		if ws := p == 21118 || p == 21119; ws && err == nil {
			t.Errorf("tcp %d answered from outside with --proxy", p)
		} else if !ws && err != nil {
			t.Errorf("tcp %d blocked from outside: %v", p, err)
		}
		// the proxy on the server reaches every port over loopback
		if err := dial(srv, fmt.Sprintf("127.0.0.1:%d", p)); err != nil {
			t.Errorf("tcp %d over loopback: %v", p, err)
		}
	}
	// back to the open mode: the WebSocket ports answer again
	open, _ := Commands(NFTables, Options{})
	if _, err := Apply(context.Background(), rs, open); err != nil {
		t.Fatal(err)
	}
	if err := dial(cli, "10.214.0.1:21118"); err != nil {
		t.Errorf("tcp 21118 after switching back: %v", err)
	}
}
