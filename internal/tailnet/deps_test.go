package tailnet

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the node implementation out of rdctl: this package talks to
// tailscaled, it must not become one. tsnet alone would add about 20 MB.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"tailscale.com/tsnet",
		"tailscale.com/client/local",
		"net/http/pprof",
		"tailscale.com/ipn/ipnlocal",
		"tailscale.com/wgengine/magicsock",
		"tailscale.com/wgengine/netstack",
		"tailscale.com/net/tstun",
		"tailscale.com/derp",
		"tailscale.com/control/controlclient",
		"gvisor.dev/",
		"github.com/tailscale/wireguard-go",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
				t.Errorf("internal/tailnet links %s (forbidden: %s)", d, f)
			}
		}
	}
	// About 250 packages with tailscale.com v1.102.5 (321 with
	// client/local); a jump means a heavy import.
	if len(deps) > 300 {
		t.Errorf("internal/tailnet links %d packages; expected about 250", len(deps))
	}
	t.Logf("%d packages", len(deps))
}
