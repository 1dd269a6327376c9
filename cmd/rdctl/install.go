package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/systemd"
)

func installCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "install",
		Usage:       "install hbbs and hbbr as systemd units or a compose stack",
		Description: helpText("install"),
		Action:      groupAction,
		Commands:    []*cli.Command{installSystemdCommand(e), installComposeCommand(e), installExporterCommand(e)},
	}
}

func installSystemdCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "systemd",
		Usage:       "install hardened hbbs.service and hbbr.service",
		Description: helpText("install-systemd"),
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "relay", Usage: "relay `HOST[:PORT]` hbbs advertises (-r); several as a comma list or repeated, handed to clients in turn; with --tailnet-only, default: this host's MagicDNS name"},
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` clients are configured with (default: the first relay's host); one name, not a list"},
			&cli.StringFlag{Name: "tailnet-host", Usage: "the ID server `HOST[:PORT]` tailnet clients are configured with, when the server also has a public name (--id-host): rdctl export --profile tailnet"},
			&cli.StringFlag{Name: "bind", Usage: "bind hbbs and hbbr to `ADDR` (-b, hbbs 1.1.17+)"},
			&cli.BoolFlag{Name: "tailnet-only", Usage: "allow only localhost and tailnet addresses"},
			&cli.StringFlag{Name: "binaries", Usage: "release `ZIP|DIR` with <arch>/hbbs and <arch>/hbbr"},
			&cli.StringFlag{Name: "arch", Usage: "release architecture `NAME` (amd64, arm64v8, armv7, i386)", Value: systemd.HostReleaseArch()},
			&cli.StringFlag{Name: "sha256", Usage: "refuse --binaries unless its SHA-256 is `HEX` (the zip, or hbbs in a directory)"},
			&cli.BoolFlag{Name: "no-start", Usage: "live install: enable the units but do not start them"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if len(cmd.StringSlice("relay")) == 0 {
				if !cmd.Bool("tailnet-only") {
					return withHints(usageErrorf("--relay is required"), "name it: rdctl install systemd --relay HOST, or use --tailnet-only on a host in a tailnet")
				}
				name, err := tailnetRelayDefault(ctx, e.tsSocket)
				if err != nil {
					return err
				}
				cmd.Set("relay", name)
				e.printf("relay: %s (this host's tailnet name)\n", name)
			}
			rec, err := recordFromInstallFlags(cmd)
			if err != nil {
				return err
			}
			return runInstallSystemd(ctx, e, cmd, rec)
		},
	}
}

// recordFromInstallFlags validates every flag into a deployment record
// before anything is planned.
func recordFromInstallFlags(cmd *cli.Command) (*deploy.Record, error) {
	relays, idHost, err := relaysAndIDHost(cmd)
	if err != nil {
		return nil, err
	}
	tailnetHost, err := tailnetHostFlag(cmd)
	if err != nil {
		return nil, err
	}
	r := &deploy.Record{
		Format: 1, Backend: deploy.BackendSystemd, Origin: "rdctl",
		IDHost: idHost.String(), Relay: deploy.JoinRelays(relays), TailnetHost: tailnetHost,
		TailnetOnly: cmd.Bool("tailnet-only"),
		WorkingDir:  deploy.DefaultWorkingDir, BinDir: deploy.DefaultBinDir, ServiceUser: deploy.DefaultServiceUser,
		HBBSUnit: deploy.DefaultHBBSUnit, HBBRUnit: deploy.DefaultHBBRUnit, HBBREnforcesKey: true,
	}
	if s := cmd.String("bind"); s != "" {
		ip, err := deploy.ParseBindAddr("--bind", s)
		if err != nil {
			return nil, err
		}
		r.Bind = ip.String()
	}
	if a := cmd.String("arch"); a != "" {
		if _, err := deploy.ParseUserName("--arch", a); err != nil { // same character set
			return nil, err
		}
	}
	return r, r.Validate()
}

// relaysAndIDHost validates --relay (a list) and --id-host (one name; the
// first relay's host by default).
func relaysAndIDHost(cmd *cli.Command) ([]deploy.HostPort, deploy.HostPort, error) {
	relays, err := deploy.ParseRelays("--relay", cmd.StringSlice("relay")...)
	if err != nil {
		return nil, deploy.HostPort{}, err
	}
	idHost := deploy.HostPort{Host: relays[0].Host}
	if s := cmd.String("id-host"); s != "" {
		if idHost, err = parseIDHost("--id-host", s); err != nil {
			return nil, deploy.HostPort{}, err
		}
	}
	return relays, idHost, nil
}

// tailnetHostFlag validates --tailnet-host: one name, as --id-host.
func tailnetHostFlag(cmd *cli.Command) (string, error) {
	s := cmd.String("tailnet-host")
	if s == "" {
		return "", nil
	}
	hp, err := parseIDHost("--tailnet-host", s)
	if err != nil {
		return "", err
	}
	return hp.String(), nil
}

// parseIDHost is one ID server. A comma list is refused with why: a
// RustDesk client takes exactly one ID server and does not try a list in
// order (a comma in custom-rendezvous-server is not split), so a server
// reached by a public and a tailnet name needs one client configuration
// per population.
func parseIDHost(field, s string) (deploy.HostPort, error) {
	if strings.Contains(s, ",") {
		return deploy.HostPort{}, withHints(&deploy.InputError{Field: field, Value: s,
			Reason: "is a list, but a RustDesk client takes exactly one ID server: it does not try a comma list in order"},
			"give the public name as --id-host and the tailnet name as --tailnet-host, then hand each client population its own configuration: rdctl export --profile public|tailnet|all")
	}
	return deploy.ParseHostPort(field, s)
}

type installJSON struct {
	plan.Report
	Root        string `json:"root"`
	PublicKey   string `json:"public_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Record      string `json:"record"`
	Started     bool   `json:"started"`
	ServingMS   int64  `json:"serving_ms,omitempty"`
}

