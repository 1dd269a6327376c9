// Command benchconnect is scripts/bench-check's floor: what nmap -sT does
// (a bare TCP connect to each port, closed at once with a reset), done with
// Go's net package at rdctl's concurrency. No Go scanner that opens the same
// connections can beat it, so rdctl check's time against it shows what its
// protocol exchanges cost, apart from the connections themselves.
//
// Usage: benchconnect -targets FILE [-ports 21115-21119] [-concurrency 64]
// It prints how many ports were open. Traffic goes only to the addresses in
// FILE (bench-check gives loopback ones).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	flag.Parse()
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
