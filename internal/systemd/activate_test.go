package systemd

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// fakeRuntime records stops and starts into the fake manager's calls, so
// their order against reload and enable is checked in one list.
type fakeRuntime struct {
	m        *fakeManager
	startErr error
}

func (r *fakeRuntime) Name() string { return "fake" }
func (r *fakeRuntime) Stop(context.Context) error {
	r.m.calls = append(r.m.calls, "runtime stop")
	return nil
}
func (r *fakeRuntime) Start(context.Context) error {
	r.m.calls = append(r.m.calls, "runtime start")
	return r.startErr
}
func (r *fakeRuntime) Running(context.Context) (bool, error) { return true, nil }

func TestActivate(t *testing.T) {
	up := UnitState{LoadState: "loaded", ActiveState: "active", UnitFileState: "enabled"}
	down := UnitState{LoadState: "loaded", ActiveState: "inactive", UnitFileState: "disabled"}
	enabledDown := UnitState{LoadState: "loaded", ActiveState: "inactive", UnitFileState: "enabled"}
	both := func(st UnitState) map[string]UnitState {
		return map[string]UnitState{"hbbs.service": st, "hbbr.service": st}
	}
	for _, tc := range []struct {
		name     string
		changed  bool
		noStart  bool
		states   map[string]UnitState
		startErr error
		action   string
		want     []string // calls; nil: nothing pending
		started  bool
	}{
		{name: "new install", changed: true, states: both(down), action: "enable and start",
			want: []string{"reload", "enable hbbr.service hbbs.service", "runtime stop", "runtime start"}, started: true},
		{name: "unchanged and running", states: both(up), action: "enable and start"},
		{name: "unchanged, stopped", states: both(enabledDown), action: "enable and start",
			want: []string{"enable hbbr.service hbbs.service", "runtime start"}, started: true},
		{name: "no start, enabled", noStart: true, states: both(enabledDown), action: "enable"},
		{name: "no start, changed", noStart: true, changed: true, states: both(up), action: "enable",
			want: []string{"reload", "enable hbbr.service hbbs.service"}},
		{name: "start fails", changed: true, states: both(down), startErr: errors.New("hbbs.service failed"), action: "enable and start",
			want: []string{"reload", "enable hbbr.service hbbs.service", "runtime stop", "runtime start"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeManager{states: tc.states}
			a := &Activate{Ctx: t.Context(), HBBS: "hbbs.service", HBBR: "hbbr.service", NoStart: tc.noStart,
				Changed: func() bool { return tc.changed }, Runtime: &fakeRuntime{m: m, startErr: tc.startErr}, Connect: m.connect}
			if a.Action() != tc.action || a.Target() != "hbbr.service and hbbs.service" {
				t.Errorf("%q %q", a.Action(), a.Target())
			}
			pending, err := a.Pending()
			if err != nil || pending != (tc.want != nil) || len(m.calls) != 0 {
				t.Fatalf("Pending = %v, %v; calls %q", pending, err, m.calls)
			}
			changed, err := a.Apply()
			var se *StartError
			if tc.startErr != nil {
				if !errors.As(err, &se) {
					t.Fatalf("Apply error %v, want a *StartError", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if changed != (tc.want != nil) || !slices.Equal(m.calls, tc.want) {
				t.Errorf("Apply = %v; calls %q, want %q", changed, m.calls, tc.want)
			}
			if a.Started != tc.started || a.Enabled != (tc.want != nil) {
				t.Errorf("enabled %v, started %v", a.Enabled, a.Started)
			}
		})
	}
}
