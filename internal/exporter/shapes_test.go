package exporter

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/probe"
)

// A target with several relays and a name checked at several addresses
// give one series per relay and per address: the exposition has no
// duplicate series (Gather would refuse it) and names each.
func TestSeveralRelaysAndAddressesAreSeriesOfTheirOwn(t *testing.T) {
	target := probe.Target{Host: "rd.example.com", Relays: []probe.Endpoint{{Host: "r1.example.com"}, {Host: "r2.example.com"}}}
	result := func(addr string) probe.TargetResult {
		return probe.TargetResult{Target: target, Address: addr, Via: probe.ViaDirect, KeyStatus: probe.KeyMatch,
			Relays: []string{"r1.example.com:21117", "r2.example.com:21117"},
			Probes: []probe.Result{
				{Name: probe.RendezvousTCP, Proto: "tcp", Port: 21116, OK: true},
				{Name: probe.Relay, Proto: "tcp", Port: 21117, OK: true},
				{Name: probe.Relay, Proto: "tcp", Port: 21117, OK: false, Relay: 1},
			}}
	}
	reports := []Report{{Result: result("192.0.2.1:21116")}, {Result: result("[2001:db8::1]:21116")}}
	var buf bytes.Buffer
	if err := Render(&buf, reports, true); err != nil {
		t.Fatalf("several addresses, several relays: %v", err)
	}
	out := buf.String()
	for _, want := range []string{
		`rustdesk_probe_success{address="192.0.2.1:21116",port="21117",probe="relay[r1.example.com:21117]",proto="tcp",target="rd.example.com:21116"} 1`,
		`rustdesk_probe_success{address="[2001:db8::1]:21116",port="21117",probe="relay[r2.example.com:21117]",proto="tcp",target="rd.example.com:21116"} 0`,
		`rustdesk_target_info{address="[2001:db8::1]:21116",target="rd.example.com:21116",via="direct"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s\n%s", want, out)
		}
	}
	buf.Reset()
	if err := Render(&buf, reports[:1], false); err != nil || !strings.Contains(buf.String(), `probe="relay[r2.example.com:21117]"`) {
		t.Errorf("one target: %v\n%s", err, buf.String())
	}
}
