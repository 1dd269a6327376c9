package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/proxyconf"
	"github.com/rdctl/rdctl/internal/systemd"
)

func proxyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "proxy",
		Usage:       "write the nginx or Caddy site that puts hbbs/hbbr's WebSocket ports behind TLS",
		ArgsUsage:   "nginx|caddy",
		Description: helpText("proxy"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "domain", Usage: "the DNS `NAME` clients use (not an IP: wss needs a name)"},
			&cli.StringFlag{Name: "cert", Usage: "certificate chain `FILE` (PEM); nginx needs it, Caddy obtains one itself without it"},
			&cli.StringFlag{Name: "cert-key", Usage: "the certificate's key `FILE` (PEM); named in the configuration, never read"},
			&cli.StringFlag{Name: "out", Usage: "write the configuration to `FILE` (atomically) instead of printing it"},
			&cli.BoolFlag{Name: "apply", Usage: "install it into the proxy's configuration, validate and reload the proxy"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runProxy(ctx, e, cmd) },
	}
}

// proxyJSON is proxy's --json document; with --out or --apply it carries
// the plan report.
type proxyJSON struct {
	*plan.Report
	Kind      proxyconf.Kind `json:"kind"`
	Domain    deploy.Domain  `json:"domain"`
	TLS       string         `json:"tls"`
	IDWSPort  deploy.Port    `json:"id_ws_port"`
	RelayPort deploy.Port    `json:"relay_ws_port"`
	Path      string         `json:"path,omitempty"`
	Config    string         `json:"config"`
	// Validated: the proxy's checker accepted it; Validation says what
	// ran, or why nothing did.
	Validated  bool     `json:"validated"`
	Validation string   `json:"validation"`
	Reloaded   bool     `json:"reloaded"`
	Recorded   bool     `json:"recorded"`
	Notes      []string `json:"notes"`
	Warnings   []string `json:"warnings"`
}

