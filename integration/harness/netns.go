//go:build integration

package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netnsRange holds the /30 links between the host and the namespaces NewNetns makes. It is a
// private range chosen for these tests only; traffic to it goes over a veth pair between the host
// and a namespace the test made, never onto a real network.
var netnsRange = netip.MustParsePrefix("10.231.0.0/16")

// Netns is a network namespace joined to the host by a veth pair: HostIf (host side, HostAddr)
// and NsIf (inside, NsAddr), both in Prefix, a /30 of 10.231.0.0/16. The namespace has no
// default route, so nothing in it can reach beyond the host-side address; its loopback is up.
// IPv6 is off on both veth ends (so no router solicitations or DAD), but not on loopback.
type Netns struct {
	Name     string       // the `ip netns` name; the namespace is bound at /run/netns/Name
	HostIf   string       // host-side veth interface
	NsIf     string       // veth interface inside the namespace
	HostAddr netip.Addr   // address of HostIf
	NsAddr   netip.Addr   // address of NsIf
	Prefix   netip.Prefix // the /30 both addresses are in

	ip string // the ip(8) binary
}

// NewNetns creates a network namespace named "rdit-<name>-<6 hex>" with a veth pair to the host
// (see Netns). t.Cleanup deletes the host-side link (which takes its peer with it) and the
// namespace. Processes a test starts inside must be stopped by that test; the namespace itself
// lives on until the last of them exits. Skips when not root.
func NewNetns(t testing.TB, name string) *Netns {
	t.Helper()
	RequireRoot(t)
	ipBin := lookPath(t, "ip", "iproute2")
	id := randomID(3)
	n := &Netns{
		Name:   "rdit-" + name + "-" + id,
		HostIf: "rdit" + id + "h",
		NsIf:   "rdit" + id + "n",
		ip:     ipBin,
	}
	if len(n.Name) > 64 || strings.ContainsAny(name, "/ \t\n") || name == "" {
		t.Fatalf("harness: bad netns name %q (want a short word)", name)
	}
	if _, err := os.Stat(n.Path()); err == nil {
		t.Fatalf("harness: netns %s already exists", n.Name)
	}
	prefix, err := freeLinkPrefix()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	n.Prefix = prefix
	n.HostAddr = prefix.Addr().Next()
	n.NsAddr = n.HostAddr.Next()

	t.Cleanup(func() { n.remove(t) })
	ctx, cancel := testContext(t, time.Minute)
	defer cancel()
	ipRun := func(args ...string) {
		t.Helper()
		mustRun(t, exec.CommandContext(ctx, ipBin, args...))
	}
	ipRun("netns", "add", n.Name)
	ipRun("link", "add", n.HostIf, "type", "veth", "peer", "name", n.NsIf, "netns", n.Name)
	if err := disableIPv6(n.HostIf); err != nil {
		t.Fatalf("harness: %v", err)
	}
	ipRun("addr", "add", n.HostAddr.String()+"/30", "dev", n.HostIf)
	ipRun("link", "set", n.HostIf, "up")
	ipRun("-n", n.Name, "link", "set", "lo", "up")
	if err := n.Do(func() error { return disableIPv6(n.NsIf) }); err != nil {
		t.Fatalf("harness: %v", err)
	}
	ipRun("-n", n.Name, "addr", "add", n.NsAddr.String()+"/30", "dev", n.NsIf)
	ipRun("-n", n.Name, "link", "set", n.NsIf, "up")
	t.Logf("harness: netns %s: host %s (%s) <-> %s (%s)", n.Name, n.HostAddr, n.HostIf, n.NsAddr, n.NsIf)
	return n
}

// disableIPv6 turns IPv6 off on the interface in the calling thread's network namespace.
// A kernel without IPv6 has no such file, which is fine.
func disableIPv6(ifname string) error {
	err := os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6"), []byte("1\n"), 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// freeLinkPrefix picks a /30 of netnsRange that no host interface has an address in.
func freeLinkPrefix() (netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	base := netnsRange.Addr().As4()
	start := binary.BigEndian.Uint32(base[:])
	blocks := uint32(1) << (32 - netnsRange.Bits() - 2)
	for range 64 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], start+rand.Uint32N(blocks)*4)
		p := netip.PrefixFrom(netip.AddrFrom4(b), 30)
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if hp, err := netip.ParsePrefix(ipn.String()); err == nil && hp.Overlaps(p) {
					used = true
				}
			}
		}
		if !used {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 in %s", netnsRange)
}

func (n *Netns) remove(t testing.TB) {
	ctx, cancel := cleanupContext(time.Minute)
	defer cancel()
	if _, err := net.InterfaceByName(n.HostIf); err == nil {
		if _, stderr, code, err := Run(exec.CommandContext(ctx, n.ip, "link", "del", n.HostIf)); err != nil || code != 0 {
			t.Errorf("harness: ip link del %s: %v %s", n.HostIf, err, stderr)
		}
	}
	if _, err := os.Stat(n.Path()); err == nil {
		if _, stderr, code, err := Run(exec.CommandContext(ctx, n.ip, "netns", "del", n.Name)); err != nil || code != 0 {
			t.Errorf("harness: ip netns del %s: %v %s", n.Name, err, stderr)
		}
	}
}

// Path is the namespace's bind mount, /run/netns/NAME, usable with nsenter --net=PATH and setns.
func (n *Netns) Path() string { return filepath.Join("/run/netns", n.Name) }

// Command prepares a host binary to run inside the namespace (`ip netns exec NAME argv...`).
func (n *Netns) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, n.ip, append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Exec runs argv inside the namespace, with the same result convention as Run.
func (n *Netns) Exec(ctx context.Context, argv ...string) (stdout, stderr string, exitCode int, err error) {
	return Run(n.Command(ctx, argv...))
}

// MustExec runs argv inside the namespace with a 2-minute bound and fails t unless it exits 0.
// It returns stdout.
func (n *Netns) MustExec(t testing.TB, argv ...string) string {
	t.Helper()
	ctx, cancel := testContext(t, 2*time.Minute)
	defer cancel()
	return mustRun(t, n.Command(ctx, argv...))
}

// Do runs fn on an OS thread that has joined the namespace: sockets fn creates live there (see
// Machine.InNetns for the rules).
func (n *Netns) Do(fn func() error) error { return doInNetns(n.Path(), fn) }
