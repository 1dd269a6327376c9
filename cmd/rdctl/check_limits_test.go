package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/fleet"
	"github.com/rdctl/rdctl/internal/probe"
)

// writeTargets writes a targets file of n distinct addresses.
func writeTargets(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "10.%d.%d.%d\n", i>>16&255, i>>8&255, i&255)
	}
	file := filepath.Join(t.TempDir(), "fleet.txt")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// One target over the cap is bad input (exit 2, with a hint), and nothing
// is probed; exactly the cap is accepted.
func TestCheckTargetCap(t *testing.T) {
	code, stdout, stderr := runInProcess(t, "check", "--targets-file", writeTargets(t, fleet.MaxTargets+1), "--key", "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=")
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "rdctl: error: --targets-file ") || !strings.Contains(stderr, fmt.Sprintf("more than %d targets", fleet.MaxTargets)) ||
		!strings.Contains(stderr, "rdctl: hint: split them") {
		t.Errorf("stderr:\n%s", stderr)
	}
	ts, err := parseTargets(nil, writeTargets(t, fleet.MaxTargets))
	if err != nil || len(ts) != fleet.MaxTargets {
		t.Errorf("%d targets, %v", len(ts), err)
	}
	// Arguments count too, and repeats do not.
	if _, err := parseTargets([]string{"10.255.0.1", "10.0.0.0"}, writeTargets(t, fleet.MaxTargets)); err == nil {
		t.Error("the cap ignores arguments")
	}
}

// A line that never ends is refused at fleet.MaxLine bytes.
func TestCheckTargetsFileLongLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "long.txt")
	if err := os.WriteFile(file, []byte("127.0.0.1\n"+strings.Repeat("#", 1<<20)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runInProcess(t, "check", "--targets-file", file)
	if code != 2 || !strings.Contains(stderr, fmt.Sprintf("long.txt:2: line longer than %d bytes", fleet.MaxLine)) {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// What a server said reaches the report escaped.
func TestCheckEscapesServerText(t *testing.T) {
	p := probeJSON(&probe.TargetResult{}, probe.Result{Name: probe.RendezvousWS, Error: "unexpected reply: \x1b]0;owned\x07\x1b[2J", Note: "ok\r\n\u202e"})
	if p.Error != `unexpected reply: \x1b]0;owned\x07\x1b[2J` || p.Note != `ok\r\n\u202e` {
		t.Errorf("error %q, note %q", p.Error, p.Note)
	}
}

// writeCheckJSON streams what writeJSON writes, byte for byte.
func TestWriteCheckJSONSameBytes(t *testing.T) {
	tn := &tailnetJSON{Peer: "p<&>", Online: true}
	two := []checkTargetJSON{
		{Target: "a", Address: "1.2.3.4:21116", Via: "direct", KeyStatus: "match", Probes: []checkProbeJSON{{Name: "nat-test", Proto: "tcp", Port: 21115, OK: true, MS: 1.25, Note: "n"}}},
		{Target: "b", Via: "tailnet", Probes: []checkProbeJSON{}, Tailnet: tn},
	}
	for _, out := range []checkJSON{{OK: true, Targets: []checkTargetJSON{}, ElapsedMS: 0}, {Targets: two[:1], ElapsedMS: 12.5}, {Targets: two, ElapsedMS: 1e21}} {
		var want, got strings.Builder
		if err := writeJSON(&want, out); err != nil {
			t.Fatal(err)
		}
		if err := writeCheckJSON(&got, out); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("streamed:\n%s\nwant:\n%s", got.String(), want.String())
		}
	}
}
