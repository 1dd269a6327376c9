package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// Exit codes, documented in --help and the README.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitLocked = 3
)

// env is what every command shares: the output streams and the global
// flags. Commands print only through it.
type env struct {
	stdout, stderr io.Writer

	root       string // --root: resolve every path under it, touch nothing live
	configPath string // --config: the deployment record
	json       bool
	dryRun     bool
	quiet      bool
	verbose    bool
	lockWait   time.Duration
	tsSocket   string // --tailscale-socket: tailscaled's LocalAPI socket

	// recovered is what the recovery step of this run's plan did, if it
	// ran (see newPlan).
	recovered *rotate.Recovery
}

// under resolves an absolute system path under --root.
func (e *env) under(p string) string {
	if e.root == "" {
		return p
	}
	return filepath.Join(e.root, p)
}

// recordPath is where the deployment record is: --config as given, or the
// default under --root.
func (e *env) recordPath() string {
	if e.configPath != "" {
		return e.configPath
	}
	return e.under(deploy.DefaultRecordPath)
}

// loadRecord reads the deployment record, with a hint when there is none.
func (e *env) loadRecord() (*deploy.Record, error) {
	r, err := deploy.LoadRecord(e.recordPath())
	if errors.Is(err, deploy.ErrNoRecord) {
		return nil, withHints(err, "install first (rdctl install systemd --relay HOST), or record an existing server with: rdctl adopt")
	}
	return r, err
}

// needRootError is a live mutation asked of a user who is not root: it
// would fail half-way, so it is refused up front as bad usage (exit 2).
type needRootError struct{}

func (*needRootError) Error() string { return "this command changes the live system and needs root" }

// requireRoot refuses a live mutation without root, at once.
func (e *env) requireRoot() error {
	if e.root == "" && os.Geteuid() != 0 {
		return withHints(&needRootError{}, "run it as root (sudo rdctl ...), or build an image tree with --root DIR")
	}
	return nil
}

// lock takes the lock every mutating command holds, after requireRoot.
func (e *env) lock() (unlock func(), err error) {
	if err := e.requireRoot(); err != nil {
		return nil, err
	}
	path, err := safefs.LockPath(e.root)
	if err != nil {
		return nil, err
	}
	unlock, err = safefs.Lock(path, e.lockWait)
	var unsafe *safefs.UnsafeLockError
	if errors.As(err, &unsafe) {
		// Someone else controls where the lock goes: rdctl does not fix
		// that itself, since whoever did it may be holding the lock.
		return nil, withHints(err, fmt.Sprintf("remove %q: rdctl recreates the lock directory as its own, mode 0700", unsafe.Path))
	}
	return unlock, err
}

// commandLine renders an rdctl command line for a hint, with --root when
// this run has one.
func (e *env) commandLine(args string) string {
	if e.root != "" {
		return "rdctl --root " + e.root + " " + args
	}
	return "rdctl " + args
}

// printf writes human output to stdout unless --quiet.
func (e *env) printf(format string, a ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stdout, format, a...)
	}
}

// warnf writes a warning line to stderr (also under --quiet).
func (e *env) warnf(format string, a ...any) {
	fmt.Fprintf(e.stderr, "rdctl: warning: "+format+"\n", a...)
}

// hintf writes a hint line to stderr unless --quiet.
func (e *env) hintf(format string, a ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stderr, "rdctl: hint: "+format+"\n", a...)
	}
}

// debugf writes a line to stderr with -v.
func (e *env) debugf(format string, a ...any) {
	if e.verbose {
		fmt.Fprintf(e.stderr, "rdctl: "+format+"\n", a...)
	}
}

