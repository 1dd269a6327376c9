package faultenv

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// childEnv makes this test binary, re-executed, call the hook of Rotate
// with the step it names, so the parent can watch it die.
const childEnv = "FAULTENV_TEST_CALL"

func TestMain(m *testing.M) {
	if p := os.Getenv(childEnv); p != "" {
		if h := Hook(Rotate); h != nil {
			h(p)
		}
		os.Exit(0) // survived: the hook did not fire
	}
	os.Exit(m.Run())
}

func TestHook(t *testing.T) {
	for _, tc := range []struct {
		name, want, call string
		killed           bool
	}{
		{"unset", "", "journal", false},
		{"other step", "renamed", "journal", false},
		{"its step", "renamed", "renamed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.call, Rotate+"="+tc.want)
			err := cmd.Run()
			var ee *exec.ExitError
			killed := false
			if errors.As(err, &ee) {
				ws, ok := ee.Sys().(syscall.WaitStatus)
				killed = ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
			}
			if killed != tc.killed {
				t.Errorf("%s=%q, hook(%q): killed=%v (%v), want %v", Rotate, tc.want, tc.call, killed, err, tc.killed)
			}
		})
	}
	t.Run("nil when unset", func(t *testing.T) {
		t.Setenv(Upgrade, "")
		if Hook(Upgrade) != nil {
			t.Error("Hook returned a hook for an empty variable")
		}
	})
}
