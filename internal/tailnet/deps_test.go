package tailnet

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps this package on the standard library alone. It talks to
// tailscaled, it must not become one (tsnet alone would add about 20 MB),
// and it does not link tailscale.com at all: the LocalAPI client, the JSON
// types it decodes and the default socket path are rdctl's own, because
// even tailscale.com's type packages drag in 45 packages with their inits
// (see socketClient). Its tests may use tailscale.com freely.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/rdctl/rdctl/internal/tailnet"
	for _, d := range strings.Fields(string(out)) {
		if d != self {
			t.Errorf("internal/tailnet links %s; it should need only the standard library", d)
		}
	}
}