func newApp(e *env) *cli.Command {
	app := &cli.Command{
		Name:                  "rdctl",
		Usage:                 "install and operate a self-hosted RustDesk server",
		Description:           helpText("rdctl"),
		Version:               version(),
		EnableShellCompletion: true,
		// urfave's completion command (bash, zsh, fish, pwsh) is shown and
		// documented like every other command, man page included.
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print a shell completion script"
			c.Description = helpText("completion")
			for _, sub := range c.Commands {
				sub.Usage = "print the " + sub.Name + " completion script"
			}
		},
		Suggest:   true,
		Writer:    e.stdout,
		ErrWriter: e.stderr,
		// rdctl exits in exactly one place (run); never inside urfave.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		HideVersion:    true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Usage: "build or operate on an image tree at `DIR`; nothing live is touched", Destination: &e.root, Sources: cli.EnvVars("RDCTL_ROOT")},
			&cli.StringFlag{Name: "config", Usage: "deployment record `FILE` (default /etc/rdctl/rdctl.toml, under --root)", Destination: &e.configPath},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document on stdout", Destination: &e.json},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would change and change nothing", Destination: &e.dryRun},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors and warnings", Destination: &e.quiet},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print more detail on stderr", Destination: &e.verbose},
			&cli.StringFlag{Name: "tailscale-socket", Usage: "tailscaled's LocalAPI socket `PATH` (default: the platform's)", Destination: &e.tsSocket},
			&cli.DurationFlag{Name: "lock-wait", Usage: "wait up to `D` for another rdctl to finish", Value: 200 * time.Millisecond, Destination: &e.lockWait},
		},
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			for _, f := range []struct{ flag, path string }{{"--root", e.root}, {"--config", e.configPath}, {"--tailscale-socket", e.tsSocket}} {
				if err := refuseKeyRoot(f.flag, f.path); err != nil {
					return ctx, err
				}
			}
			if e.root != "" {
				abs, err := filepath.Abs(e.root)
				if err != nil {
					return ctx, usageErrorf("--root: %v", err)
				}
				e.root = abs
			}
			if e.quiet && e.verbose {
				return ctx, usageErrorf("--quiet and --verbose contradict each other")
			}
			return ctx, nil
		},
		Action: groupAction,
		Commands: []*cli.Command{
			installCommand(e),
			keyCommand(e),
			rotateCommand(e),
			backupsCommand(e),
			exportCommand(e),
			checkCommand(e),
			exporterCommand(e),
			upgradeCommand(e),
			statusCommand(e),
			doctorCommand(e),
			firewallCommand(e),
			proxyCommand(e),
			uninstallCommand(e),
			adoptCommand(e),
			versionCommand(e),
			manCommand(e),
		},
	}
	setUsageErrors(app)
	return app
}

// groupAction is the action of a command that only groups subcommands: help
// without arguments, a usage error (exit 2) for an unknown subcommand.
func groupAction(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() == 0 {
		return cli.ShowSubcommandHelp(cmd)
	}
	return withHints(usageErrorf("unknown command %s", textsafe.Echo(cmd.Args().First())),
		fmt.Sprintf("see the commands: %s --help", cmd.FullName()))
}

// setUsageErrors makes every flag-parsing error a usage error (exit 2).
func setUsageErrors(c *cli.Command) {
	c.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return &usageError{msg: textsafe.Withhold(err.Error())}
	}
	for _, sub := range c.Commands {
		setUsageErrors(sub)
	}
}

// run runs rdctl and returns its exit code. It is the only place that
// prints errors.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	err := newApp(e).Run(ctx, args)
	return report(e.stderr, err)
}

// report prints err in rdctl's grammar and maps it to an exit code.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var failed *checkFailedError
	if errors.As(err, &failed) {
		// The command already said what failed.
		return exitFailed
	}
	fmt.Fprintf(w, "rdctl: error: %s\n", redact(err.Error()))
	for _, h := range hintsOf(err) {
		fmt.Fprintf(w, "rdctl: hint: %s\n", redact(h))
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var (
		usage    *usageError
		input    *deploy.InputError
		keyArg   *keys.ArgError
		needRoot *needRootError
	)
	switch {
	case errors.As(err, &usage), errors.As(err, &input), errors.As(err, &keyArg), errors.As(err, &needRoot):
		return exitUsage
	case errors.Is(err, safefs.ErrLocked):
		return exitLocked
	default:
		return exitFailed
	}
}
