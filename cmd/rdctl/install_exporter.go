package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/exporter"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/systemd"
	"github.com/rdctl/rdctl/internal/textsafe"
)

func installExporterCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "exporter",
		Usage:       "install a hardened rdctl-exporter.service and an example scrape config",
		Description: helpText("install-exporter"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Usage: "the exporter listens on `ADDR`", Value: exporter.DefaultListen},
			&cli.BoolFlag{Name: "no-start", Usage: "live: enable the unit but do not start it"},
			&cli.StringFlag{Name: "binary", Usage: "rdctl's absolute `PATH` on the target (default: this rdctl; in an image the first of /usr/bin, /usr/local/bin, /usr/sbin, /usr/local/sbin that has it)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() > 0 {
				return usageErrorf("install exporter takes no arguments")
			}
			return runInstallExporter(ctx, e, cmd.String("listen"), cmd.String("binary"), cmd.IsSet("binary"), cmd.Bool("no-start"))
		},
	}
}

type installExporterJSON struct {
	plan.Report
	Root         string `json:"root"`
	Unit         string `json:"unit"`
	ScrapeConfig string `json:"scrape_config"`
}

func runInstallExporter(ctx context.Context, e *env, listen, binary string, binarySet, noStart bool) error {
	if err := checkListen(listen); err != nil {
		return err
	}
	if !binarySet {
		var found bool
		binary, found = systemd.ExporterBinary(e.root, os.Executable)
		if !found {
			e.warnf("no rdctl in %s: the unit runs %s; put rdctl there, or say where with --binary", orImage(e.root, strings.Join(systemd.RdctlPaths, ", ")), binary)
		}
	}
	if !filepath.IsAbs(binary) || filepath.Clean(binary) != binary {
		return usageErrorf("--binary %s: want a clean absolute path", textsafe.Echo(binary))
	}
	if err := refuseKeyPath("--binary", binary); err != nil {
		return err
	}
	if binarySet && !systemd.BinaryPresent(e.root, binary) {
		if e.root == "" {
			// The unit would fail at every start (203/EXEC).
			return withHints(usageErrorf("--binary %s: no such file on this host", textsafe.Echo(binary)), "leave --binary out to use this rdctl")
		}
		e.warnf("--binary %s is not in the image yet: the unit fails to start until it is", textsafe.Echo(binary))
	}
	rec, err := e.loadRecord()
	switch {
	case errors.Is(err, deploy.ErrNoRecord):
		rec = nil
		e.warnf("no deployment record: the exporter will expect no key (give modules a key with --modules later)")
	case err != nil:
		return err
	}
	spec := systemd.ExporterSpecFromRecord(rec, binary, listen)
	p := e.newPlan(ctx, rec)
	for _, s := range systemd.ExporterPlan(e.root, spec).Steps() {
		p.Add(s)
	}
	var activate *systemd.ActivateExporter
	if e.root == "" && !noStart {
		activate = &systemd.ActivateExporter{Ctx: ctx, Changed: p.ChangedSoFar}
		p.Add(activate)
	}
	rep, err := e.execute(p)
	out := installExporterJSON{Report: rep, Root: e.root, Unit: systemd.ExporterUnitName, ScrapeConfig: systemd.ExporterScrapeConfigPath}
	if e.json {
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	} else {
		e.printReport(rep)
	}
	var start *systemd.StartError
	switch {
	case errors.As(err, &start):
		return withHints(err, "see why: journalctl -u "+systemd.ExporterUnitName)
	case errors.Is(err, systemd.ErrNoSystemd):
		return withHints(err, "is this host booted with systemd? --no-start writes the files only; --root DIR builds an image")
	case err != nil:
		return err
	}
	if e.json || e.dryRun {
		return nil
	}
	switch {
	case activate != nil:
		e.printf("%s is running; add the jobs in %s to prometheus.yml\n", systemd.ExporterUnitName, systemd.ExporterScrapeConfigPath)
	case e.root == "":
		e.printf("add the jobs in %s to prometheus.yml; start it: systemctl daemon-reload && systemctl start %s\n", systemd.ExporterScrapeConfigPath, systemd.ExporterUnitName)
	default:
		e.printf("add the jobs in %s to prometheus.yml\n", systemd.ExporterScrapeConfigPath)
	}
	return nil
}

// orImage names where something was looked for: the host's paths, or the
// image's under root.
func orImage(root, paths string) string {
	if root == "" {
		return paths
	}
	return "the image at " + root + " (" + paths + ")"
}
