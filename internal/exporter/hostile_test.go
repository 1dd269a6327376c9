package exporter

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// hostileHeap bounds the exporter's live heap while it scrapes hostile
// targets (the figure: the exporter stays under 100 MB).
const hostileHeap = 100 << 20

// hostileTarget serves every TCP port of a target (P-1, P, R=P+1, P+2,
// R+2) with serve and answers every datagram to UDP P with a flood, until
// the test ends. It returns HOST:P.
func hostileTarget(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	bind := hbbstest.RandomLoopback()
	for range 20 {
		base, err := hbbstest.FreeBasePort(bind)
		if err != nil {
			t.Fatal(err)
		}
		var lns []net.Listener
		ok := true
		for _, port := range []int{base - 1, base, base + 1, base + 2, base + 3} {
			ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(bind, strconv.Itoa(base)))
		if err != nil || !ok {
			for _, ln := range lns {
				ln.Close()
			}
			if pc != nil {
				pc.Close()
			}
			continue
		}
		var conns sync.WaitGroup
		for _, ln := range lns {
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Add(1)
					go func() {
						defer conns.Done()
						defer c.Close()
						c.SetDeadline(time.Now().Add(10 * time.Second))
						serve(c)
					}()
				}
			}()
		}
		go func() {
			buf := make([]byte, 2048)
			junk := bytes.Repeat([]byte{0xff}, 1400)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				for range 200 {
					pc.WriteTo(junk, from)
				}
			}
		}()
		t.Cleanup(func() {
			for _, ln := range lns {
				ln.Close()
			}
			pc.Close()
		})
		return net.JoinHostPort(bind, strconv.Itoa(base))
	}
	t.Fatal("no free ports for the hostile target")
	return ""
}

func TestHostileTargets(t *testing.T) {
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	endless := func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
	cases := []struct {
		name  string
		serve func(net.Conn)
	}{
		{"endless bytes", endless},
		{"slow bytes", func(c net.Conn) {
			for {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{"endless HTTP header", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX-Long: "))
			endless(c)
		}},
		{"huge frame then stall", func(c net.Conn) {
			c.Write([]byte{0xff, 0xff, 0xff, 0xff}) // a frame header claiming ~1 GiB
			c.Write(chunk)
			time.Sleep(10 * time.Second)
		}},
		{"accept and hold", func(c net.Conn) { time.Sleep(10 * time.Second) }},
		{"close at once", func(c net.Conn) {}},
	}
	hs, _, _ := testServer(t, Options{}, testPub)
	const scrapeTimeout = 2 * time.Second // less the 0.5 s offset: 1.5 s
	const parallel = 4
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tgt := hostileTarget(t, tt.serve)
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					if m.HeapAlloc > peak.Load() {
						peak.Store(m.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			var wg sync.WaitGroup
			for range parallel {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					code, body := get(t, hs, probePath(tgt, ""), strconv.FormatFloat(scrapeTimeout.Seconds(), 'f', -1, 64))
					took := time.Since(start)
					if took > scrapeTimeout+time.Second {
						t.Errorf("scrape took %s, past its %s timeout", took, scrapeTimeout)
					}
					m := parse(t, body)
					if code != 200 || m["probe_success"] != 0 {
						t.Errorf("status %d, probe_success %v", code, m["probe_success"])
					}
				}()
			}
			wg.Wait()
			close(stop)
			<-sampled
			t.Logf("peak heap %.1f MB (%.1f MB before)", float64(peak.Load())/1e6, float64(base.HeapAlloc)/1e6)
			if peak.Load() > hostileHeap {
				t.Errorf("heap peaked at %d MB, over %d MB", peak.Load()>>20, hostileHeap>>20)
			}
		})
	}
}
