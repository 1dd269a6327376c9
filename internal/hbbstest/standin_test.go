package hbbstest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// buildStandin compiles ./standin statically into a temporary directory and
// returns the binary plus hbbs/hbbr symlinks to it.
func buildStandin(t *testing.T) (bin, hbbs, hbbr string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary")
	}
	// go test puts its own GOROOT/bin first in PATH (since Go 1.19), so
	// this is the go that runs the tests.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	dir := t.TempDir()
	bin = filepath.Join(dir, "standin")
	cmd := exec.Command(goBin, "build", "-o", bin, "./standin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hbbs, hbbr = filepath.Join(dir, "hbbs"), filepath.Join(dir, "hbbr")
	for _, l := range []string{hbbs, hbbr} {
		if err := os.Symlink(bin, l); err != nil {
			t.Fatal(err)
		}
	}
	return bin, hbbs, hbbr
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer // the log, as the real servers write it
	done   chan struct{}
}

func startProc(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() // our own child, by PID
			<-p.done
		}
	})
	return p
}

// listening waits until every addr accepts TCP connections; false if the
// process exits first or 10 s pass.
func listening(p *proc, addrs ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range addrs {
		for {
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				return false
			default:
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return true
}

func freePort(t *testing.T) string {
	t.Helper()
	p, err := FreeBasePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(p)
}

func TestStandinBinary(t *testing.T) {
	bin, hbbs, hbbr := buildStandin(t)
	lo := "127.0.0.1"
	hp := func(port int) string { return net.JoinHostPort(lo, strconv.Itoa(port)) }

	t.Run("version, help, usage errors", func(t *testing.T) {
		// The default is the latest tag, 1.1.16.
		out, err := exec.Command(bin, "hbbs", "-V").Output()
		if err != nil || string(out) != "hbbs 1.1.16\n" {
			t.Fatalf("%q %v", out, err)
		}
		cmd := exec.Command(hbbr, "--version")
		cmd.Env = append(os.Environ(), "STANDIN_VERSION=1.1.17")
		if out, err := cmd.Output(); err != nil || string(out) != "hbbr 1.1.17\n" {
			t.Fatalf("%q %v", out, err)
		}
		if out, err := exec.Command(hbbs, "-h").Output(); err != nil || !strings.Contains(string(out), "--relay-servers") {
			t.Fatalf("%q %v", out, err)
		}
		cmd = exec.Command(hbbs, "-g")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(stderr.String(), "error: Found argument '-g' which wasn't expected") {
			t.Fatalf("%v %q", err, stderr.String())
		}
		if err := exec.Command(bin).Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("no kind: %v", err)
		}
		// Measured: 1.1.16 has no -b, so "hbbs -b ..." exits 1.
		cmd = exec.Command(hbbs, "-b", "127.0.0.1")
		stderr.Reset()
		cmd.Stderr = &stderr
		if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(stderr.String(), "error: Found argument '-b' which wasn't expected") {
			t.Fatalf("1.1.16 -b: %v %q", err, stderr.String())
		}
	})

	t.Run("malformed key exits 1", func(t *testing.T) {
		dir := t.TempDir()
		writeKey(t, dir, SecretKeyFile, "AAAA")
		cmd := exec.Command(hbbs, "-p", freePort(t))
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		// Measured on 1.1.16: all output, the Fatal error line included, goes
		// to stdout.
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stdout.String(), "Fatal error: malformed private key in id_ed25519.\n") || stderr.Len() != 0 {
			t.Fatalf("%v stdout %q stderr %q", err, stdout.String(), stderr.String())
		}
	})

	t.Run("refused key exits 1", func(t *testing.T) {
		dir := t.TempDir()
		pub, sk := newSecret(t)
		writeKey(t, dir, SecretKeyFile, base64.StdEncoding.EncodeToString(sk))
		cmd := exec.Command(hbbs, "-p", freePort(t))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "STANDIN_REFUSE_KEY="+pub)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stdout.String(), "refusing to start") {
			t.Fatalf("%v %q", err, stdout.String())
		}
	})

	t.Run("hbbs and hbbr by argv[0]", func(t *testing.T) {
		dir := t.TempDir()
		// hbbr (-k _ via KEY) waits 300 ms for hbbs to create the key, so
		// start hbbs first, as a unit ordering would. Retry on a port race.
		var p int
		var s, r *proc
		for attempt := 0; ; attempt++ {
			var err error
			if p, err = FreeBasePort(lo); err != nil {
				t.Fatal(err)
			}
			s = startProc(t, dir, nil, hbbs, "-p", strconv.Itoa(p), "-r", "relay.example:"+strconv.Itoa(p+1))
			if listening(s, hp(p-1), hp(p), hp(p+2)) {
				// -b needs the 1.1.17 mode.
				r = startProc(t, dir, []string{"KEY=_", "STANDIN_VERSION=1.1.17"}, hbbr, "--port="+strconv.Itoa(p+1), "-b", lo)
				if listening(r, hp(p+1), hp(p+3)) {
					break
				}
				r.cmd.Process.Kill()
				<-r.done
			}
			s.cmd.Process.Kill()
			<-s.done
			if attempt == 3 {
				t.Fatalf("could not start on a free port block:\n%s", s.stdout)
			}
		}

		pub := readFile(t, filepath.Join(dir, PublicKeyFile))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for !strings.Contains(s.stdout.String(), "Key: "+pub) || !strings.Contains(r.stdout.String(), "Key: "+pub) {
			if ctx.Err() != nil {
				t.Fatalf("Key lines missing:\nhbbs:\n%s\nhbbr:\n%s", s.stdout, r.stdout)
			}
			time.Sleep(20 * time.Millisecond)
		}

		// hbbs TCP P: the framed punch-hole reply bytes.
		for key, want := range map[string]string{pub: frameIDNotExist, "bad": frameLicenseMismatch} {
			c := dial(t, netip.MustParseAddrPort(hp(p)))
			write(t, c, framedPunch(t, "nosuchid", key))
			if got := readN(t, c, len(unhex(t, want)), 2*time.Second); !bytes.Equal(got, unhex(t, want)) {
				t.Fatalf("key %q: % x", key, got)
			}
		}
		// UDP P.
		u, err := net.Dial("udp", hp(p))
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		write(t, u, unhex(t, udpRegisterPeerABC))
		u.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		if n, err := u.Read(buf); err != nil || !bytes.Equal(buf[:n], unhex(t, udpRegisterPeerResponse)) {
			t.Fatalf("udp: % x %v", buf[:n], err)
		}
		// Loopback on P-1 and R is the console.
		for _, c := range []struct {
			port int
			cmd  string
			want string
		}{{p - 1, "rs", "relay.example:" + strconv.Itoa(p+1) + "\n"}, {p + 1, "h", "usage(u)"}} {
			conn := dial(t, netip.MustParseAddrPort(hp(c.port)))
			write(t, conn, []byte(c.cmd))
			if got, _ := readAll(t, conn, 3*time.Second); !strings.Contains(string(got), c.want) {
				t.Fatalf("console %d %q: %q", c.port, c.cmd, got)
			}
		}
		// hbbr's key check over its WebSocket port (no console there).
		for key, wantOpen := range map[string]bool{pub: true, "bad": false} {
			ws, _, err := websocket.Dial(ctx, "ws://"+hp(p+3)+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			ws.Write(ctx, websocket.MessageBinary, rendezvous.Marshal(&rendezvous.RequestRelay{UUID: "u-" + key, LicenceKey: key}))
			rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			_, _, err = ws.Read(rctx)
			rcancel()
			open := err != nil && errors.Is(err, context.DeadlineExceeded)
			if open != wantOpen {
				t.Fatalf("key %q: open %v (%v)", key, open, err)
			}
			ws.CloseNow()
		}
		// stdout arrives through a pipe: poll for the line.
		for !strings.Contains(r.stdout.String(), "Relay authentication failed from ") {
			if ctx.Err() != nil {
				t.Fatalf("hbbr log:\n%s", r.stdout)
			}
			time.Sleep(20 * time.Millisecond)
		}

		// SIGTERM: the process dies of the signal, like the real server.
		for _, pr := range []*proc{s, r} {
			pr.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-pr.done:
			case <-time.After(5 * time.Second):
				t.Fatal("SIGTERM ignored")
			}
			ws, ok := pr.cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Fatalf("exit %v", pr.cmd.ProcessState)
			}
		}
		if c, err := net.DialTimeout("tcp", hp(p), 500*time.Millisecond); err == nil {
			c.Close()
			t.Fatal("still listening after SIGTERM")
		}
	})
}
