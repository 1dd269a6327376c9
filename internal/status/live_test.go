package status

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/systemd"
)

// fakeProc writes a /proc/net/tcp with hbbs's rendezvous port 21116 on the
// wildcard address and hbbr's 21117 on loopback (the kernel prints each
// address word in host order).
func fakeProc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:527C 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4242 1 0000000000000000 100 0 0 10 0\n" +
		"   1: " + fmt.Sprintf("%08X", binary.NativeEndian.Uint32([]byte{127, 0, 0, 1})) + ":527D 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 4243 1 0000000000000000 100 0 0 10 0\n"
	if err := os.WriteFile(filepath.Join(dir, "net", "tcp"), []byte(tcp), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// liveRecord is a record whose working directory is a temporary one, and
// whose unit names no real host has, so reading their files finds none.
func liveRecord(t *testing.T, backend string) *deploy.Record {
	rec := testRecord(backend)
	rec.WorkingDir = t.TempDir()
	rec.HBBSUnit, rec.HBBRUnit = "rdctl-status-test-hbbs.service", "rdctl-status-test-hbbr.service"
	rec.Compose = &deploy.ComposeRecord{Dir: "/srv/rustdesk", Project: "rustdesk"}
	return rec
}

func portOpen(ports []doctor.PortState, proto string, port uint16) bool {
	for _, p := range ports {
		if p.Port.Proto == proto && p.Port.Port == port {
			return p.Listening
		}
	}
	return false
}

func TestGatherLiveSystemd(t *testing.T) {
	rec := liveRecord(t, deploy.BackendSystemd)
	errBus := errors.New("bus gone")
	var asked []string
	r, err := Gather(context.Background(), Options{Record: rec, ProcDir: fakeProc(t),
		Units: func(_ context.Context, names []string) ([]systemd.UnitState, error) {
			asked = names
			// hbbs answered, then the bus failed: both are reported.
			return []systemd.UnitState{{Name: names[0], LoadState: "loaded", ActiveState: "active", SubState: "running",
				UnitFileState: "enabled", MainPID: 42, NRestarts: 3}}, errBus
		},
		Stack: func(context.Context, *deploy.Record) (*compose.StackStatus, error) {
			t.Error("engine asked for a systemd record")
			return nil, nil
		},
		Tailnet: func(context.Context) (*TailnetSelf, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{rec.HBBSUnit, rec.HBBRUnit}) {
		t.Errorf("asked about %v", asked)
	}
	if len(r.Units) != 1 || r.Units[0].Restarts == nil || *r.Units[0].Restarts != 3 || r.Units[0].MainPID != 42 || r.Units[0].UnitFile != "" {
		t.Errorf("units %+v", r.Units)
	}
	if r.UnitsError != errBus.Error() {
		t.Errorf("units error %q", r.UnitsError)
	}
	if r.Containers != nil || r.Root != "" {
		t.Errorf("containers %v root %q", r.Containers, r.Root)
	}
	if len(r.Ports) != len(doctor.ServerPorts) || !portOpen(r.Ports, "tcp", 21116) || !portOpen(r.Ports, "tcp", 21117) || portOpen(r.Ports, "tcp", 21115) || r.PortsError != "" {
		t.Errorf("ports %+v %q", r.Ports, r.PortsError)
	}
	if r.Tailnet != nil {
		t.Errorf("tailnet %+v without tailscaled", r.Tailnet)
	}
	if r.Key.Dir != rec.WorkingDir || r.Key.Error != "no id_ed25519" {
		t.Errorf("key %+v", r.Key)
	}
}

func TestGatherLiveCompose(t *testing.T) {
	rec := liveRecord(t, deploy.BackendCompose)
	stack := &compose.StackStatus{Project: "rustdesk", Services: []compose.ServiceStatus{
		{Service: "hbbs", Container: "rustdesk-hbbs-1", State: "running", Running: true, Restarts: 1, Image: "rustdesk/rustdesk-server:1.1.14",
			WorkingDir: "/root", Mounts: []compose.Mount{{Source: "/srv/rustdesk/data", Destination: "/root"}}, KeyDir: "/srv/rustdesk/data",
			Published: []compose.PublishedPort{{Port: "21118/tcp", HostIP: "127.0.0.1", HostPort: "21118"}}},
		{Service: "hbbr", State: "missing"},
	}}
	tests := []struct {
		name    string
		stack   *compose.StackStatus
		err     error
		want    []Container
		wantErr string
	}{
		{name: "running", stack: stack, want: []Container{
			{Service: "hbbs", Container: "rustdesk-hbbs-1", State: "running", Running: true, Restarts: 1, Image: "rustdesk/rustdesk-server:1.1.14",
				WorkingDir: "/root", Mounts: stack.Services[0].Mounts, KeyDir: "/srv/rustdesk/data", Published: stack.Services[0].Published},
			// mounts[] is never null in the JSON.
			{Service: "hbbr", State: "missing", Mounts: []compose.Mount{}},
		}},
		{name: "engine down", err: errors.New("no engine"), want: []Container{}, wantErr: "no engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Gather(context.Background(), Options{Record: rec, ProcDir: fakeProc(t),
				Units: func(context.Context, []string) ([]systemd.UnitState, error) {
					t.Error("systemd asked for a compose record")
					return nil, nil
				},
				Stack: func(_ context.Context, got *deploy.Record) (*compose.StackStatus, error) {
					if got != rec {
						t.Error("engine asked about another record")
					}
					return tc.stack, tc.err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Containers) != len(tc.want) || r.ContainersError != tc.wantErr {
				t.Fatalf("containers %+v error %q, want %+v %q", r.Containers, r.ContainersError, tc.want, tc.wantErr)
			}
			for i, c := range r.Containers {
				w := tc.want[i]
				if c.Service != w.Service || c.Container != w.Container || c.State != w.State || c.Running != w.Running ||
					c.Restarts != w.Restarts || c.Image != w.Image || c.KeyDir != w.KeyDir || c.Mounts == nil || !slices.Equal(c.Mounts, w.Mounts) ||
					!slices.Equal(c.Published, w.Published) {
					t.Errorf("container %d: %+v, want %+v", i, c, w)
				}
			}
			if len(r.Units) != 0 || r.Units == nil || r.UnitsError != "the compose backend has no systemd units" {
				t.Errorf("units %v %q", r.Units, r.UnitsError)
			}
			if r.Tailnet != nil {
				t.Errorf("tailnet %+v with no tailnet seam", r.Tailnet)
			}
		})
	}
}

func TestGatherNoRecord(t *testing.T) {
	if _, err := Gather(context.Background(), Options{}); !errors.Is(err, ErrNoRecord) {
		t.Errorf("err %v, want ErrNoRecord", err)
	}
}

func TestInspectStackNoProject(t *testing.T) {
	rec := testRecord(deploy.BackendCompose)
	if _, err := InspectStack(context.Background(), rec); !errors.Is(err, ErrNoComposeProject) {
		t.Errorf("err %v, want ErrNoComposeProject", err)
	}
}

// TestGatherTailnet: which server ports tailnet traffic reaches.
func TestGatherTailnet(t *testing.T) {
	tip := netip.MustParseAddr("100.101.102.103")
	ports := []doctor.PortState{
		{Port: doctor.Port{Proto: "tcp", Port: 21115}, Listening: true, Addresses: []string{"0.0.0.0:21115"}},
		{Port: doctor.Port{Proto: "tcp", Port: 21116}, Listening: true, Addresses: []string{"127.0.0.1:21116"}},
		{Port: doctor.Port{Proto: "udp", Port: 21116}, Listening: true, Addresses: []string{"100.101.102.103:21116"}},
		{Port: doctor.Port{Proto: "tcp", Port: 21117}, Listening: true, Addresses: []string{"192.0.2.1:21117", "garbage"}},
		{Port: doctor.Port{Proto: "tcp", Port: 21118}},
		{Port: doctor.Port{Proto: "tcp", Port: 21119}, Listening: true, Addresses: []string{"[::]:21119"}},
	}
	tests := []struct {
		name      string
		self      *TailnetSelf
		err       error
		want      *Tailnet
		reachable []bool // per port above
	}{
		{name: "no tailscaled"},
		{name: "not running", err: errors.New("tailscaled is not running"), want: &Tailnet{Error: "tailscaled is not running"}},
		{name: "tun", self: &TailnetSelf{HostName: "rd", DNSName: "rd.tail-scale.ts.net.", IPs: []netip.Addr{tip}, Mode: "tun"},
			want:      &Tailnet{Name: "rd", DNSName: "rd.tail-scale.ts.net", IPs: []string{"100.101.102.103"}, Mode: "tun"},
			reachable: []bool{true, false, true, false, false, true}},
		// Userspace networking delivers tailnet traffic to 127.0.0.1.
		{name: "userspace", self: &TailnetSelf{HostName: "rd", IPs: []netip.Addr{tip}, Mode: "userspace"},
			want:      &Tailnet{Name: "rd", IPs: []string{"100.101.102.103"}, Mode: "userspace"},
			reachable: []bool{true, true, true, false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gatherTailnet(tc.self, tc.err, ports)
			if tc.want == nil {
				if got != nil {
					t.Errorf("got %+v, want none", got)
				}
				return
			}
			if got == nil || got.Name != tc.want.Name || got.DNSName != tc.want.DNSName || got.Mode != tc.want.Mode ||
				!slices.Equal(got.IPs, tc.want.IPs) || got.Error != tc.want.Error {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.reachable == nil {
				if got.Ports != nil {
					t.Errorf("ports %+v with an error", got.Ports)
				}
				return
			}
			if len(got.Ports) != len(ports) {
				t.Fatalf("ports %+v", got.Ports)
			}
			for i, p := range got.Ports {
				if p.Proto != ports[i].Port.Proto || p.Port != int(ports[i].Port.Port) || p.Reachable != tc.reachable[i] {
					t.Errorf("port %d: %+v, want reachable %v", i, p, tc.reachable[i])
				}
			}
		})
	}
}
