package tailnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rdctl/rdctl/internal/golden"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/paths"
	"tailscale.com/tailcfg"
	"tailscale.com/types/views"
)

// serveLocalAPI serves h on a unix socket, as tailscaled serves its
// LocalAPI, and returns the socket's path.
func serveLocalAPI(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	ln, err := net.Listen("unix", sock)
	noErr(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestStatusWireFormat pins rdctl's status decoding to tailscaled's JSON.
// testdata/status.json is tailscale.com's own encoding of sampleStatus (an
// ipnstate.Status, the type tailscaled answers /localapi/v0/status with);
// it is served on a unix socket and read back through New(sock).Status, the
// path every rdctl command takes.
func TestStatusWireFormat(t *testing.T) {
	want, err := json.MarshalIndent(sampleStatus(), "", "\t")
	noErr(t, err)
	want = append(want, '\n')
	file := filepath.Join("testdata", "status.json")
	if *golden.Update {
		noErr(t, os.WriteFile(file, want, 0o644))
	}
	body, err := os.ReadFile(file)
	noErr(t, err)
	if !bytes.Equal(body, want) {
		t.Errorf("%s is not tailscale.com's JSON of sampleStatus any more (ipnstate changed?); "+
			"rerun with -update, then check lapiStatus against the new names", file)
	}

	sock := serveLocalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/localapi/v0/status" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if got := r.Header.Get("Tailscale-Cap"); got != strconv.Itoa(localAPICapVersion) {
			http.Error(w, "Tailscale-Cap "+got, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	st, err := New(sock).Status(context.Background())
	noErr(t, err)

	peer := func(host, dns string, ips ...string) Peer {
		p := Peer{HostName: host, DNSName: dns, OS: "linux", Relay: "fra"}
		for _, ip := range ips {
			p.IPs = append(p.IPs, netip.MustParseAddr(ip))
		}
		return p
	}
	self := peer("rd-client", "rd-client.tail-scale.ts.net", "100.64.0.2", "fd7a:115c:a1e0::2")
	self.Self, self.Online = true, true
	laptop := peer("Laptop", "laptop.tail-scale.ts.net", "100.64.0.4")
	laptop.Online, laptop.PeerRelay = true, "198.51.100.7:7777:vni:3"
	dup := peer("rd-server", "rd-server-1.tail-scale.ts.net", "100.64.0.3")
	dup.LastSeen = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := peer("rd-server", "rd-server.tail-scale.ts.net", "100.64.0.1", "fd7a:115c:a1e0::1")
	srv.Online, srv.Active, srv.CurAddr = true, true, "192.0.2.10:41641"
	srv.Routes = []netip.Prefix{netip.MustParsePrefix("192.168.10.0/24")}
	v6 := peer("v6", "v6.tail-scale.ts.net", "fd7a:115c:a1e0::6")
	v6.Online = true
	exp := &Status{
		BackendState:   BackendRunning,
		TUN:            true,
		Self:           self,
		MagicDNSSuffix: "tail-scale.ts.net",
		Peers:          []Peer{laptop, dup, srv, v6},
		Health:         []string{"sample health warning"},
	}
	if !reflect.DeepEqual(st, exp) {
		gotJSON, _ := json.MarshalIndent(st, "", "  ")
		expJSON, _ := json.MarshalIndent(exp, "", "  ")
		t.Errorf("Status from %s:\n%s\nwant:\n%s", file, gotJSON, expJSON)
	}
}

// TestWireFieldNames checks every JSON name rdctl decodes against the
// names tailscale.com's types encode, exactly (encoding/json would match
// them case-insensitively, which could hide a misspelling until a
// tailscaled spelled it differently).
func TestWireFieldNames(t *testing.T) {
	routes := views.SliceOf([]netip.Prefix{})
	tailnet, _ := reflect.TypeFor[lapiStatus]().FieldByName("CurrentTailnet")
	for _, c := range []struct {
		ours   reflect.Type
		theirs any
	}{
		{reflect.TypeFor[lapiStatus](), ipnstate.Status{Self: &ipnstate.PeerStatus{}, CurrentTailnet: &ipnstate.TailnetStatus{}}},
		{tailnet.Type.Elem(), ipnstate.TailnetStatus{}},
		// PrimaryRoutes is omitempty: give it a value so that it is there.
		{reflect.TypeFor[lapiPeer](), ipnstate.PeerStatus{PrimaryRoutes: &routes}},
		{reflect.TypeFor[lapiPingResult](), ipnstate.PingResult{IsLocalIP: true}},
	} {
		b, err := json.Marshal(c.theirs)
		noErr(t, err)
		var keys map[string]json.RawMessage
		noErr(t, json.Unmarshal(b, &keys))
		for i := range c.ours.NumField() {
			f := c.ours.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", c.ours, f.Name)
				continue
			}
			if _, ok := keys[name]; !ok {
				t.Errorf("%s.%s reads %q, which %T does not encode", c.ours, f.Name, name, c.theirs)
			}
		}
	}
}

// TestLegacyMagicDNSSuffix: tailscaled before CurrentTailnet sent only the
// top-level MagicDNSSuffix.
func TestLegacyMagicDNSSuffix(t *testing.T) {
	var st lapiStatus
	noErr(t, json.Unmarshal([]byte(`{"BackendState":"Running","MagicDNSSuffix":"old.ts.net.","Peer":{"nodekey:00":null}}`), &st))
	got := convertStatus(&st)
	if got.MagicDNSSuffix != "old.ts.net" || len(got.Peers) != 0 {
		t.Errorf("status = %+v", got)
	}
}

// TestPingWireFormat serves tailscale.com's JSON of ipnstate.PingResult,
// the ping answer, and checks the request rdctl makes and what it makes of
// each kind of answer.
func TestPingWireFormat(t *testing.T) {
	ip := netip.MustParseAddr("100.64.0.1")
	var answer ipnstate.PingResult
	sock := serveLocalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/localapi/v0/ping" || q.Get("ip") != ip.String() || q.Get("type") != string(PingDisco) || q.Get("size") != "0" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(answer)
	})
	c := New(sock)
	for _, tc := range []struct {
		name   string
		answer ipnstate.PingResult
		want   PingResult
	}{
		{"direct", ipnstate.PingResult{IP: "100.64.0.1", NodeName: "rd-server", LatencySeconds: 0.0125, Endpoint: "192.0.2.10:41641"},
			PingResult{NodeName: "rd-server", Path: PathDirect, Endpoint: "192.0.2.10:41641", Latency: 12500 * time.Microsecond, LatencyMS: 12.5}},
		{"derp", ipnstate.PingResult{NodeName: "rd-server", LatencySeconds: 0.05, DERPRegionID: 4, DERPRegionCode: "fra"},
			PingResult{NodeName: "rd-server", Path: PathDERP, DERPRegion: "fra", Latency: 50 * time.Millisecond, LatencyMS: 50}},
		{"peer relay", ipnstate.PingResult{NodeName: "rd-server", LatencySeconds: 0.02, PeerRelay: "198.51.100.7:7777:vni:3"},
			PingResult{NodeName: "rd-server", Path: PathPeerRelay, Endpoint: "198.51.100.7:7777:vni:3", Latency: 20 * time.Millisecond, LatencyMS: 20}},
	} {
		answer = tc.answer
		got, err := c.Ping(context.Background(), ip, PingDisco)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		tc.want.Kind, tc.want.IP = PingDisco, ip
		if *got != tc.want {
			t.Errorf("%s: Ping = %+v, want %+v", tc.name, *got, tc.want)
		}
	}

	answer = ipnstate.PingResult{IP: "100.64.0.1", Err: "no matching peer"}
	if _, err := c.Ping(context.Background(), ip, PingDisco); !errors.Is(err, ErrPeerNotFound) {
		t.Errorf("no matching peer: err = %v, want ErrPeerNotFound", err)
	}
	answer = ipnstate.PingResult{IP: "100.64.0.1", Err: "is local Tailscale IP", IsLocalIP: true}
	_, err := c.Ping(context.Background(), ip, PingDisco)
	if !errors.Is(err, ErrPingFailed) || !strings.Contains(err.Error(), "address of this host") {
		t.Errorf("local IP: err = %v, want ErrPingFailed naming this host", err)
	}
}

