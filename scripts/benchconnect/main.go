// Command benchconnect is scripts/bench-check's floor: what nmap -sT does
// (a bare TCP connect to each port, closed at once with a reset), done with
// Go's net package at rdctl's concurrency. No Go scanner that opens the same
// connections can beat it, so rdctl check's time against it shows what its
// protocol exchanges cost, apart from the connections themselves.
//
// Usage: benchconnect -targets FILE [-ports 21115-21119] [-concurrency 64]
// It prints how many ports were open. Traffic goes only to the addresses in
// FILE (bench-check gives loopback ones).
//
// With -rate N it is scripts/bench-exporter's floor instead: for -seconds,
// N times a second (the pace at which Prometheus asks the exporter for one
// target), the next target's ports are connected to at once and closed, as
// one scrape of the exporter would, and it prints its own CPU as a share of
// one core. That is the connections alone, without the HTTP request or any
// exchange on them.
//
// With -serve ADDR it is an exporter floor that Prometheus scrapes the way
// it scrapes rdctl exporter: GET /probe?target=HOST connects to HOST's
// ports at once (none with -connect=false), closes them and answers
// probe_success 1 (0 when a port was closed). scripts/bench-exporter runs
// it in rdctl's place with BENCH_EXPORTER=floor.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchconnect:", err)
		os.Exit(1)
	}
}

func run() error {
	targets := flag.String("targets", "", "file with one address per line (required)")
	ports := flag.String("ports", "21115-21119", "port range FIRST-LAST")
	concurrency := flag.Int("concurrency", 64, "connects in flight")
	timeout := flag.Duration("timeout", 3*time.Second, "per-connect timeout")
	rate := flag.Float64("rate", 0, "paced mode: targets per second (0: one pass as fast as possible)")
	seconds := flag.Float64("seconds", 60, "paced mode: how long to run")
	serve := flag.String("serve", "", "exporter floor: serve /probe on this address")
	connect := flag.Bool("connect", true, "exporter floor: connect to the target's ports")
	flag.Parse()
	if *serve != "" {
		first, last, _ := strings.Cut(*ports, "-")
		lo, _ := strconv.Atoi(first)
		hi, _ := strconv.Atoi(last)
		if !*connect {
			lo, hi = 1, 0
		}
		return serveFloor(*serve, lo, hi)
	}
	first, last, ok := strings.Cut(*ports, "-")
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	if *targets == "" || !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi || *concurrency < 1 {
		flag.Usage()
		return errors.New("bad flags")
	}
	f, err := os.Open(*targets)
	if err != nil {
		return err
	}
	defer f.Close()
	var hosts []string
	for s := bufio.NewScanner(f); s.Scan(); {
		if h := strings.TrimSpace(s.Text()); h != "" {
			hosts = append(hosts, h)
		}
	}

	d := &net.Dialer{KeepAlive: -1, Timeout: *timeout}
	if *rate > 0 {
		return paced(d, hosts, lo, hi, *rate, time.Duration(*seconds*float64(time.Second)))
	}
	addrs := make(chan string)
	var open atomic.Int64
	var wg sync.WaitGroup
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range addrs {
				c, err := d.DialContext(context.Background(), "tcp", a)
				if err != nil {
					continue
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				open.Add(1)
			}
		}()
	}
	for _, h := range hosts {
		for p := lo; p <= hi; p++ {
			addrs <- net.JoinHostPort(h, strconv.Itoa(p))
		}
	}
	close(addrs)
	wg.Wait()
	fmt.Printf("%d/%d ports open\n", open.Load(), len(hosts)*(hi-lo+1))
	return nil
}

// paced connects to one target's ports at once, rate times a second, for
// length, and prints its CPU share of one core over that time.
func paced(d *net.Dialer, hosts []string, lo, hi int, rate float64, length time.Duration) error {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var open, tried int
	for i := 0; time.Since(start) < length; i++ {
		<-tick.C
		open += connectAll(context.Background(), d, hosts[i%len(hosts)], lo, hi)
		tried += hi - lo + 1
	}
	wall := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	fmt.Printf("%d/%d ports open; CPU %.2f s over %.1f s = %.2f%% of one core\n", open, tried, cpu.Seconds(), wall.Seconds(), 100*cpu.Seconds()/wall.Seconds())
	return nil
}

// serveFloor is the exporter floor (-serve): the least an HTTP exporter can
// do for one scrape, in the shape rdctl exporter does it.
func serveFloor(addr string, lo, hi int) error {
	d := &net.Dialer{KeepAlive: -1, Timeout: 3 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) {
		ok := 0
		if connectAll(r.Context(), d, r.URL.Query().Get("target"), lo, hi) == hi-lo+1 {
			ok = 1
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP probe_success Whether every port connected.\n# TYPE probe_success gauge\nprobe_success %d\n", ok)
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// connectAll connects to ports lo..hi of host at once, closes each
// connection with a reset as soon as it is up, and says how many were.
func connectAll(ctx context.Context, d *net.Dialer, host string, lo, hi int) int {
	var wg sync.WaitGroup
	var n atomic.Int64
	for p := lo; p <= hi; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			n.Add(1)
		}()
	}
	wg.Wait()
	return int(n.Load())
}
