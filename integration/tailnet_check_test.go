//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"

	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/tailnet"
)

// TestTailnetCheck runs the real rdctl binary's `check --tailnet` through a
// real tailscaled (userspace mode) against a stand-in hbbs/hbbr behind a
// second real tailscaled: peer online, ping path, every probe passing, the
// userspace-mode console note; then a wrong key and a stopped server.
func TestTailnetCheck(t *testing.T) {
	t.Setenv("TS_DEBUG_OMIT_LOCAL_ADDRS", "true")
	t.Setenv("TS_DISABLE_PORTMAPPER", "true")
	rdctl, _ := binaries(t)
	env := integration.NewTestEnv(t, integration.ConfigureControl(func(c *testcontrol.Server) {
		c.AllOnline = true
		c.MagicDNSDomain = "tail-scale.ts.net"
	}))
	nb := integration.NewTestNode(t, env)
	db := nb.StartDaemon()
	t.Cleanup(func() { db.MustCleanShutdown(t) })
	na := integration.NewTestNode(t, env)
	da := na.StartDaemon()
	t.Cleanup(func() { da.MustCleanShutdown(t) })
	nb.AwaitResponding()
	na.AwaitResponding()
	nb.MustUp("--hostname=rd-server")
	na.MustUp("--hostname=rd-client")
	nb.AwaitRunning()
	na.AwaitRunning()
	bIP := nb.AwaitIP4()
	sock := na.LocalClient().Socket

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for {
		if _, err := tailnet.New(sock).FindPeer(ctx, "rd-server"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("rd-server never appeared in rd-client's netmap")
		case <-time.After(50 * time.Millisecond):
		}
	}

	// The stand-in on B's host, on loopback: userspace tailscaled hands
	// tailnet traffic for B's address to 127.0.0.1:<same port>.
	base, err := hbbstest.FreeBasePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hbbs, err := hbbstest.StartHBBS(ctx, hbbstest.Options{Dir: dir, Port: base, Bind: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hbbr, err := hbbstest.StartHBBR(ctx, hbbstest.Options{Dir: dir, Port: base + 1, Bind: "127.0.0.1", Key: new("_")})
	if err != nil {
		t.Fatal(err)
	}
	key := hbbs.Key()

	type result struct {
		OK      bool `json:"ok"`
		Targets []struct {
			Via       string `json:"via"`
			OK        bool   `json:"ok"`
			KeyStatus string `json:"key_status"`
			Probes    []struct {
				Name, Error, Note string
				OK                bool
			} `json:"probes"`
			Tailnet *struct {
				Peer      string  `json:"peer"`
				Online    bool    `json:"online"`
				Path      string  `json:"path"`
				LatencyMS float64 `json:"latency_ms"`
				LocalMode string  `json:"local_mode"`
				Note      string  `json:"note"`
			} `json:"tailnet"`
		} `json:"targets"`
	}
	check := func(target, key string, extra ...string) (result, int, string) {
		args := append([]string{"--json", "check", "--tailscale-socket", sock, "--timeout", "3s", "--key", key, target}, extra...)
		cmd := exec.CommandContext(ctx, rdctl, args...)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		var r result
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			t.Fatalf("rdctl check %v: %v (%v)\n%s", args, jerr, err, out)
		}
		return r, code, string(out)
	}

	// by MagicDNS short name (no --tailnet needed: it is a tailnet peer) and by IP with --tailnet
	for i, target := range []string{fmt.Sprintf("rd-server:%d", base), fmt.Sprintf("%s:%d", bIP, base)} {
		var extra []string
		if i == 1 {
			extra = []string{"--tailnet"} // a tailnet IP is detected anyway; the flag forces it
		}
		r, code, raw := check(target, key, extra...)
		tg := r.Targets[0]
		if code != 0 || !r.OK || tg.Via != "tailnet" || tg.KeyStatus != "match" || tg.Tailnet == nil || !tg.Tailnet.Online || tg.Tailnet.Path == "" {
			t.Fatalf("check %s: exit %d\n%s", target, code, raw)
		}
		if tg.Tailnet.LocalMode != "userspace" || tg.Tailnet.Note == "" {
			t.Errorf("userspace/console note missing: %s", raw)
		}
		t.Logf("%s: peer %s path %s latency %.2f ms, %d probes ok", target, tg.Tailnet.Peer, tg.Tailnet.Path, tg.Tailnet.LatencyMS, len(tg.Probes))
	}

	// a wrong key: mismatch, exit 1
	r, code, raw := check(fmt.Sprintf("rd-server:%d", base), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if code != 1 || r.Targets[0].KeyStatus != "mismatch" {
		t.Errorf("wrong key: exit %d\n%s", code, raw)
	}

	// install --tailnet-only without --relay advertises this host's MagicDNS name
	bsock := nb.LocalClient().Socket
	root := t.TempDir() + "/img"
	if out, err := exec.CommandContext(ctx, rdctl, "--tailscale-socket", bsock, "install", "systemd", "--root", root, "--tailnet-only").CombinedOutput(); err != nil {
		t.Fatalf("install --tailnet-only: %v\n%s", err, out)
	}
	unit, _ := os.ReadFile(root + "/etc/systemd/system/hbbs.service")
	if !strings.Contains(string(unit), "hbbs -r rd-server.tail-scale.ts.net:21117 -k _") {
		t.Errorf("tailnet-only install did not advertise the MagicDNS name:\n%s", unit)
	}
	// status shows this host's tailnet addresses
	out, err := exec.CommandContext(ctx, rdctl, "--tailscale-socket", bsock, "--config", root+"/etc/rdctl/rdctl.toml", "--json", "status").Output()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var st struct {
		Tailnet *struct {
			Name  string   `json:"name"`
			IPs   []string `json:"ips"`
			Mode  string   `json:"mode"`
			Ports []struct {
				Port int `json:"port"`
			} `json:"ports"`
		} `json:"tailnet"`
	}
	json.Unmarshal(out, &st)
	if st.Tailnet == nil || st.Tailnet.Name != "rd-server" || st.Tailnet.Mode != "userspace" || len(st.Tailnet.Ports) != 6 || !slices.Contains(st.Tailnet.IPs, bIP.String()) {
		t.Errorf("status tailnet: %s", out)
	}

	// a stopped server: probes fail, the peer stays online
	hbbs.Close()
	hbbr.Close()
	r, code, raw = check(fmt.Sprintf("rd-server:%d", base), key)
	tg := r.Targets[0]
	if code != 1 || tg.OK || tg.Tailnet == nil || !tg.Tailnet.Online {
		t.Errorf("stopped server: exit %d\n%s", code, raw)
	}
	for _, p := range tg.Probes {
		if p.OK {
			t.Errorf("probe %s passed against a stopped server", p.Name)
		}
	}
}
