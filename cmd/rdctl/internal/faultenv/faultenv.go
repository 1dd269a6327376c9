// Package faultenv is rdctl's crash-test fault injection: it turns an
// environment variable naming a step into a hook that kills the process
// with SIGKILL at that step. Only cmd/rdctl's tests and binaries built with
// -tags rdctlfault (cmd/rdctl/fault_rdctlfault.go) import it, so the shipped
// binary neither contains nor reads these variables.
package faultenv

import (
	"os"
	"syscall"
)

// The variables, each naming the step to die at.
const (
	// Rotate names a rotate step boundary (rotate.Points).
	Rotate = "RDCTL_FAULT_KILL_AT"
	// Upgrade names an upgrade step ("written", "recreated", "verified").
	Upgrade = "RDCTL_FAULT_KILL_UPGRADE_AT"
)

// Hook returns a hook that kills the process with SIGKILL when called with
// the step the environment variable name holds, or nil when the variable is
// unset or empty. SIGKILL rather than an exit: no deferred cleanup runs, so
// what is on disk is exactly what the step boundary left.
func Hook(name string) func(point string) {
	want := os.Getenv(name)
	if want == "" {
		return nil
	}
	return func(point string) {
		if point == want {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
