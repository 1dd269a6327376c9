// Command standin runs the hbbstest stand-in as a standalone hbbs or hbbr,
// for systemd and container tests. It is test tooling and never ships.
//
// It is hbbs or hbbr by the base name of argv[0] ("hbbs", "hbbr", e.g. via
// symlinks) or else by its first argument ("standin hbbs -k _"). It parses
// the same flags as upstream (clap style; an unknown flag is an error, exit
// 1), works in the current directory, logs to stdout as the real servers do
// (the "Fatal error" line included; only clap's usage errors go to stderr)
// and stops on SIGTERM or SIGINT by re-raising the signal after cleanup, so
// its exit looks like the real server being killed.
//
// Test knobs are environment variables, never flags, since the real servers
// reject unknown flags:
//
//	STANDIN_VERSION     the upstream version to behave as and print for -V
//	                    (default 1.1.16, which rejects -b; 1.1.17 accepts it)
//	STANDIN_REFUSE_KEY  exit 1 at startup, with a log line, if the loaded
//	                    key equals this public key
//	STANDIN_MUTE        comma list of listeners bound but never answering
//	                    (nat, tcp, udp, ws, relay, relay-ws)
//	STANDIN_SKIP        comma list of listeners not bound at all
//
// Build it static with CGO_ENABLED=0.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

func main() {
	os.Exit(run())
}

func run() int {
	kind, args, ok := pickKind(os.Args)
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: hbbs|hbbr [OPTIONS] (by argv[0]) or %s hbbs|hbbr [OPTIONS]\n", filepath.Base(os.Args[0]))
		return 2
	}
	version := os.Getenv("STANDIN_VERSION")
	if version == "" {
		version = hbbstest.DefaultVersion
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	inv, err := hbbstest.ParseArgsVersion(kind, version, args, env, ".")
	if err != nil {
		fmt.Fprint(os.Stderr, err.Error())
		return 1
	}
	if inv.ShowHelp {
		fmt.Print(hbbstest.Help(kind, version))
		return 0
	}
	if inv.ShowVersion {
		fmt.Printf("%s %s\n", kind, version)
		return 0
	}
	opts := inv.Options
	opts.LogWriter = os.Stdout
	opts.RefuseKey = os.Getenv("STANDIN_REFUSE_KEY")
	opts.Mute = listeners(os.Getenv("STANDIN_MUTE"))
	opts.Skip = listeners(os.Getenv("STANDIN_SKIP"))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	srv, err := hbbstest.Start(context.Background(), kind, opts)
	if err != nil {
		var mk *hbbstest.MalformedKeyError
		switch {
		case errors.As(err, &mk):
			fmt.Println(mk.Error())
		case errors.Is(err, hbbstest.ErrRefusedKey):
			// already logged by the server
		default:
			fmt.Printf("%s: %v\n", kind, err)
		}
		return 1
	}
	sig := <-sigs
	srv.Close()
	signal.Reset(sig.(syscall.Signal))
	syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	select {} // the re-raised signal ends the process
}

// pickKind chooses hbbs or hbbr from argv[0] or, failing that, argv[1].
func pickKind(argv []string) (hbbstest.Kind, []string, bool) {
	if len(argv) == 0 {
		return "", nil, false
	}
	switch k := hbbstest.Kind(strings.TrimSuffix(filepath.Base(argv[0]), ".exe")); k {
	case hbbstest.HBBS, hbbstest.HBBR:
		return k, argv[1:], true
	}
	if len(argv) > 1 {
		switch k := hbbstest.Kind(argv[1]); k {
		case hbbstest.HBBS, hbbstest.HBBR:
			return k, argv[2:], true
		}
	}
	return "", nil, false
}

func listeners(s string) []hbbstest.Listener {
	var out []hbbstest.Listener
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, hbbstest.Listener(p))
		}
	}
	return out
}
