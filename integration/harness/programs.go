//go:build integration

package harness

import "testing"

// Program finds a host program the test needs (from Debian package pkg,
// which scripts/setup-integration installs), or reports it unavailable: a
// skip, or a failure under RDCTL_IT_STRICT=1.
func Program(t testing.TB, name, pkg string) string {
	t.Helper()
	return lookPath(t, name, pkg)
}
