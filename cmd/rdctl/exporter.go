package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/exporter"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/textsafe"
)

func exporterCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "exporter",
		Usage:       "serve Prometheus probes of RustDesk servers (blackbox_exporter style)",
		Description: helpText("exporter"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "listen on `ADDR` (IP:PORT)", Value: exporter.DefaultListen},
			&cli.StringFlag{Name: "modules", Usage: "read the probe modules from `FILE` (YAML)"},
			&cli.StringFlag{Name: "allow-targets", Usage: "probe only targets in `LIST` (CIDR, IP or host, comma separated)"},
			&cli.StringFlag{Name: "key", Usage: "the default module's expected public `KEY` (default: from the deployment record)"},
			&cli.StringFlag{Name: "key-file", Usage: "read the default module's expected public key from `FILE` (id_ed25519.pub)"},
			&cli.DurationFlag{Name: "timeout", Usage: "bound the default module's probe requests by `D`", Value: exporter.DefaultTimeout},
			&cli.IntFlag{Name: "max-in-flight", Usage: "serve at most `N` probe requests at once (more get 503)", Value: exporter.DefaultMaxInFlight},
			&cli.StringFlag{Name: "log-format", Usage: "log as `FORMAT`: logfmt or json (default logfmt, json with --json)"},
			&cli.StringFlag{Name: "log-level", Usage: "log `LEVEL`: debug, info, warn or error", Value: "info"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return usageErrorf("exporter takes no arguments (targets come with each probe request)")
			}
			return runExporter(ctx, e, exporterArgs{
				listen: cmd.String("listen"), modules: cmd.String("modules"), allow: cmd.String("allow-targets"),
				allowSet: cmd.IsSet("allow-targets"), key: cmd.String("key"), keySet: cmd.IsSet("key"),
				keyFile: cmd.String("key-file"), timeout: cmd.Duration("timeout"), maxInFlight: cmd.Int("max-in-flight"),
				logFormat: cmd.String("log-format"), logLevel: cmd.String("log-level"),
			})
		},
	}
}

type exporterArgs struct {
	listen, modules, allow string
	allowSet               bool
	key                    string
	keySet                 bool
	keyFile                string
	timeout                time.Duration
	maxInFlight            int
	logFormat, logLevel    string
}

// exporterSetup is everything runExporter validated, before it listens.
type exporterSetup struct {
	opts   exporter.Options
	listen string
}

func runExporter(ctx context.Context, e *env, a exporterArgs) error {
	s, err := e.exporterSetup(a, e.stderr)
	if err != nil {
		return err
	}
	srv, err := exporter.New(s.opts)
	if err != nil {
		return err
	}
	if e.dryRun {
		return printExporterSetup(e, s)
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return withHints(fmt.Errorf("listening on %s: %w", s.listen, err), "pick another address: rdctl exporter --listen 127.0.0.1:PORT")
	}
	tuneRuntimeForExporter()
	log := s.opts.Logger
	mod := s.opts.Config.Modules[exporter.DefaultModule]
	keyInfo := "none"
	if mod.Key != "" {
		_, pub, _ := keys.ParsePublicArg("key", mod.Key)
		keyInfo = keys.Fingerprint(pub) + " (" + mod.KeySource + ")"
	}
	log.Info("listening", "address", ln.Addr().String(), "modules", s.opts.Config.ModuleNames(),
		"allow_targets", s.opts.Allow.String(), "default_key", keyInfo)
	return srv.Serve(ctx, ln)
}

