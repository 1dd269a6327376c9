package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/export"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// exportFormatAll is the --format value that lays out a provisioning tree.
const exportFormatAll = export.FormatAll

// exportFile is one file of an export as --json lists it: export's files[],
// rotate's exported[].
type exportFile = export.File

func exportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "export",
		Usage:       "write the client configuration in every form RustDesk clients take",
		Description: helpText("export"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "output `FORMAT`: toml, server.conf, string, exe-name, exe-name-licensed, json, ps1, qr or all", Value: string(clientconf.FormatTOML)},
			&cli.StringFlag{Name: "out", Usage: "write to `PATH`: a file, a directory for --format all, or - for stdout (default)"},
			&cli.StringFlag{Name: "key", Usage: "the server's public `KEY` (44 characters of base64), instead of the one in the working directory"},
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` (default: the deployment record's)"},
			&cli.StringFlag{Name: "relay", Usage: "relay `HOST[:PORT]` (default: the deployment record's; '' for none)"},
			&cli.StringFlag{Name: "api", Usage: "API server `URL`, http:// or https:// (default: the deployment record's; '' for none)"},
			&cli.BoolFlag{Name: "staged", Usage: "export the next key staged by rdctl rotate --stage"},
			&cli.StringFlag{Name: "profile", Usage: "the client population `NAME`: public (the record's id_host), tailnet (its tailnet_host) or all (one tree each, --format all)"},
			&cli.BoolFlag{Name: "websocket", Usage: "clients use wss through the reverse proxy: allow-websocket and an https api-server (default: when the record has a [proxy])"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runExport(e, cmd) },
	}
}

// exportJSON is the --json document. The first five fields are those of the
// json format; more may be added, none renamed. dry_run, changed and steps
// are the plan's report, as every mutating command prints it.
type exportJSON struct {
	clientconf.JSONExport
	Staged bool `json:"staged"`
	plan.Report
	Files []exportFile `json:"files"`
	// Profiles are the client populations exported (--profile), each with
	// its ID server, relay and the check that verifies it.
	Profiles []exportProfileJSON `json:"profiles,omitempty"`
}

type exportProfileJSON struct {
	Profile string `json:"profile"`
	Host    string `json:"host"`
	Relay   string `json:"relay"`
	Dir     string `json:"dir,omitempty"`
	Check   string `json:"check"`
}

func runExport(e *env, cmd *cli.Command) error {
	format, out := cmd.String("format"), cmd.String("out")
	if err := refuseKeyPath("--out", out); err != nil {
		return err
	}
	toStdout := out == "" || out == "-"
	switch {
	case cmd.Args().Len() > 0:
		return withHints(usageErrorf("unexpected argument %s", textsafe.Echo(cmd.Args().First())), "write to a file or directory with --out PATH")
	case !export.ValidFormat(format):
		return withHints(usageErrorf("unknown --format %s", textsafe.Echo(format)), "use one of: "+strings.Join(export.FormatNames(), ", "))
	case format == exportFormatAll && toStdout:
		return withHints(usageErrorf("--format all writes a directory tree and needs --out DIR"), "rdctl export --format all --out DIR")
	case format == string(clientconf.FormatQR) && toStdout:
		return withHints(usageErrorf("--format qr is a PNG image and needs --out FILE"), "rdctl export --format qr --out rustdesk-qr.png")
	case e.json && out == "-":
		return usageErrorf("--json and --out - would both print on stdout; give --out PATH, or leave --out out to print only the JSON document")
	case cmd.Bool("staged") && cmd.IsSet("key"):
		return usageErrorf("--staged exports the staged key from the working directory; it cannot be combined with --key")
	}
	var profiles []export.Profile
	if cmd.IsSet("profile") {
		var err error
		if profiles, err = export.ParseProfile("--profile", cmd.String("profile")); err != nil {
			return err
		}
		switch {
		case cmd.IsSet("id-host") || cmd.IsSet("relay"):
			return usageErrorf("--profile takes the ID server and relay from the deployment record; it cannot be combined with --id-host or --relay")
		case len(profiles) > 1 && format != exportFormatAll:
			return withHints(usageErrorf("--profile all writes one tree per client population and needs --format all --out DIR"),
				"rdctl export --profile all --format all --out DIR")
		}
	}
	if toStdout {
		out = ""
	} else if err := checkExportTarget(out, format == exportFormatAll); err != nil {
		return err // before the record is read: a bad --out is exit 2 whatever else is wrong
	}
	src, err := e.exportSource(cmd)
	if err != nil {
		return err
	}
	var (
		cfg export.Config
		o   export.Output
		pcs []export.ProfileConfig
	)
	if profiles == nil {
		cfg, o, err = e.buildExport(src, format, out)
	} else {
		cfg, o, pcs, err = e.buildProfiles(src, profiles, format, out)
	}
	if err != nil {
		return err
	}
	if cfg.Server.AllowWebSocket && format != exportFormatAll && !clientconf.CarriesWebSocket(clientconf.Format(format)) {
		e.warnf("--format %s cannot carry allow-websocket: clients set up with it alone keep using the direct ports; turn WebSocket on separately (Settings > Network > Use WebSocket, or elevated: rustdesk --option allow-websocket Y), or give them --format toml", format)
	}
	doc := exportJSON{Staged: cfg.Staged, Report: plan.NewReport(nil, e.dryRun), Files: []exportFile{}}
	for _, pc := range pcs {
		pj := exportProfileJSON{Profile: string(pc.Profile), Host: pc.Config.Server.Host, Relay: pc.Config.Server.Relay, Check: "rdctl check " + pc.Config.CheckName}
		if format == exportFormatAll {
			pj.Dir = filepath.Join(out, string(pc.Profile))
		}
		doc.Profiles = append(doc.Profiles, pj)
	}
	if doc.JSONExport, err = cfg.JSON(); err != nil {
		return exportError(err)
	}
	switch {
	case toStdout && e.json:
		return writeJSON(e.stdout, doc) // the format was rendered and checked; the document replaces it
	case toStdout: // printing changes nothing, so there is no plan
		if _, err := e.stdout.Write(o.Files[0].Data); err != nil {
			return err
		}
		e.stagedHint(cfg)
		return nil
	}
	// Not e.execute: export writes only the operator's own files, so it takes
	// no lock and needs no root (its help says so).
	if doc.Report, err = export.Run(o.Steps, e.dryRun); err != nil {
		return err
	}
	export.SetChanged(o.Files, doc.Report)
	if doc.Files = o.Files; e.json {
		return writeJSON(e.stdout, doc)
	}
	e.printReport(doc.Report)
	switch {
	case e.dryRun:
	case !doc.Changed:
		e.printf("unchanged: %s already holds this configuration\n", out)
	case format == exportFormatAll:
		e.printf("exported the client configuration to %s\n", out)
	}
	if len(pcs) > 1 {
		for _, p := range doc.Profiles {
			e.printf("%s clients: %s (ID server %s; verify: %s)\n", p.Profile, p.Dir, p.Host, p.Check)
		}
		return nil
	}
	for _, l := range [][2]string{{"id server:  ", cfg.Server.Host}, {"relay:      ", cfg.Server.Relay},
		{"api server: ", cfg.Server.API}, {"public key: ", cfg.Server.Key}, {"fingerprint:", cfg.Fingerprint},
		{"websocket:  ", map[bool]string{true: "allow-websocket = 'Y' (wss through " + string(cfg.ProxyDomain) + ")"}[cfg.Server.AllowWebSocket]}} {
		if l[1] != "" { // no relay, no API server
			e.printf("%s %s\n", l[0], l[1])
		}
	}
	e.stagedHint(cfg)
	return nil
}

func (e *env) stagedHint(cfg export.Config) {
	if cfg.Staged {
		e.hintf("this is the staged key; switch the server to it when clients have it: rdctl rotate --commit")
	}
}

// checkExportTarget refuses an --out that rdctl would not replace: a
// symlink, or anything but a regular file (a directory for --format all).
func checkExportTarget(out string, dir bool) error {
	return exportError(export.CheckTarget(out, dir))
}

// exportSource turns the flags into export.Given, validating each (a bad
// value is exit 2 whatever the record says), and resolves the rest from
// the deployment record and the working directory's key.
func (e *env) exportSource(cmd *cli.Command) (export.Source, error) {
	g := export.Given{Staged: cmd.Bool("staged")}
	if cmd.IsSet("id-host") {
		hp, err := deploy.ParseHostPort("--id-host", cmd.String("id-host"))
		if err != nil {
			return export.Source{}, err
		}
		g.ID = &hp
	}
	if cmd.IsSet("relay") {
		g.Relay = &deploy.HostPort{} // '' is no relay
		if v := cmd.String("relay"); v != "" {
			hp, err := deploy.ParseHostPort("--relay", v)
			if err != nil {
				return export.Source{}, err
			}
			g.Relay = &hp
		}
	}
	if cmd.IsSet("api") {
		api, err := export.ParseAPI("--api", cmd.String("api"))
		if err != nil {
			return export.Source{}, err
		}
		g.API = &api
	}
	if cmd.IsSet("key") {
		k, pub, err := keys.ParsePublicArg("--key", cmd.String("key"))
		if err != nil {
			return export.Source{}, err
		}
		g.Key = &export.PublicKey{Key: k, Fingerprint: keys.Fingerprint(pub)}
	}
	rec, err := e.loadRecord()
	if errors.Is(err, deploy.ErrNoRecord) && !g.Staged {
		rec, err = nil, nil // the flags may give all the export needs
	}
	if err != nil {
		return export.Source{}, err
	}
	if g.Key != nil {
		pub, _ := base64.StdEncoding.DecodeString(g.Key.Key)
		if err := e.refuseSeedAsKey("--key", rec, pub); err != nil {
			return export.Source{}, err
		}
	}
	src, err := e.resolveExport(g, rec)
	if err != nil {
		return src, err
	}
	var ws *bool
	if cmd.IsSet("websocket") {
		v := cmd.Bool("websocket")
		ws = &v
	}
	return src, e.proxyExport(&src, rec, ws)
}

// proxyExport sets src up for WebSocket clients of the reverse proxy
// (export.Source.ForProxy) when the record has a [proxy] table, or when
// websocket (--websocket) says so; --websocket=false turns it off.
func (e *env) proxyExport(src *export.Source, rec *deploy.Record, websocket *bool) error {
	on := rec != nil && rec.Proxy != nil
	if websocket != nil {
		on = *websocket
	}
	if !on {
		if rec != nil && rec.Proxy != nil {
			e.debugf("the deployment is behind %s at %s; exporting without WebSocket (--websocket=false)", rec.Proxy.Kind, rec.Proxy.Domain)
		}
		return nil
	}
	var domain deploy.Domain
	if rec != nil && rec.Proxy != nil {
		domain = deploy.Domain(rec.Proxy.Domain)
	} else {
		d, err := deploy.ParseDomain("--websocket", string(src.ID.Host))
		if err != nil {
			return withHints(&deploy.InputError{Field: "--id-host", Value: string(src.ID.Host), Reason: "is an IP address: clients use wss through a proxy only for a DNS name"},
				"rdctl export --websocket --id-host NAME")
		}
		domain = d
	}
	warnings, err := src.ForProxy(domain)
	if err != nil {
		return withHints(err, "give clients the proxy's name: rdctl export --id-host "+string(domain)+" (and --relay '' or --relay "+string(domain)+")")
	}
	for _, w := range warnings {
		e.warnf("%s", w)
	}
	return nil
}

// resolveExport is export.Resolve, with hints that say what to do when the
// record or the key is missing.
func (e *env) resolveExport(g export.Given, rec *deploy.Record) (export.Source, error) {
	wd, sd := "", ""
	if rec != nil {
		wd, sd = e.under(rec.WorkingDir), e.stateDir(rec)
	}
	src, err := export.Resolve(g, rec, e.recordPath(), wd, sd)
	var (
		missing  *export.MissingError
		pending  *export.PendingRotationError
		noStaged *export.NoStagedKeyError
		dirErr   *export.KeyDirError
		invalid  *export.InvalidKeyError
	)
	switch {
	case errors.As(err, &missing):
		return src, withHints(usageErrorf("no deployment record at %s: give --key KEY and --id-host HOST[:PORT]", e.recordPath()),
			"or export from an installed server: rdctl --root DIR export, rdctl --config FILE export",
			"record an existing server with: rdctl adopt")
	case errors.As(err, &pending):
		return src, withHints(err, "finish or roll it back first: rdctl rotate --resume")
	case errors.As(err, &noStaged):
		return src, withHints(err, "stage the next key first: rdctl rotate --stage", "or export the live key: leave out --staged")
	case errors.As(err, &dirErr):
		return src, withHints(err, "or give the public key: rdctl export --key KEY")
	case errors.As(err, &invalid):
		return src, withHints(err, "rdctl key verify --dir "+wd)
	}
	if err == nil && src.PubFileDisagrees {
		e.warnf("%s does not agree with %s; exporting the key hbbs serves, derived from the secret", keys.PublicFile, keys.SecretFile)
	}
	return src, err
}

// buildExport validates src as clients are given it, renders format (and
// so checks it) and plans its writes to out ("" for stdout).
func (e *env) buildExport(src export.Source, format, out string) (export.Config, export.Output, error) {
	cfg, err := src.Config()
	if err != nil {
		return cfg, export.Output{}, exportError(err)
	}
	if len(src.ServerRelays) > 1 && cfg.Server.Relay == "" {
		e.hintf("no relay is given to clients: hbbs hands out its %d relays (%s) in turn, and a relay in a client's own settings would come first and pin it to one",
			len(src.ServerRelays), deploy.JoinRelays(src.ServerRelays))
	}
	if cfg.RelayDerived {
		e.debugf("relay %s left out: clients derive it from the ID server %s", export.HostPort(src.Relay), cfg.Server.Host)
	}
	o, err := cfg.Build(format, out)
	if o.LicensedOnly != "" {
		e.debugf("installer-name.txt holds the licensed name only: %s", o.LicensedOnly)
	}
	return cfg, o, exportError(err)
}

// buildProfiles is buildExport for each client population asked
// (--profile): one configuration each, one tree each in out/<profile>/ with
// --format all, else the one profile's format.
func (e *env) buildProfiles(src export.Source, profiles []export.Profile, format, out string) (export.Config, export.Output, []export.ProfileConfig, error) {
	var pcs []export.ProfileConfig
	for _, p := range profiles {
		ps, err := src.ForProfile(p, e.recordPath())
		var noTailnet *export.NoTailnetHostError
		if errors.As(err, &noTailnet) {
			return export.Config{}, export.Output{}, nil, withHints(usageErrorf("%v", err),
				"record the server's tailnet name: rdctl install systemd|compose … --tailnet-host NAME, or export the public profile only")
		}
		if err != nil {
			return export.Config{}, export.Output{}, nil, err
		}
		cfg, err := ps.Config()
		if err != nil {
			return export.Config{}, export.Output{}, nil, exportError(err)
		}
		pcs = append(pcs, export.ProfileConfig{Profile: p, Config: cfg})
	}
	if format != exportFormatAll {
		cfg, o, err := e.buildExport(mustProfile(src, profiles[0], e.recordPath()), format, out)
		return cfg, o, pcs, err
	}
	o, err := export.BuildProfiles(pcs, out)
	return pcs[0].Config, o, pcs, exportError(err)
}

// mustProfile is src for profile p, which buildProfiles has already
// derived once without error.
func mustProfile(src export.Source, p export.Profile, recordPath string) export.Source {
	ps, _ := src.ForProfile(p, recordPath)
	return ps
}

// exportRecordTree writes the provisioning tree (--format all) for the
// record's live or staged key into dir: what rotate --export does.
func (e *env) exportRecordTree(rec *deploy.Record, dir string, staged bool) ([]exportFile, error) {
	if err := checkExportTarget(dir, true); err != nil {
		return nil, err
	}
	src, err := e.resolveExport(export.Given{Staged: staged}, rec)
	if err != nil {
		return nil, err
	}
	if err := e.proxyExport(&src, rec, nil); err != nil {
		return nil, err
	}
	_, o, err := e.buildExport(src, exportFormatAll, dir)
	if err != nil {
		return nil, err
	}
	rep, err := export.Run(o.Steps, e.dryRun) // under the lock rotate holds
	export.SetChanged(o.Files, rep)
	return o.Files, err
}

// exportError words export's and clientconf's typed errors: a refused
// --out and values that cannot be expressed are bad input (exit 2); a
// round-trip mismatch is a bug in rdctl (exit 1).
func exportError(err error) error {
	var (
		target   *export.TargetError
		fileName *clientconf.FileNameError
		invalid  *clientconf.ValidationError
		mismatch *clientconf.MismatchError
	)
	switch {
	case errors.As(err, &target):
		return exportTargetError(target)
	case errors.As(err, &fileName):
		return withHints(usageErrorf("%v", err),
			"the licensed installer name carries any configuration: rdctl export --format exe-name-licensed")
	case errors.As(err, &invalid):
		return usageErrorf("cannot export: %v", err)
	case errors.As(err, &mismatch):
		return fmt.Errorf("internal error: %w; nothing was written, please report this with the command you ran", err)
	}
	return err
}

// exportTargetError says why --out is refused, in the words of the flag.
func exportTargetError(te *export.TargetError) error {
	out := te.Path
	switch te.Problem {
	case export.TargetNoParent:
		return withHints(usageErrorf("--out %s: the directory %s does not exist", textsafe.Echo(out), textsafe.Echo(filepath.Dir(out))), "create it first, or write elsewhere")
	case export.TargetSymlink:
		return withHints(usageErrorf("--out %s is a symbolic link; rdctl never writes through one", textsafe.Echo(out)), "give the path it points to")
	case export.TargetNotDir:
		return usageErrorf("--out %s is not a directory; --format all lays out a tree in a directory", textsafe.Echo(out))
	case export.TargetIsDir:
		return withHints(usageErrorf("--out %s is a directory; one format is written to a file", textsafe.Echo(out)),
			"give a file name, or lay out every format there: rdctl export --format all --out "+out)
	}
	return usageErrorf("--out %s is not a regular file; use --out - for stdout", textsafe.Echo(out))
}
