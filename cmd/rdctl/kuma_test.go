package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// kuma is a stand-in for an Uptime Kuma push endpoint on loopback: it
// records each push's query and answers as Kuma does ({"ok":true}, or 404
// with {"ok":false,...} for an unknown token).
type kuma struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []url.Values
}

func startKuma(t *testing.T) *kuma {
	t.Helper()
	k := &kuma{}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/api/push/tok3n" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"ok":false,"msg":"Monitor not found or not active."}`))
			return
		}
		k.mu.Lock()
		k.pushes = append(k.pushes, r.URL.Query())
		k.mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *kuma) got() []url.Values {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]url.Values(nil), k.pushes...)
}

// check --push-url pushes up for a healthy server and down, naming the
// failed probe, for one whose UDP port is silent; the URL's own
// status/msg/ping are replaced; --dry-run pushes nothing.
func TestCheckPushKuma(t *testing.T) {
	k := startKuma(t)
	pushURL := k.URL + "/api/push/tok3n?status=up&msg=OK&ping="
	st := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	code, stdout, stderr := runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--push-url", pushURL, st.target)
	if code != exitOK || !strings.Contains(stdout, "pushed status=up to Uptime Kuma at "+strings.TrimPrefix(k.URL, "http://")) {
		t.Fatalf("healthy: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "tok3n") {
		t.Errorf("the monitor's token was printed:\n%s%s", stdout, stderr)
	}
	ps := k.got()
	if len(ps) != 1 || ps[0].Get("status") != "up" || !strings.Contains(ps[0].Get("msg"), "1 of 1 targets ok") || ps[0].Get("ping") == "" || len(ps[0]["status"]) != 1 {
		t.Fatalf("pushes %v", ps)
	}

	muted := startStandins(t, "", hbbstest.Options{Skip: []hbbstest.Listener{hbbstest.RendezvousUDP}}, &hbbstest.Options{})
	code, stdout, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--timeout", "500ms", "--key", muted.hbbs.Key(), "--push-url", pushURL, muted.target)
	if code != exitFailed || !strings.Contains(stdout, "pushed status=down") {
		t.Fatalf("udp muted: exit %d\n%s%s", code, stdout, stderr)
	}
	ps = k.got()
	if len(ps) != 2 || ps[1].Get("status") != "down" || !strings.Contains(ps[1].Get("msg"), muted.target+" rendezvous-udp") {
		t.Fatalf("pushes %v", ps)
	}

	code, stdout, stderr = runInProcess(t, "--root", t.TempDir(), "--dry-run", "check", "--key", st.hbbs.Key(), "--push-url", pushURL, st.target)
	if code != exitOK || !strings.Contains(stdout, "would push status=up") || len(k.got()) != 2 {
		t.Fatalf("dry run: exit %d, %d pushes\n%s%s", code, len(k.got()), stdout, stderr)
	}
}

// A push Kuma refuses (an unknown token) is an error after the check's
// output, with Kuma's reason; a malformed URL is refused before anything is
// probed; a server that is not Kuma is named as such.
func TestCheckPushKumaRefused(t *testing.T) {
	k := startKuma(t)
	st := startStandins(t, "", hbbstest.Options{}, &hbbstest.Options{})
	code, stdout, stderr := runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--push-url", k.URL+"/api/push/wrong", st.target)
	if code != exitFailed || !strings.Contains(stderr, "Monitor not found or not active.") || !strings.Contains(stdout, "1 of 1 targets ok") {
		t.Fatalf("unknown token: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "/api/push/wrong") {
		t.Errorf("the push URL's path was printed: %s", stderr)
	}

	notKuma := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("<html>", 100000)))
	}))
	defer notKuma.Close()
	code, _, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--push-url", notKuma.URL+"/x", st.target)
	if code != exitFailed || !strings.Contains(stderr, "not an Uptime Kuma answer") {
		t.Fatalf("not kuma: exit %d\n%s", code, stderr)
	}

	// A server whose answer headers go on and on is cut off, not read.
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pad", strings.Repeat("p", 200<<10))
		w.Write([]byte(`{"ok":true}`))
	}))
	defer endless.Close()
	code, _, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--push-url", endless.URL+"/api/push/tok3n", st.target)
	if code != exitFailed || !strings.Contains(stderr, "pushing to Uptime Kuma") {
		t.Fatalf("oversized headers: exit %d\n%s", code, stderr)
	}

	for _, bad := range []string{"kuma.example.com/api/push/x", "ftp://kuma/x", "http://", "mailto:x@example.com"} {
		code, _, stderr = runInProcess(t, "--root", t.TempDir(), "check", "--key", st.hbbs.Key(), "--push-url", bad, "127.0.0.1:1")
		if code != exitUsage || !strings.Contains(stderr, "--push-url") {
			t.Errorf("--push-url %q: exit %d %q, want 2", bad, code, stderr)
		}
	}
}
