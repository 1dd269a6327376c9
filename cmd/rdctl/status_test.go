package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/status"
)

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The documented JSON contract of status --root: these keys, no more, no
// fewer (ports only live).
func TestStatusJSONContract(t *testing.T) {
	root, _ := installTree(t)
	// Owner names come from the image's own account files; name whoever
	// built the tree (root, or nobody in the unprivileged pass).
	for name, line := range map[string]string{
		"passwd": fmt.Sprintf("builder:x:%d:%d::/:/usr/sbin/nologin\n", os.Getuid(), os.Getgid()),
		"group":  fmt.Sprintf("builders:x:%d:\n", os.Getgid()),
	} {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runInProcess(t, "--root", root, "--json", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{"backend", "backups", "id_host", "key", "origin", "record", "relay", "relays", "root", "staged", "units", "working_dir"}
	if got := keysOf(doc); !slices.Equal(got, want) {
		t.Errorf("top-level keys %v, want %v", got, want)
	}
	key := doc["key"].(map[string]any)
	if got, want := keysOf(key), []string{"dir", "fingerprint", "present", "pub", "pub_file_matches", "public_key", "secret", "valid"}; !slices.Equal(got, want) {
		t.Errorf("key keys %v, want %v", got, want)
	}
	secret := key["secret"].(map[string]any)
	if got, want := keysOf(secret), []string{"gid", "group", "mode", "path", "uid", "user"}; !slices.Equal(got, want) {
		t.Errorf("secret keys %v, want %v", got, want)
	}
	if secret["mode"] != "0600" {
		t.Errorf("secret mode %v", secret["mode"])
	}
	units := doc["units"].([]any)
	if len(units) != 2 {
		t.Fatalf("units %v", units)
	}
	u := units[0].(map[string]any)
	if got, want := keysOf(u), []string{"name", "unit_file", "unit_file_state"}; !slices.Equal(got, want) {
		t.Errorf("unit keys under --root %v, want %v", got, want)
	}
}

func TestShortList(t *testing.T) {
	if got := shortList([]string{"a", "b"}, 3); got != "a b" {
		t.Error(got)
	}
	if got := shortList([]string{"a", "b", "c", "d", "e"}, 3); got != "a b c (+2 more)" {
		t.Error(got)
	}
}

// The live text of status, which no test host can produce (units over
// D-Bus, a compose stack, listeners, tailscaled), rendered from reports and
// compared with testdata/status_*.golden; go test -update rewrites them.
func TestPrintStatusLive(t *testing.T) {
	restarts := uint32(2)
	key := status.Key{Dir: "/var/lib/rustdesk", Present: true, Valid: true, PublicKey: "47IWREq5xxaS83LKZL8VilHGj0tBWbX5fSWx5QhHVXU=",
		Fingerprint: "SHA256:abcdefghijklmnop", PubFileMatches: true,
		Secret: &status.File{Path: "/var/lib/rustdesk/id_ed25519", Mode: "0600", UID: 998, GID: 998, User: "rustdesk", Group: "rustdesk"},
		Pub:    &status.File{Path: "/var/lib/rustdesk/id_ed25519.pub", Mode: "0644", UID: 998, GID: 997}}
	ports := []doctor.PortState{
		{Port: doctor.ServerPorts[0], Listening: true, Addresses: []string{"0.0.0.0:21115"}},
		{Port: doctor.ServerPorts[1], Listening: true, Addresses: []string{"10.0.0.1:21116", "100.101.102.103:21116", "127.0.0.1:21116", "[::1]:21116"}},
		{Port: doctor.ServerPorts[2], Addresses: []string{}},
	}
	tests := []struct {
		name string
		r    status.Report
	}{
		{name: "systemd", r: status.Report{Record: "/etc/rdctl/rdctl.toml", Backend: "systemd", Origin: "rdctl", IDHost: "rd.example.com", Relay: "rd.example.com:21117",
			Units: []status.Unit{
				{Name: "hbbs.service", UnitFileState: "enabled", ActiveState: "active", SubState: "running", MainPID: 4242, Restarts: &restarts},
				{Name: "hbbr.service", UnitFileState: "enabled", ActiveState: "failed", SubState: "failed", Restarts: &restarts},
			},
			Key: key, Ports: ports, PortsError: "reading /proc/net/udp6: permission denied",
			Backups: status.Backups{Count: 3, LastRotation: "20260202T083015Z", LastRotationTime: "2026-02-02T08:30:15Z"},
			Staged:  status.Staged{Present: true, Fingerprint: "SHA256:qrstuvwxyzABCDEF"},
			Tailnet: &status.Tailnet{Name: "rd", DNSName: "rd.tail-scale.ts.net", IPs: []string{"100.101.102.103", "fd7a:115c:a1e0::1"}, Mode: "tun",
				Ports: []status.TailnetPort{{Proto: "tcp", Port: 21115, Reachable: true}, {Proto: "tcp", Port: 21116, Reachable: true}, {Proto: "udp", Port: 21116}}},
		}},
		{name: "compose", r: status.Report{Record: "/etc/rdctl/rdctl.toml", Backend: "compose", Origin: "compose", IDHost: "rd.example.com",
			Units: []status.Unit{}, UnitsError: "the compose backend has no systemd units",
			Containers: []status.Container{
				{Service: "hbbs", State: "running", Restarts: 1, Image: "rustdesk/rustdesk-server:1.1.14", Mounts: []compose.Mount{{Source: "/srv/rustdesk/data", Destination: "/root"}}},
				{Service: "hbbr", State: "missing", Mounts: []compose.Mount{}},
			},
			Key: status.Key{Dir: "/srv/rustdesk/data", Error: "no id_ed25519"}, Ports: ports,
			Tailnet: &status.Tailnet{Error: "tailscaled is not running"},
		}},
		{name: "compose_engine_down", r: status.Report{Record: "/etc/rdctl/rdctl.toml", Backend: "compose", Origin: "compose", IDHost: "rd.example.com",
			Units: []status.Unit{}, UnitsError: "the compose backend has no systemd units",
			Containers: []status.Container{}, ContainersError: "cannot connect to the Docker engine",
			Key: key, Ports: ports,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printStatus(&env{stdout: &out}, &tc.r)
			file := filepath.Join("testdata", "status_"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("status text differs from %s (go test -update rewrites it):\n%s", file, out.Bytes())
			}
		})
	}
}

// Whatever status prints came from disk, systemd, Docker or tailscaled:
// none of it reaches the terminal as control characters.
func TestStatusEscapesWhatItPrints(t *testing.T) {
	const evil = "x\x1b]0;pwned\x07\u202e\ny"
	r := &status.Report{Record: evil, Backend: evil, Origin: evil, IDHost: evil, Relay: evil, WorkingDir: evil,
		UnitsError: evil, ContainersError: evil, PortsError: evil,
		Containers: []status.Container{{Service: evil, State: evil, Image: evil}},
		Key:        status.Key{Dir: evil, PublicKey: evil, Fingerprint: evil, Error: evil, Secret: &status.File{Path: evil, User: evil, Group: evil}},
		Ports:      []doctor.PortState{{Port: doctor.Port{Proto: evil, Owner: evil}, Addresses: []string{evil}}},
		Backups:    status.Backups{Count: 1, LastRotation: evil},
		Staged:     status.Staged{Present: true, Fingerprint: evil},
		Tailnet:    &status.Tailnet{DNSName: evil, IPs: []string{evil}, Mode: evil},
	}
	for _, units := range [][]status.Unit{nil, {{Name: evil, UnitFileState: evil, UnitFile: evil}}} {
		r.Units = units
		var out bytes.Buffer
		printStatus(&env{stdout: &out, stderr: &out}, r)
		if strings.ContainsAny(out.String(), "\x1b\x07\u202e") {
			t.Errorf("status printed control characters:\n%q", out.String())
		}
		if n := strings.Count(out.String(), `x\x1b]0;pwned\x07\u202e\ny`); n < 20 {
			t.Errorf("status printed the escaped value %d times, want every field:\n%s", n, out.String())
		}
	}
}

// Several relays: status lists each, in text and JSON.
func TestStatusSeveralRelays(t *testing.T) {
	root := filepath.Join(t.TempDir(), "img")
	if code, _, stderr := runInProcess(t, "-q", "install", "systemd", "--root", root, "--no-start",
		"--relay", "a.example.com,b.example.com:443", "--id-host", "rd.example.com"); code != 0 {
		t.Fatalf("install: exit %d: %s", code, stderr)
	}
	code, out, errOut := runInProcess(t, "--root", root, "--json", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Relay  string   `json:"relay"`
		Relays []string `json:"relays"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Relay != "a.example.com:21117,b.example.com:443" || !slices.Equal(doc.Relays, []string{"a.example.com:21117", "b.example.com:443"}) {
		t.Errorf("%+v", doc)
	}
	code, out, _ = runInProcess(t, "--root", root, "status")
	if code != 0 || !strings.Contains(out, "2 relays handed out in turn") || !regexp.MustCompile(`\n  relay +a\.example\.com:21117\n  relay +b\.example\.com:443\n`).MatchString(out) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
