//go:build integration

package harness

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildStatic builds the Go package pkg as a static binary (CGO_ENABLED=0, -trimpath,
// -ldflags=-s -w) into t.TempDir() and returns its path; the file is named after the package's
// last path element. pkg is either a package of this module, as an import path or relative to
// the module root ("./cmd/rdctl"), or an absolute directory holding a main package (with its own
// go.mod if it is outside this module). buildFlags are added after the defaults, so a caller's
// -ldflags replaces the default one. It fails the test if the build fails or the result has an
// ELF interpreter (is not static).
func BuildStatic(t testing.TB, pkg string, buildFlags ...string) string {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH (since Go 1.19), so this
	// is the go that runs the tests.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("harness: BuildStatic(%q): no go tool in PATH: %v", pkg, err)
	}
	ctx, cancel := testContext(t, 10*time.Minute)
	defer cancel()

	name := path.Base(strings.TrimSuffix(filepath.ToSlash(pkg), "/"))
	out := filepath.Join(t.TempDir(), name)
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w"}, buildFlags...)
	args = append(args, "-o", out)
	var dir string
	if filepath.IsAbs(pkg) {
		dir = pkg
		args = append(args, ".")
	} else {
		gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
		mod := strings.TrimSpace(string(gomod))
		if err != nil || mod == "" || mod == os.DevNull {
			t.Fatalf("harness: BuildStatic(%q): not inside a Go module (go env GOMOD: %q, %v)", pkg, mod, err)
		}
		dir = filepath.Dir(mod)
		args = append(args, pkg)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	mustRun(t, cmd)

	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("harness: BuildStatic(%q): %v", pkg, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("harness: BuildStatic(%q): the binary has an ELF interpreter, it is not static", pkg)
		}
	}
	t.Logf("harness: built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	return out
}
