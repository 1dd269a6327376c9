package tailnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The LocalAPI socket failures below use real unix sockets; no tailscaled
// is involved because the point is what happens when there is none.

func TestDaemonMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	c := New(sock)
	start := time.Now()
	_, err := c.Status(context.Background())
	elapsed := time.Since(start)
	checkDaemonUnavailable(t, err, sock)
	// local.Client's own dialer would retry for the first 2 s of the
	// process; New's dialer answers at once.
	if elapsed > time.Second {
		t.Errorf("missing socket took %v to report", elapsed)
	}
	for _, call := range []func() error{
		func() error { _, err := c.FindPeer(context.Background(), "rd-server"); return err },
		func() error {
			_, err := c.Ping(context.Background(), netip.MustParseAddr("100.64.0.1"), PingDisco)
			return err
		},
		func() error { _, err := c.DialTCP(context.Background(), "100.64.0.1", 21116); return err },
		func() error { _, err := c.DialUDP(context.Background(), "100.64.0.1", 21116); return err },
		func() error { _, err := c.DialTCP(context.Background(), "rd-server", 21116); return err },
	} {
		checkDaemonUnavailable(t, call(), sock)
	}
}

func TestDaemonStaleSocket(t *testing.T) {
	// tailscaled killed with -9 leaves its socket file behind: connecting
	// is refused, which must read as "not running", not as a refused probe.
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	_, err = New(sock).Status(context.Background())
	checkDaemonUnavailable(t, err, sock)
	if errors.Is(err, ErrRefused) {
		t.Errorf("stale socket classified as a refused probe: %v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not give the cause", err)
	}
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkDaemonUnavailable(t *testing.T, err error, sock string) {
	t.Helper()
	if !errors.Is(err, ErrDaemonUnavailable) {
		t.Fatalf("err = %v (%T), want ErrDaemonUnavailable", err, err)
	}
	e, _ := errors.AsType[*Error](err)
	if e.Target != sock || !strings.Contains(err.Error(), sock) {
		t.Errorf("error %q does not name the socket %s", err, sock)
	}
	if h := Hint(err); !strings.Contains(h, "sudo systemctl start tailscaled") || !strings.Contains(h, SocketFlag) {
		t.Errorf("hint %q does not name the fix", h)
	}
}

// TestAccessDeniedHTTP serves the answer tailscaled gives a user without
// permission (HTTP 403 with a text body) on a real unix socket, and checks
// what rdctl makes of it.
func TestAccessDeniedHTTP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tailscaled.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.TrimPrefix(r.URL.Path, "/localapi/v0/")+" access denied", http.StatusForbidden)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := New(sock)
	_, err = c.Status(context.Background())
	checkAccessDenied(t, err)
	if !strings.Contains(err.Error(), "status access denied") {
		t.Errorf("error %q lost tailscaled's message", err)
	}
	_, err = c.DialTCP(context.Background(), "100.64.0.1", 21116)
	checkAccessDenied(t, err)
}

func checkAccessDenied(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v (%T), want ErrAccessDenied", err, err)
	}
	if h := Hint(err); !strings.Contains(h, "sudo") || !strings.Contains(h, "--operator=$USER") {
		t.Errorf("hint %q does not name the fix", h)
	}
}

// TestSocketPermissionDenied connects to a socket this user may not open
// (EACCES). Root bypasses file permissions, so as root the test re-runs
// itself as nobody.
func TestSocketPermissionDenied(t *testing.T) {
	const envSock = "RDCTL_TAILNET_TEST_EACCES_SOCK"
	if sock := os.Getenv(envSock); sock != "" {
		_, err := New(sock).Status(context.Background())
		checkAccessDenied(t, err)
		return
	}
	dir := t.TempDir()
	// nobody must reach the socket and the binary: open up t.TempDir's
	// per-test parent (0700) and the directory itself.
	noErr(t, os.Chmod(filepath.Dir(dir), 0o755))
	noErr(t, os.Chmod(dir, 0o755))
	sock := filepath.Join(dir, "tailscaled.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		noErr(t, os.Chmod(sock, 0o000))
		_, err := New(sock).Status(context.Background())
		checkAccessDenied(t, err)
		return
	}
	// Copy the test binary where nobody can run it, then run this test in it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "tailnet.test")
	if err := copyFile(exe, child); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child, "-test.run=^TestSocketPermissionDenied$", "-test.count=1")
	cmd.Env = append(os.Environ(), envSock+"="+sock, "HOME="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestClassify pins the mapping from the error texts tailscaled and
// local.Client produce (quoted from v1.102.5) to kinds.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		op   string
		err  error
		want Kind
		hint string
	}{
		{"dial tcp", errors.New("unexpected HTTP response: 502 Bad Gateway, dial failure: connect tcp 100.64.0.1:21115: connection was refused"), ErrRefused, "nothing listens"},
		{"dial tcp", errors.New("unexpected HTTP response: 502 Bad Gateway, resolve failure: lookup x: no such host"), ErrPeerNotFound, "tailscale status"},
		{"dial tcp", errors.New("unexpected HTTP response: 403 Forbidden, dial access denied"), ErrAccessDenied, "--operator"},
		{"dial tcp", errors.New("unexpected HTTP response: 502 Bad Gateway, dial failure: connect tcp 100.64.0.1:1: i/o timeout"), ErrTimeout, "tailscale ping 100.64.0.1"},
		{"dial tcp", fmt.Errorf("post: %w", context.DeadlineExceeded), ErrTimeout, "tailscale ping"},
		{"dial tcp", errors.New("unexpected HTTP response: 502 Bad Gateway, dial failure: no route to host"), ErrDialFailed, ""},
		{"ping disco", fmt.Errorf("error %w: ", errors.New("500 Internal Server Error: boom")), ErrPingFailed, ""},
		{"status", errors.New("500 Internal Server Error: boom"), ErrLocalAPI, ""},
	} {
		err := classify(tc.op, "100.64.0.1:1", "/run/ts.sock", tc.err)
		if !errors.Is(err, tc.want) {
			t.Errorf("classify(%q) = %v, want %v", tc.err, err, tc.want)
			continue
		}
		if !strings.Contains(Hint(err), tc.hint) {
			t.Errorf("classify(%q) hint %q, want %q in it", tc.err, Hint(err), tc.hint)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("classify(%q) lost the cause", tc.err)
		}
		if msg := err.Error(); strings.Contains(msg, "unexpected HTTP response") || strings.HasSuffix(msg, ".") {
			t.Errorf("message %q keeps HTTP framing or ends in a period", msg)
		}
	}
	// A caller's cancellation is not a tailnet condition.
	if err := classify("dial tcp", "x", "", context.Canceled); err != context.Canceled {
		t.Errorf("canceled = %v", err)
	}
	if classify("status", "", "", nil) != nil {
		t.Error("nil error classified")
	}
}
