// Command rdctl installs and operates a self-hosted RustDesk server (hbbs
// and hbbr): hardened systemd units or a Compose stack, safe key rotation,
// client configuration export and reachability checks.
//
// Exit status: 0 success; 1 the operation or a check failed; 2 bad usage or
// bad input (nothing was changed); 3 another rdctl holds the lock.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
