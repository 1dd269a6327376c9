//go:build integration

package harness

import "testing"

// NeedProgram finds a host program that scripts/setup-integration installs (pkg is its Debian
// package), or skips the test (fails it under RDCTL_IT_STRICT=1) when it is missing.
func NeedProgram(t testing.TB, name, pkg string) string {
	t.Helper()
	return lookPath(t, name, pkg)
}