func runProxy(ctx context.Context, e *env, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return withHints(usageErrorf("proxy needs one argument: nginx or caddy"), "rdctl proxy nginx --domain rd.example.com --cert FILE --cert-key FILE")
	}
	kind, err := proxyconf.ParseKind("proxy", cmd.Args().First())
	if err != nil {
		return withHints(err, "rdctl proxy nginx|caddy --domain NAME")
	}
	out, apply := cmd.String("out"), cmd.Bool("apply")
	if out != "" && apply {
		return usageErrorf("--out and --apply contradict each other: --out writes a file for you to install, --apply installs it")
	}
	if !cmd.IsSet("domain") {
		return withHints(usageErrorf("--domain is required"), "rdctl proxy "+string(kind)+" --domain rd.example.com")
	}
	domain, err := deploy.ParseDomain("--domain", cmd.String("domain"))
	if err != nil {
		return err
	}
	site := proxyconf.Site{Kind: kind, Domain: domain}
	for _, f := range []struct {
		flag string
		dst  *deploy.AbsPath
	}{{"--cert", &site.Cert}, {"--cert-key", &site.CertKey}, {"--out", nil}} {
		v := cmd.String(f.flag[2:])
		if v == "" {
			continue
		}
		if err := refuseKeyPath(f.flag, v); err != nil {
			return err
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			return usageErrorf("%s: %v", f.flag, err)
		}
		p, err := deploy.ParseAbsPath(f.flag, abs)
		if err != nil {
			return err
		}
		if f.dst != nil {
			*f.dst = p
		} else {
			out = string(p)
		}
	}
	if err := site.Validate(); err != nil {
		return err
	}
	if out != "" {
		if err := checkExportTarget(out, false); err != nil {
			return err
		}
	}

	doc := proxyJSON{Kind: kind, Domain: domain, TLS: site.TLS(), Warnings: []string{}}
	rec, err := deploy.LoadRecord(e.recordPath())
	switch {
	case errors.Is(err, deploy.ErrNoRecord) && !apply:
		rec = nil
	case errors.Is(err, deploy.ErrNoRecord):
		return withHints(err, "--apply records the proxy in the deployment record: install first (rdctl install systemd --relay HOST) or record the server (rdctl adopt)")
	case err != nil:
		return err
	}
	site.IDWS, site.RelayWS = proxyconf.WSPorts()
	doc.IDWSPort, doc.RelayPort, doc.Notes = site.IDWS, site.RelayWS, site.Notes()
	data, err := site.Render()
	if err != nil {
		return err
	}
	doc.Config = string(data)

	// The certificate files: checked where the proxy will read them. In
	// an image tree they may come later (certbot at first boot).
	if site.Cert != "" {
		cert, key := e.under(string(site.Cert)), e.under(string(site.CertKey))
		_, cerr := os.Stat(cert)
		if e.root != "" && errors.Is(cerr, os.ErrNotExist) {
			doc.Warnings = append(doc.Warnings, "the certificate "+string(site.Cert)+" is not in the image tree: "+string(kind)+" will refuse to start until it is there")
		} else {
			w, err := proxyconf.CheckCertFiles(cert, key, domain, time.Now())
			if err != nil {
				return err
			}
			doc.Warnings = append(doc.Warnings, w...)
		}
	}

	if apply {
		return applyProxy(ctx, e, &doc, site, rec, data)
	}

	// Print or --out: validate the site on its own, when the proxy is here
	// to do it (the certificate paths are live ones, so not for an image).
	if e.root != "" && site.Cert != "" {
		doc.Validation = "not validated: the certificate paths are the image's (--root)"
	} else if err := validateStandalone(ctx, e, &doc, kind, data); err != nil {
		return err
	}
	if out == "" {
		if e.json {
			return writeJSON(e.stdout, doc)
		}
		e.printf("%s", data)
		e.proxyNotes(&doc)
		return nil
	}
	p := &plan.Plan{}
	p.Add(&plan.WriteFile{Path: out, Data: data, Options: proxyconf.FileOptions})
	rep, err := e.executeLocal(p)
	if err != nil {
		return err
	}
	doc.Report, doc.Path = &rep, out
	if e.json {
		return writeJSON(e.stdout, doc)
	}
	e.printReport(rep)
	if !rep.Changed && !rep.DryRun {
		e.printf("unchanged: %s already holds this configuration\n", out)
	}
	e.proxyNotes(&doc)
	return nil
}

