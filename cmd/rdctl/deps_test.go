package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDeps keeps packages out of the rdctl binary that cost every
// start (package init runs before main, for every command) or megabytes:
// Go links every imported package, so the only way to keep an init off the
// start path is not to import it. compose-go's loader and schema compile JSON
// schemas at init (about 30 ms); its full loader runs in the tests only.
// No tailscale.com package at all: client/local links health, netmon and
// eventbus, and through them tsweb, expvar and net/http/pprof, and even the
// type packages (ipnstate, tailcfg, paths) link 33 tailscale.com packages
// and with them CBOR, a second JSON library and ed25519 (about 1 MB);
// internal/tailnet speaks the three LocalAPI calls it needs over the socket
// itself and decodes the answers into its own types. expvar is allowed: the
// exporter's metrics library (prometheus/client_golang) links it for its
// ExpvarCollector; its init registers /debug/vars on http.DefaultServeMux,
// which rdctl never serves (the exporter has a mux of its own, and
// internal/exporter's tests see /debug/vars answer 404 there).
func TestBinaryDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	denied := []string{
		"github.com/compose-spec/compose-go/v2/loader",
		"github.com/compose-spec/compose-go/v2/schema",
		"github.com/santhosh-tekuri/jsonschema",
		"net/http/pprof",
		"tailscale.com",
		"github.com/go-json-experiment/json",
		"github.com/fxamacker/cbor",
		"filippo.io/edwards25519",
		"github.com/hdevalence/ed25519consensus",
		"go4.org/mem",
		"gvisor.dev/",
		"github.com/tailscale/wireguard-go",
		"github.com/cpuguy83/go-md2man",
		"github.com/goreleaser/nfpm",
	}
	for _, d := range deps {
		for _, f := range denied {
			if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("rdctl links %s (denied: %s)", d, f)
			}
		}
	}
	t.Logf("%d packages", len(deps))
}
