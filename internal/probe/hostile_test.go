package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// The hostile-server set: every server rdctl check talks to may be
// hostile. Each case runs one probe against a server that misbehaves on
// purpose and holds the probe to two bounds: memory (what the server sends
// must not grow rdctl's heap) and time (the probe returns by its timeout,
// with an error, rather than hang). These tests are not parallel, so the
// memory figures are this probe's and its server's alone.

// hostileMem bounds the heap a probe may take from one hostile server,
// in bytes allocated over the whole probe and at the peak. Before the
// handshake limit an endless header line cost 325 MB in 2 s.
const hostileMem = 32 << 20

// hostileSlack is what a probe may take past its timeout before the test
// calls it hung: generous, since it only has to tell "returned at the
// timeout" from "never returned", on a loaded machine.
const hostileSlack = 2 * time.Second

// memUse runs f and reports the bytes allocated meanwhile and the peak
// growth of the live heap, sampled every few milliseconds.
func memUse(f func()) (total, peak uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var max atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > before.HeapAlloc && m.HeapAlloc-before.HeapAlloc > max.Load() {
				max.Store(m.HeapAlloc - before.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-sampled
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, max.Load()
}

// hostileTCP serves every connection to a 127.0.0.1 port with h until the
// test ends.
func hostileTCP(t *testing.T, h func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				h(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// acceptWS reads the client's upgrade request and answers 101 correctly,
// so what follows is frames.
func acceptWS(c net.Conn) bool {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return false
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
	return err == nil
}

// endless writes chunk to c until c fails (the probe closed it).
func endless(c net.Conn, chunk []byte) {
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// slowly writes b one byte a second.
func slowly(c net.Conn, b []byte) {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

func wsFrame(h ws.Header) []byte {
	var b bytes.Buffer
	ws.WriteHeader(&b, h)
	return b.Bytes()
}

func TestHostileServers(t *testing.T) {
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	const timeout = 1500 * time.Millisecond
	tcpProbe := func(ctx context.Context, addr string) error { _, err := TestNatTCP(ctx, DirectDial, addr); return err }
	wsProbe := func(ctx context.Context, addr string) error { return TestNatWS(ctx, DirectDial, addr, "") }
	tests := []struct {
		name   string
		serve  func(c net.Conn)
		probe  func(ctx context.Context, addr string) error
		want   error // errors.Is
		fast   bool  // fails at once, not at the timeout
		noPeak bool  // a flood: only the peak heap is bounded, not the total allocated
	}{
		{name: "ws endless header line", want: ErrHandshakeTooLarge, fast: true, probe: wsProbe, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nX-Endless: ")
			endless(c, chunk)
		}},
		{name: "ws endless status line", want: ErrHandshakeTooLarge, fast: true, probe: wsProbe, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			endless(c, chunk)
		}},
		{name: "ws endless headers", want: ErrHandshakeTooLarge, fast: true, probe: wsProbe, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n")
			endless(c, bytes.Repeat([]byte("X-A: b\r\n"), 4096))
		}},
		{name: "ws slow handshake", want: ErrNoAnswer, probe: wsProbe, serve: func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			slowly(c, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"))
		}},
		{name: "ws huge frame", want: ErrUnexpectedReply, fast: true, probe: wsProbe, serve: func(c net.Conn) {
			if acceptWS(c) {
				c.Write(wsFrame(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 62}))
				endless(c, chunk)
			}
		}},
		{name: "ws endless fragments", want: ErrUnexpectedReply, fast: true, probe: wsProbe, serve: func(c net.Conn) {
			if acceptWS(c) {
				c.Write(append(wsFrame(ws.Header{OpCode: ws.OpBinary, Length: int64(len(chunk))}), chunk...))
				endless(c, append(wsFrame(ws.Header{OpCode: ws.OpContinuation, Length: int64(len(chunk))}), chunk...))
			}
		}},
		{name: "ws text flood", want: ErrNoAnswer, noPeak: true, probe: wsProbe, serve: func(c net.Conn) {
			if acceptWS(c) {
				endless(c, append(wsFrame(ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(chunk))}), chunk...))
			}
		}},
		{name: "ws ping flood", want: ErrNoAnswer, probe: wsProbe, serve: func(c net.Conn) {
			if acceptWS(c) {
				go io.Copy(io.Discard, c) // the pongs
				endless(c, bytes.Repeat(append(wsFrame(ws.Header{Fin: true, OpCode: ws.OpPing, Length: 4}), "ping"...), 1024))
			}
		}},
		{name: "ws slow frame", want: ErrNoAnswer, probe: wsProbe, serve: func(c net.Conn) {
			if acceptWS(c) {
				slowly(c, append(wsFrame(ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 60000}), chunk...))
			}
		}},
		{name: "tcp huge frame", want: nil, fast: true, probe: tcpProbe, serve: func(c net.Conn) {
			hdr, _ := rendezvous.AppendHeader(nil, rendezvous.MaxFrameLen)
			c.Write(hdr)
			endless(c, chunk)
		}},
		{name: "tcp large frame, then stall", want: ErrNoAnswer, probe: tcpProbe, serve: func(c net.Conn) {
			hdr, _ := rendezvous.AppendHeader(nil, maxReply)
			c.Write(append(hdr, chunk[:100]...))
			io.Copy(io.Discard, c) // until the probe closes
		}},
		{name: "tcp slow bytes", want: ErrNoAnswer, probe: tcpProbe, serve: func(c net.Conn) {
			msg, _ := rendezvous.AppendMessage(nil, &rendezvous.TestNatResponse{Port: 1})
			slowly(c, msg)
		}},
		{name: "console flood", want: nil, fast: true, probe: func(ctx context.Context, addr string) error {
			help, err := Console(ctx, DirectDial, addr, "h")
			if err == nil && len(help) > consoleMax {
				return errors.New("console reply over its bound")
			}
			return err
		}, serve: func(c net.Conn) { endless(c, chunk) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := hostileTCP(t, tt.serve)
			var err error
			var elapsed time.Duration
			total, peak := memUse(func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				start := time.Now()
				err = tt.probe(ctx, addr)
				elapsed = time.Since(start)
			})
			t.Logf("%v in %s; allocated %d KiB, peak heap +%d KiB", err, elapsed.Round(time.Millisecond), total>>10, peak>>10)
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("error %v, want %v", err, tt.want)
			case tt.want == nil && tt.name == "tcp huge frame":
				var big *rendezvous.FrameTooLargeError
				if !errors.As(err, &big) {
					t.Errorf("error %v, want a FrameTooLargeError", err)
				}
			case tt.want == nil && err != nil:
				t.Errorf("error %v", err)
			}
			if tt.fast && elapsed > timeout/2 {
				t.Errorf("took %s; the bound should stop it at once", elapsed)
			}
			if elapsed > timeout+hostileSlack {
				t.Errorf("took %s with a %s timeout", elapsed, timeout)
			}
			if peak > hostileMem || (!tt.noPeak && total > hostileMem) {
				t.Errorf("allocated %d MiB (peak heap +%d MiB); the bound is %d MiB", total>>20, peak>>20, hostileMem>>20)
			}
		})
	}
}