// validateStandalone runs the proxy's checker on the site alone.
func validateStandalone(ctx context.Context, e *env, doc *proxyJSON, kind proxyconf.Kind, data []byte) error {
	if kind == proxyconf.Nginx && os.Geteuid() != 0 {
		// nginx -t opens the site's listening sockets (443, 80): only
		// root can, so as anyone else it would refuse a good site.
		doc.Validation = "not validated: nginx -t binds ports 443 and 80, which needs root"
		return nil
	}
	dir, err := os.MkdirTemp("", "rdctl-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := proxyconf.ExecRunner{Env: append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)}
	c, err := proxyconf.ValidateSite(ctx, r, kind, data, dir)
	if err != nil {
		return err
	}
	switch {
	case !c.Checked:
		doc.Validation = "not validated: " + kind.Program() + " is not installed here"
	case c.OK:
		doc.Validated, doc.Validation = true, "validated: "+c.Command+" accepted it"
	default:
		return withHints(&proxyconf.ValidationError{Command: c.Command, ExitCode: 1, Output: c.Output},
			"this is a bug in rdctl's template or a value "+kind.Program()+" cannot take; report it with the output above")
	}
	return nil
}

// applyProxy installs the site as a plan: files, validation, reload, and
// the record's [proxy] table.
func applyProxy(ctx context.Context, e *env, doc *proxyJSON, site proxyconf.Site, rec *deploy.Record, data []byte) error {
	layout := proxyconf.LayoutFor(site.Kind, site.Domain)
	doc.Path = e.under(layout.Site)
	var (
		runner   proxyconf.Runner
		reloader proxyconf.Reloader
	)
	switch {
	case e.root != "":
		doc.Validation = "not validated and not reloaded: an image tree (--root); the proxy loads it when the image boots"
	default:
		if _, err := (proxyconf.ExecRunner{}).LookPath(site.Kind.Program()); err != nil {
			doc.Validation = "not validated and not reloaded: " + site.Kind.Program() + " is not installed here"
		} else {
			runner, reloader = proxyconf.ExecRunner{}, dbusReloader{}
			doc.Validation = "validated with: " + joinArgs(layout.Validate)
		}
	}
	in := proxyconf.NewInstall(ctx, layout, data, e.under, runner, reloader)
	next := *rec
	next.Proxy = &deploy.ProxyRecord{Kind: string(site.Kind), Domain: string(site.Domain), TLS: site.TLS(), Config: layout.Site}
	recStep, err := deploy.RecordStep(e.recordPath(), &next)
	if err != nil {
		return err
	}
	p := e.newPlan(ctx, rec)
	p.Add(in.Steps()...)
	p.Add(recStep)
	rep, err := e.execute(p)
	if err != nil {
		var verr *proxyconf.ValidationError
		if errors.As(err, &verr) {
			return withHints(err, "nothing was reloaded; fix what "+site.Kind.Program()+" names and run rdctl proxy "+string(site.Kind)+" --apply again")
		}
		return err
	}
	doc.Report = &rep
	doc.Validated, doc.Reloaded, doc.Recorded = in.Validated, in.Reloaded, !rep.DryRun
	if runner != nil && rep.Changed && !rep.DryRun && !in.Running {
		doc.Warnings = append(doc.Warnings, layout.Unit+" is not running: start it (systemctl start "+layout.Unit+")")
	}
	if w := e.bridgeStackNote(ctx, &next); w != "" {
		doc.Warnings = append(doc.Warnings, w)
	}
	if e.json {
		return writeJSON(e.stdout, doc)
	}
	e.printReport(rep)
	if !rep.Changed && !rep.DryRun {
		e.printf("unchanged: %s already holds this configuration\n", doc.Path)
	}
	e.proxyNotes(doc)
	return nil
}

// bridgeStackNote says how to publish a bridge-network compose stack's
// WebSocket ports on loopback only, when its compose file does not yet:
// Docker's published ports pass the host firewall by, so firewall --proxy
// cannot shut them. The install reads the proxy from the record.
func (e *env) bridgeStackNote(ctx context.Context, rec *deploy.Record) string {
	if rec.Backend != deploy.BackendCompose || rec.Compose == nil || rec.Compose.Network != compose.NetworkBridge {
		return ""
	}
	if compose.FileIsRendered(ctx, e.root, rec) {
		return ""
	}
	return "the compose stack publishes the WebSocket ports on every address, and Docker's published ports pass the host firewall by: publish them on 127.0.0.1 only with " + compose.InstallCommand(rec)
}

// proxyNotes prints the warnings and notes of a proxy run on stderr.
func (e *env) proxyNotes(doc *proxyJSON) {
	for _, w := range doc.Warnings {
		e.warnf("%s", w)
	}
	if doc.Validation != "" {
		e.hintf("%s", doc.Validation)
	}
	for _, n := range doc.Notes {
		e.hintf("%s", n)
	}
}

func joinArgs(a []string) string {
	s := ""
	for i, w := range a {
		if i > 0 {
			s += " "
		}
		s += w
	}
	return s
}

// dbusReloader reloads the proxy's unit over systemd's D-Bus API.
type dbusReloader struct{}

func (dbusReloader) Reload(ctx context.Context, unit string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return false, err
	}
	defer m.Close()
	return m.ReloadIfActive(ctx, unit)
}
