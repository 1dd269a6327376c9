package main

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/cmd/rdctl/internal/faultenv"
)

// faultKillEnv names the rotate step at which the rdctl a test runs kills
// itself with SIGKILL (see installTestFaultHooks).
const faultKillEnv = faultenv.Rotate

// installTestFaultHooks gives the rdctl that TestMain's "rdctl" command runs
// (this test binary, re-executed) the fault hooks a -tags rdctlfault build
// has, so the crash tests work in a plain `go test`.
func installTestFaultHooks() {
	rotateFaultHook = faultenv.Hook(faultenv.Rotate)
	upgradeFaultHook = faultenv.Hook(faultenv.Upgrade)
}

// The shipped binary must not read a fault variable: no file of a build
// without the rdctlfault tag may import faultenv or name its variables.
// (The linker's dead-code removal would hide a stray reference from
// `strings`; this looks at the source instead.)
func TestShippedBuildHasNoFaultInjection(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pkg.Imports, "github.com/rdctl/rdctl/cmd/rdctl/internal/faultenv") {
		t.Error("the untagged build of cmd/rdctl imports faultenv")
	}
	if !slices.Contains(pkg.IgnoredGoFiles, "fault_rdctlfault.go") {
		t.Errorf("fault_rdctlfault.go is not left out of the untagged build (ignored: %v)", pkg.IgnoredGoFiles)
	}
	for _, f := range pkg.GoFiles {
		data, err := os.ReadFile(filepath.Join(pkg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{faultenv.Rotate, faultenv.Upgrade} {
			if strings.Contains(string(data), v) {
				t.Errorf("%s names %s", f, v)
			}
		}
	}
}