// loadBinaries validates --binaries, --arch and --sha256 into the release
// to install, or nil.
func loadBinaries(cmd *cli.Command) (*systemd.Binaries, error) {
	src := cmd.String("binaries")
	if src == "" {
		if cmd.String("sha256") != "" {
			return nil, usageErrorf("--sha256 pins the --binaries file; give --binaries too")
		}
		return nil, nil
	}
	var mismatch *systemd.HashMismatchError
	if err := systemd.CheckSHA256(src, cmd.String("sha256")); errors.As(err, &mismatch) {
		return nil, withHints(err, "check the download; RustDesk publishes no checksums, so pin the hash of a copy you trust")
	} else if err != nil {
		return nil, err
	}
	b, err := systemd.LoadBinaries(src, cmd.String("arch"))
	if err != nil {
		return nil, withHints(err, "pass a release zip such as rustdesk-server-linux-amd64.zip, or a directory holding hbbs and hbbr")
	}
	return b, nil
}

func runInstallSystemd(ctx context.Context, e *env, cmd *cli.Command, rec *deploy.Record) error {
	start := time.Now()
	bins, err := loadBinaries(cmd)
	if err != nil {
		return err
	}
	opts := systemd.InstallOptions{Root: e.root, Record: rec, RecordPath: e.recordPath(), Binaries: bins, KeyOwner: currentOwner()}
	if e.root == "" {
		// A live install: root, a server version that has the flags asked
		// for, and the service user made in the plan, from the same
		// sysusers.d entry an image gets.
		if err := e.requireRoot(); err != nil {
			return err
		}
		if err := checkServerVersion(ctx, rec, bins); err != nil {
			return err
		}
		opts.CreateUser = ctx
	}
	ip, ensure, err := systemd.InstallPlan(opts)
	if err != nil {
		return err
	}
	p := e.newPlan(ctx, rec)
	p.Add(ip.Steps()...)
	var activate *systemd.Activate
	if e.root == "" {
		if activate, err = activateStep(ctx, e, rec, ip, cmd.Bool("no-start")); err != nil {
			return err
		}
		p.Add(activate)
	}
	rep, err := e.execute(p)
	out := installJSON{Report: rep, Root: e.root, Record: e.recordPath()}
	if activate != nil && activate.Enabled && activate.NoStart && !e.json {
		e.printf("enabled %s; not started (--no-start)\n", activate.Target())
	}
	if err != nil {
		e.printReport(rep)
		return withHints(activateHints(err, rec), "nothing after the failing step was changed; fix it and run the same command again")
	}
	if e.root == "" && !e.dryRun && !cmd.Bool("no-start") {
		out.Started = true
		out.ServingMS = time.Since(start).Milliseconds()
	}
	if !e.dryRun {
		out.PublicKey, out.Fingerprint = publicKeyIn(ensure.Dir)
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	e.printReport(rep)
	switch {
	case e.dryRun:
	case !out.Changed && e.root != "":
		e.printf("unchanged: the image tree at %s is already as requested\n", e.root)
	case !out.Changed:
		e.printf("unchanged: hbbs and hbbr are installed as requested\n")
	case e.root != "":
		e.printf("installed into %s\n", e.root)
	default:
		e.printf("installed hbbs and hbbr\n")
	}
	if out.Started {
		e.printf("serving: both units active and hbbs answering, %d ms after rdctl started\n", out.ServingMS)
	}
	if out.PublicKey != "" {
		e.printf("public key:  %s\nfingerprint: %s\n", out.PublicKey, out.Fingerprint)
		if ensure.Generated {
			e.hintf("give clients this key: %s", e.commandLine("export --format toml"))
		}
	}
	if bins == nil && !e.dryRun && e.root != "" {
		e.warnf("no --binaries given: put hbbs and hbbr in %s before booting the image", e.under(rec.BinDir))
	}
	return nil
}

func pastTense(action string) string {
	switch action {
	case "write":
		return "wrote"
	case "link":
		return "linked"
	case "create directory":
		return "created directory"
	case "generate a key pair in":
		return "generated a key pair in"
	case "keep the key and repair files in":
		return "kept the key and repaired files in"
	case "back up the key in":
		return "backed up the key in"
	case "remove":
		return "removed"
	case "stop and disable":
		return "stopped and disabled"
	case "reload":
		return "reloaded"
	case "delete the key pair in":
		return "deleted the key pair in"
	case "rotate the key in":
		return "rotated the key in"
	case "switch to the staged key in":
		return "switched to the staged key in"
	case "restore the key from":
		return "restored the key from"
	case "stage the next key in":
		return "staged the next key in"
	case "export the client configuration to":
		return "exported the client configuration to"
	case "create the system user":
		return "created the system user"
	case "finish or roll back the interrupted rotation in":
		return "finished or rolled back the interrupted rotation in"
	}
	return fmt.Sprintf("%s:", action)
}
