//go:build integration

package harness

import (
	"net/netip"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// LinkMachine joins the network namespace of m (booted WithPrivateNetwork) to n by a veth pair
// on a /30 of the test range, and returns n's address and the machine's on that link. Several
// machines linked to one namespace make a small network the namespace reaches them all over,
// each machine seeing only its own link: a controller and its managed hosts. IPv6 is off on
// both ends. The link goes with the machine's namespace at shutdown; t.Cleanup also deletes
// it from n if it is still there.
func (n *Netns) LinkMachine(t testing.TB, m *Machine) (local, remote netip.Addr) {
	t.Helper()
	return n.LinkMachineNamed(t, m, "")
}

// LinkMachineNamed is LinkMachine with the machine's end of the link
// called ifname (for example tailscale0, for rules that name the tailnet
// interface); "" picks a random name.
func (n *Netns) LinkMachineNamed(t testing.TB, m *Machine, ifname string) (local, remote netip.Addr) {
	t.Helper()
	if !m.PrivateNetwork() {
		t.Fatalf("harness: LinkMachine(%s): the machine shares the host's network; boot it WithPrivateNetwork", m.Name())
	}
	id := randomID(3)
	here, there := "rdl"+id+"c", "rdl"+id+"m"
	if ifname != "" {
		there = ifname
	}
	prefix, err := freeLinkPrefix()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	local = prefix.Addr().Next()
	remote = local.Next()
	ctx, cancel := testContext(t, time.Minute)
	defer cancel()
	t.Cleanup(func() {
		cctx, ccancel := cleanupContext(time.Minute)
		defer ccancel()
		_, _, _, _ = Run(exec.CommandContext(cctx, n.ip, "-n", n.Name, "link", "del", here)) // gone already when the machine stopped first
	})
	mustRun(t, exec.CommandContext(ctx, n.ip, "-n", n.Name, "link", "add", here, "type", "veth",
		"peer", "name", there, "netns", strconv.Itoa(m.Leader())))
	if err := n.Do(func() error { return disableIPv6(here) }); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := m.InNetns(func() error { return disableIPv6(there) }); err != nil {
		t.Fatalf("harness: %v", err)
	}
	mustRun(t, exec.CommandContext(ctx, n.ip, "-n", n.Name, "addr", "add", local.String()+"/30", "dev", here))
	mustRun(t, exec.CommandContext(ctx, n.ip, "-n", n.Name, "link", "set", here, "up"))
	mustRun(t, m.NetCommand(ctx, n.ip, "addr", "add", remote.String()+"/30", "dev", there))
	mustRun(t, m.NetCommand(ctx, n.ip, "link", "set", there, "up"))
	mustRun(t, m.NetCommand(ctx, n.ip, "link", "set", "lo", "up"))
	t.Logf("harness: %s %s (%s) <-> machine %s %s (%s)", n.Name, local, here, m.Name(), remote, there)
	return local, remote
}