// A UDP flood of datagrams that are not the answer: the probe keeps
// waiting for its answer with one fixed buffer and gives up at its timeout.
func TestHostileUDPFlood(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		junk := bytes.Repeat([]byte{0xff}, 1400)
		for {
			if _, err := pc.WriteTo(junk, from); err != nil {
				return
			}
		}
	}()
	const timeout = 1500 * time.Millisecond
	var elapsed time.Duration
	_, peak := memUse(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		err = RegisterUDP(ctx, DirectDial, pc.LocalAddr().String())
		elapsed = time.Since(start)
	})
	if !errors.Is(err, ErrNoAnswer) {
		t.Errorf("error %v, want %v", err, ErrNoAnswer)
	}
	if elapsed > timeout+hostileSlack {
		t.Errorf("took %s with a %s timeout", elapsed, timeout)
	}
	if peak > hostileMem {
		t.Errorf("peak heap +%d MiB", peak>>20)
	}
}

// keyServer is an hbbs that has no key to enforce, but answers
// LICENSE_MISMATCH to the keys in reject (to pass for enforcing one) and
// ID_NOT_EXIST to any other. It records the keys it was shown.
func keyServer(t *testing.T, reject ...string) (addr string, seen func() []string) {
	var mu sync.Mutex
	var keys []string
	addr = hostileTCP(t, func(c net.Conn) {
		m, err := rendezvous.ReadMessage(bufio.NewReader(c), 1024)
		req, ok := m.(*rendezvous.PunchHoleRequest)
		if err != nil || !ok {
			return
		}
		mu.Lock()
		keys = append(keys, req.LicenceKey)
		mu.Unlock()
		r := &rendezvous.PunchHoleResponse{}
		for _, k := range reject {
			if req.LicenceKey == k {
				r.Failure = rendezvous.LicenseMismatch
			}
		}
		rendezvous.WriteMessage(c, r)
	})
	return addr, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), keys...)
	}
}

// --strict used to present one constant wrong key, so a server without the
// key could reject exactly that one and pass for enforcing the key. The
// wrong key is now fresh random bytes on every probe.
func TestStrictNotFooledByAConstantKey(t *testing.T) {
	key := otherKey()
	for _, constant := range []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA="} {
		addr, _ := keyServer(t, constant)
		st, err := Key(context.Background(), DirectDial, addr, key, true)
		if err != nil || st != KeyUnenforced {
			t.Errorf("a server rejecting only %s: %s, %v; want %s", constant, st, err, KeyUnenforced)
		}
	}

	// Fresh for every probe, and drawn from the randomness given.
	addr, seen := keyServer(t)
	for range 2 {
		if st, err := Key(context.Background(), DirectDial, addr, key, true); err != nil || st != KeyUnenforced {
			t.Fatalf("%s, %v", st, err)
		}
	}
	fixed := bytes.Repeat([]byte{7}, 32)
	want := base64.StdEncoding.EncodeToString(fixed)
	if _, err := keyCheck(context.Background(), DirectDial, addr, key, true, bytes.NewReader(fixed)); err != nil {
		t.Fatal(err)
	}
	keys := seen()
	if len(keys) != 6 || keys[0] != key || keys[2] != key || keys[4] != key {
		t.Fatalf("keys presented: %q", keys)
	}
	if keys[1] == keys[3] || keys[1] == key || keys[3] == key {
		t.Errorf("the wrong keys are not fresh: %q", keys)
	}
	if keys[5] != want {
		t.Errorf("wrong key %q, want %q from the injected randomness", keys[5], want)
	}
	for _, k := range keys {
		if b, err := base64.StdEncoding.DecodeString(k); err != nil || len(b) != 32 {
			t.Errorf("key %q is not a well-formed key", k)
		}
	}

	// Even randomness that yields the expected key gives another.
	kb, _ := base64.StdEncoding.DecodeString(key)
	if w, err := wrongKey(bytes.NewReader(kb), key); err != nil || w == key {
		t.Errorf("wrongKey = %q, %v", w, err)
	}
	if _, err := wrongKey(strings.NewReader("short"), key); err == nil {
		t.Error("a short read of randomness made a key")
	}
}