// exporterSetup validates the flags, the modules file and the key into the
// server's options: every refusal is exit 2, before anything listens.
func (e *env) exporterSetup(a exporterArgs, logTo io.Writer) (*exporterSetup, error) {
	if err := checkListen(a.listen); err != nil {
		return nil, err
	}
	switch {
	case a.timeout <= 0 || a.timeout > exporter.MaxTimeout:
		return nil, usageErrorf("--timeout must be more than 0 and at most %s", exporter.MaxTimeout)
	case a.maxInFlight < 1 || a.maxInFlight > maxConcurrency:
		return nil, usageErrorf("--max-in-flight must be 1–%d", maxConcurrency)
	case a.keySet && a.keyFile != "":
		return nil, usageErrorf("--key and --key-file exclude each other")
	}
	format := a.logFormat
	if format == "" {
		format = "logfmt"
		if e.json {
			format = "json"
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, usageErrorf("--log-level %s: want debug, info, warn or error", textsafe.Echo(a.logLevel))
	}
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch format {
	case "logfmt":
		log = slog.New(slog.NewTextHandler(logTo, hopts))
	case "json":
		log = slog.New(slog.NewJSONHandler(logTo, hopts))
	default:
		return nil, usageErrorf("--log-format %s: want logfmt or json", textsafe.Echo(format))
	}
	var err error
	opts := exporter.Options{Logger: log, MaxInFlight: a.maxInFlight, TailscaleSocket: e.tsSocket}
	if a.allowSet {
		if opts.Allow, err = exporter.ParseAllowList(a.allow); err != nil {
			return nil, usageErrorf("%v", err)
		}
	}

	// The default module's key: --key, --key-file, else the record's.
	var key, source string
	switch {
	case a.keySet:
		var pub []byte
		if key, pub, err = keys.ParsePublicArg("--key", a.key); err != nil {
			return nil, err
		}
		if rec, err := e.loadRecord(); err == nil {
			if err := e.refuseSeedAsKey("--key", rec, pub); err != nil {
				return nil, err
			}
		}
		source = "--key"
	case a.keyFile != "":
		if err := refuseKeyPath("--key-file", a.keyFile); err != nil {
			return nil, err
		}
		if key, err = exporter.LoadKeyFile(a.keyFile); err != nil {
			return nil, usageErrorf("--key-file %s: %s", textsafe.Echo(a.keyFile), textsafe.Withhold(err.Error()))
		}
		source = a.keyFile
	default:
		rec, err := e.loadRecord()
		switch {
		case errors.Is(err, deploy.ErrNoRecord):
			log.Warn("no expected key (no --key, --key-file or deployment record): key_status can only be unenforced or unknown")
		case err != nil:
			return nil, err
		default:
			if key, source, err = e.recordKey(rec); err != nil {
				log.Warn("no expected key from the deployment record", "error", textsafe.Withhold(err.Error()))
				key, source = "", ""
			}
		}
	}
	cfg := exporter.DefaultConfig(key, source)
	cfg.Modules[exporter.DefaultModule].Timeout = a.timeout
	if a.modules != "" {
		if err := refuseKeyPath("--modules", a.modules); err != nil {
			return nil, err
		}
		file, err := exporter.LoadConfig(a.modules)
		if err != nil {
			var ce *exporter.ConfigError
			if errors.As(err, &ce) {
				return nil, withHints(&usageError{msg: err.Error()}, "see the format: rdctl exporter --help")
			}
			return nil, err
		}
		if _, ok := file.Modules[exporter.DefaultModule]; !ok {
			file.Modules[exporter.DefaultModule] = cfg.Modules[exporter.DefaultModule]
		}
		cfg = file
	}
	opts.Config = cfg
	return &exporterSetup{opts: opts, listen: a.listen}, nil
}

// The exporter --dry-run --json contract: the checked setup. More fields
// may be added, none renamed.
type exporterJSON struct {
	Listen       string            `json:"listen"`
	AllowTargets string            `json:"allow_targets"`
	Modules      []exporterModJSON `json:"modules"`
}

type exporterModJSON struct {
	Name           string   `json:"name"`
	Probes         []string `json:"probes"`
	KeyFingerprint string   `json:"key_fingerprint"`
	KeySource      string   `json:"key_source"`
	TimeoutSeconds float64  `json:"timeout_seconds"`
	Strict         bool     `json:"strict"`
	Tailnet        bool     `json:"tailnet"`
}

// printExporterSetup is exporter --dry-run: the modules as checked, and
// nothing served.
func printExporterSetup(e *env, s *exporterSetup) error {
	out := exporterJSON{Listen: s.listen, AllowTargets: s.opts.Allow.String(), Modules: []exporterModJSON{}}
	for _, name := range s.opts.Config.ModuleNames() {
		m := s.opts.Config.Modules[name]
		mj := exporterModJSON{Name: name, KeySource: m.KeySource, TimeoutSeconds: m.Timeout.Seconds(), Strict: m.Strict, Tailnet: m.Tailnet, Probes: []string{}}
		names := m.Probes
		if names == nil {
			names = probe.Names()
		}
		for _, n := range names {
			mj.Probes = append(mj.Probes, string(n))
		}
		if m.Key != "" {
			_, pub, _ := keys.ParsePublicArg("key", m.Key)
			mj.KeyFingerprint = keys.Fingerprint(pub)
		}
		out.Modules = append(out.Modules, mj)
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	e.printf("would listen on %s; allowed targets: %s\n", out.Listen, out.AllowTargets)
	for _, m := range out.Modules {
		key := "none"
		if m.KeyFingerprint != "" {
			key = m.KeyFingerprint + " (" + m.KeySource + ")"
		}
		e.printf("module %s: probes %s; key %s; timeout %gs; strict %v; tailnet %v\n", m.Name, strings.Join(m.Probes, ","), key, m.TimeoutSeconds, m.Strict, m.Tailnet)
	}
	return nil
}

// tuneRuntimeForExporter: a probe allocates a little per connection and
// keeps nothing, so the default GC pacing collects often for nothing (the
// settings of check); and one P unless GOMAXPROCS says otherwise. The
// exporter spends nearly all its time waiting on sockets; with a P per
// core the scheduler wakes and spins idle threads between packets, which
// cost about a third more CPU at 1,000 targets scraped every 15 s
// (scripts/bench-exporter: 11.4% of a core with two Ps, 7.9% with one).
// One P serves roughly 1,000 probe requests a second.
func tuneRuntimeForExporter() {
	tuneGCForCheck()
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// checkListen accepts IP:PORT, [IPv6]:PORT, localhost:PORT and :PORT: the
// address the exporter listens on is this host's, never a name to look up
// (and never something that could be a key, which would be printed back).
func checkListen(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return usageErrorf("--listen %s: want IP:PORT (e.g. %s)", textsafe.Echo(listen), exporter.DefaultListen)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" && host != "localhost" {
		return usageErrorf("--listen %s: the host must be an IP address, localhost or empty", textsafe.Echo(listen))
	}
	if _, err := deploy.ParsePort("--listen", port); err != nil && port != "0" {
		return err
	}
	return nil
}
