// Command benchfleet serves hbbs and hbbr stand-ins on many loopback
// addresses at once, for scripts/bench-check. One process per address would
// cost far more than rdctl itself, so every stand-in runs in this one
// process, with consoles off so loopback probes get full protocol
// exchanges, at the real default ports (hbbs 21115/21116/21118, hbbr
// 21117/21119).
//
// It lives under a testdata directory because it imports the test-only
// stand-in (internal/hbbstest), which no shipped package may: the go tool's
// ./... patterns and hbbstest's import guard both skip testdata. Build it
// by path: go build -o benchfleet ./scripts/benchfleet/testdata
//
// It writes the addresses, one per line, to -targets, then an empty -ready
// file, and serves until SIGTERM or SIGINT. The key pair is loaded from, or
// generated in, -keys (hbbs -k -, hbbr -k _): every stand-in enforces it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchfleet:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 1000, "number of loopback addresses (127.0.1.1 onwards, at most 250*254)")
	keyDir := flag.String("keys", "", "key directory (required)")
	targets := flag.String("targets", "", "write the addresses to this file (required)")
	ready := flag.String("ready", "", "create this file once every stand-in listens (required)")
	idle := flag.Duration("idle", 5*time.Second, "stand-ins' idle timeout (upstream: 30s)")
	flag.Parse()
	if *keyDir == "" || *targets == "" || *ready == "" || *n < 1 || *n > 250*254 {
		flag.Usage()
		return errors.New("bad flags")
	}
	if err := os.MkdirAll(*keyDir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var servers []*hbbstest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	var list strings.Builder
	for i := range *n {
		// 127.0.0.0/24 is left alone: resolvers and other services live
		// there.
		addr := fmt.Sprintf("127.0.%d.%d", 1+i/254, 1+i%254)
		base := hbbstest.Options{Dir: *keyDir, Bind: addr, ConsoleRule: hbbstest.NeverConsole, IdleTimeout: *idle}
		hs := base
		hs.Port = hbbstest.DefaultRendezvousPort
		s, err := start(ctx, hbbstest.HBBS, hs)
		if err != nil {
			return fmt.Errorf("hbbs on %s: %w", addr, err)
		}
		servers = append(servers, s)
		hr := base
		hr.Port = hbbstest.DefaultRelayPort
		hr.Key = new("_")
		r, err := start(ctx, hbbstest.HBBR, hr)
		if err != nil {
			return fmt.Errorf("hbbr on %s: %w", addr, err)
		}
		servers = append(servers, r)
		list.WriteString(addr + "\n")
	}
	if err := os.WriteFile(*targets, []byte(list.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(*ready, nil, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchfleet: %d hbbs+hbbr pairs on 127.0.1.1 onwards, key %s\n", *n, filepath.Join(*keyDir, "id_ed25519.pub"))
	<-ctx.Done()
	return nil
}

// start starts a stand-in, waiting out sockets of an earlier run that still
// hold its ports (orphaned connections linger up to tcp_fin_timeout, 60 s).
func start(ctx context.Context, kind hbbstest.Kind, o hbbstest.Options) (*hbbstest.Server, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := hbbstest.Start(ctx, kind, o)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
