package exporter

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
)

// A push URL is http(s) with a host that is a host name or an IP; the
// status, msg and ping it came with are replaced, its other parameters
// kept.
func FuzzParsePushURL(f *testing.F) {
	for _, s := range []string{"https://kuma.example.com/api/push/T?status=up&msg=OK&ping=", "http://192.0.2.1:3001/api/push/x", "http://[2001:db8::1]/p", "ftp://x/y", "http://", "kuma/api", "http://a b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParsePushURL(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("%q: scheme %q", raw, u.Scheme)
		}
		if _, err := deploy.ParseHostPort("host", u.Host); err != nil {
			t.Fatalf("%q: host %q accepted: %v", raw, u.Host, err)
		}
		q := KumaPush{Up: false, Msg: "m", Ping: 1500 * time.Microsecond}.URL(u).Query()
		if len(q["status"]) != 1 || q.Get("status") != "down" || q.Get("msg") != "m" || q.Get("ping") != "1.5" {
			t.Fatalf("%q: query %v", raw, q)
		}
	})
}

func TestKumaPushMessage(t *testing.T) {
	ok := probe.TargetResult{Target: probe.Target{Host: "a", Port: 21116}, OK: true, KeyStatus: probe.KeyMatch,
		Probes: []probe.Result{{Name: probe.RendezvousTCP, OK: true, Duration: 3 * time.Millisecond}}}
	bad := probe.TargetResult{Target: probe.Target{Host: "b", Port: 21116}, KeyStatus: probe.KeyMismatch,
		Probes: []probe.Result{{Name: probe.RendezvousUDP, Error: "no answer\n\x1b[31m", Duration: 7 * time.Millisecond}}}
	p := NewKumaPush([]probe.TargetResult{ok})
	if !p.Up || p.Msg != "1 of 1 targets ok; 1 of 1 probes passed" || p.Ping != 3*time.Millisecond {
		t.Errorf("healthy: %+v", p)
	}
	p = NewKumaPush([]probe.TargetResult{ok, bad})
	if p.Up || !strings.HasPrefix(p.Msg, "b:21116: key mismatch; b:21116 rendezvous-udp: no answer") || strings.ContainsAny(p.Msg, "\n\x1b") || p.Ping != 7*time.Millisecond {
		t.Errorf("failing: %+v", p)
	}
	many := make([]probe.TargetResult, 50)
	for i := range many {
		many[i] = bad
	}
	if p = NewKumaPush(many); len(p.Msg) > maxKumaMsg || !utf8.ValidString(p.Msg) {
		t.Errorf("msg of %d bytes (valid UTF-8 %v)", len(p.Msg), utf8.ValidString(p.Msg))
	}
}
