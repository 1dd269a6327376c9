//go:build rdctlfault

package main

import "github.com/rdctl/rdctl/cmd/rdctl/internal/faultenv"

// A binary built with -tags rdctlfault (the integration layer builds one)
// kills itself with SIGKILL at the step RDCTL_FAULT_KILL_AT or
// RDCTL_FAULT_KILL_UPGRADE_AT names, so crash tests can drive a real binary
// against a real systemd or Docker. Release builds leave this file out.
func init() {
	rotateFaultHook = faultenv.Hook(faultenv.Rotate)
	upgradeFaultHook = faultenv.Hook(faultenv.Upgrade)
}