// TestTailscalePins fails when go.mod's tailscale.com moves to a version
// whose values rdctl copies differ: the ping type names it sends and the
// capability version of the client/local its requests follow.
func TestTailscalePins(t *testing.T) {
	for kind, want := range map[PingKind]tailcfg.PingType{PingDisco: tailcfg.PingDisco, PingTSMP: tailcfg.PingTSMP, PingICMP: tailcfg.PingICMP} {
		if string(kind) != string(want) {
			t.Errorf("PingKind %q, tailscaled calls it %q", kind, want)
		}
	}
	if localAPICapVersion != int(tailcfg.CurrentCapabilityVersion) {
		t.Errorf("localAPICapVersion = %d, tailscale.com's is %d: check socketClient against the new client/local, then update it",
			localAPICapVersion, tailcfg.CurrentCapabilityVersion)
	}
}

func TestDefaultSocket(t *testing.T) {
	dir := &fstest.MapFile{Mode: os.ModeDir | 0o755}
	file := &fstest.MapFile{}
	for _, c := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"linux", fstest.MapFS{"var/run": dir, "etc/debian_version": file}, "/var/run/tailscale/tailscaled.sock"},
		{"no /var/run", fstest.MapFS{"etc/debian_version": file}, "tailscaled.sock"},
		{"synology 7", fstest.MapFS{"usr/syno": dir, "var/run": dir}, "/var/packages/Tailscale/var/tailscaled.sock"},
		{"synology 6", fstest.MapFS{"usr/syno": dir, "var/run": dir, "var/packages/Tailscale/etc/tailscaled.sock": file}, "/var/packages/Tailscale/etc/tailscaled.sock"},
		{"qnap", fstest.MapFS{"etc/config/uLinux.conf": file, "var/run": dir}, "/tmp/tailscale/tailscaled.sock"},
		{"gokrazy", fstest.MapFS{"gokrazy": dir, "var/run": dir}, "/perm/tailscaled/tailscaled.sock"},
	} {
		if got := defaultSocket(c.fs); got != c.want {
			t.Errorf("%s: defaultSocket = %q, want %q", c.name, got, c.want)
		}
	}
	// And on this machine, the same answer as tailscale.com's.
	if got, want := defaultSocket(os.DirFS("/")), paths.DefaultTailscaledSocket(); got != want {
		t.Errorf("defaultSocket = %q here, tailscale.com's paths says %q", got, want)
	}
}
