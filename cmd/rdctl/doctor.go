package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/plan"
)

func doctorCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "find what breaks or weakens the server, and repair what is safe to repair",
		Description: `Runs the troubleshooting table as checks:
  secret-key, secret-mode, secret-owner   id_ed25519 valid, 0600, owned by the service user
  hbbs-enforces-key     hbbs enforces the key in id_ed25519 (halves that disagree, a
                        directory or non-UTF-8 content make it start and check nothing)
  public-key-file       id_ed25519.pub present and agreeing with the secret (hbbs never reads it)
  working-dir-mode      nobody but the owner can write to the working directory
  backups-private, staged-private   backups/ and staged/ 0700 and owned by root, so the
                        service user cannot read old or next keys
  rotation-journal      no interrupted rotation left behind
  duplicate-keys        no other key pair in /root, /data, /var/lib/rustdesk-server,
                        /opt/rustdesk, ... (names which one is served)
  units-installed, units-as-written, record-matches-units   the units exist, are as
                        rdctl wrote them, and run in the recorded working directory
  service-user          hbbs and hbbr do not run as root
  hbbr-enforces-key     hbbr runs with -k (or KEY), so not anyone can relay
  key-not-from-file, secret-exposed, split-working-dirs, ...   other unsafe settings
  relay-resolves        the relay host resolves (hbbs drops one that does not); syntax
                        only with --root
  units-running, units-restarting, ports-listening   live only: both units active, no
                        restarts, tcp 21115-21119 and udp 21116 open
  containers-running, containers-restarting, data-mounted   live, compose backend: the
                        hbbs and hbbr containers running, no restarts, and hbbs's
                        working directory mounted from the recorded working directory,
                        which holds id_ed25519

--fix repairs only what is safe: file modes and owners, a missing or disagreeing
.pub rewritten from the secret, the mode and owner of backups/ and staged/. Each
change goes through rdctl's atomic, no-follow file layer and is reported; the
secret key's bytes are never changed. The repairs are a plan of "fix" steps
(after finishing an interrupted rotation), each looking at the files again
before it changes them; it stops at the first that fails. --fix takes the lock
and needs root unless --root is given; --dry-run --fix says what it would
repair and changes nothing.

Exits 0 when no check fails with an error or a warning (after fixing, with
--fix), 1 otherwise.

JSON (--json): ok, problems, root, fixed[] with id, change, error; checks[] with
id, ok, severity (error|warning|info), message, fixable, skipped. With --fix
also the plan: dry_run, changed, steps[] with action, target (the check's ID),
before (the problem), after (the change), changed.

Examples:
  rdctl doctor
  rdctl doctor --fix
  rdctl --json doctor
  rdctl --root ./image doctor --fix`,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "fix", Usage: "repair what is safe to repair (modes, owners, .pub)"}},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runDoctor(ctx, e, cmd.Bool("fix")) },
	}
}

// doctorJSON is doctor's output. With --fix it carries the fixes' plan
// report (dry_run, changed, steps: one "fix" step per fixable problem,
// target the check's ID); without, doctor only reads and has no plan.
type doctorJSON struct {
	*plan.Report
	OK       bool               `json:"ok"`
	Problems int                `json:"problems"`
	Root     string             `json:"root,omitempty"`
	Fixed    []doctor.FixResult `json:"fixed"`
	Checks   []doctor.Check     `json:"checks"`
}

// doctorInput gathers what the checks look at: files always, unit states
// and sockets only on a live host.
func (e *env) doctorInput(ctx context.Context, rec *deploy.Record) doctor.Input {
	in := doctor.Input{Root: e.root, Record: rec, Accounts: doctor.Accounts{Root: e.root}, BackupOwner: e.backupOwner()}
	if e.root != "" {
		return in
	}
	switch rec.Backend {
	case deploy.BackendSystemd:
		in.Units, in.UnitsErr = liveUnitStates(ctx, []string{rec.HBBSUnit, rec.HBBRUnit})
	case deploy.BackendCompose:
		in.Containers, in.ContainersErr = inspectStack(ctx, rec)
	}
	in.Listeners, in.ListenersErr = doctor.ReadListeners("/proc")
	return in
}

func runDoctor(ctx context.Context, e *env, fix bool) error {
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	in := e.doctorInput(ctx, rec)
	checks := doctor.Run(ctx, in)
	out := doctorJSON{Root: e.root, Fixed: []doctor.FixResult{}}
	var fixErr *doctor.FixError
	if fix {
		p := e.newPlan(ctx, rec)
		p.Add(doctor.FixPlan(in, checks)...)
		rep, err := e.execute(p)
		// A fix that fails is reported with the checks (the problem
		// stays, so doctor exits 1); anything else stops here.
		if err != nil && !errors.As(err, &fixErr) {
			return err
		}
		out.Report, out.Fixed = &rep, doctor.Fixed(rep, err)
		if !rep.DryRun {
			checks = doctor.Run(ctx, e.doctorInput(ctx, rec))
		}
	}
	out.Checks, out.Problems = checks, doctor.Problems(checks)
	out.OK = out.Problems == 0
	if e.json {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
		if !out.OK {
			return &checkFailedError{}
		}
		return nil
	}
	if out.Report != nil {
		printFixes(e, *out.Report)
	}
	if fixErr != nil {
		fmt.Fprintf(e.stderr, "rdctl: error: %s\n", redact(fixErr.Error()))
	}
	printChecks(e, checks)
	if out.OK {
		e.printf("no problems\n")
		return nil
	}
	fmt.Fprintf(e.stderr, "rdctl: error: %d problem%s found\n", out.Problems, map[bool]string{true: "", false: "s"}[out.Problems == 1])
	if n := fixable(checks); n > 0 && !fix {
		e.hintf("%d of them can be repaired safely: rdctl doctor --fix", n)
	}
	return &checkFailedError{}
}

// printFixes prints the fix plan's report in doctor's words: the problem a
// dry run would fix, the change a real run made.
func printFixes(e *env, r plan.Report) {
	for _, s := range r.Steps {
		switch {
		case !s.Changed:
		case s.Action == doctor.FixAction && r.DryRun:
			e.printf("would fix %s: %s\n", s.Target, s.Before)
		case s.Action == doctor.FixAction:
			e.printf("fixed %s: %s\n", s.Target, s.After)
		case r.DryRun:
			e.printf("would %s %s\n", s.Action, s.Target)
		default:
			e.printf("%s %s\n", pastTense(s.Action), s.Target)
		}
	}
}

// printChecks prints the table (with -q only the problems).
func printChecks(e *env, checks []doctor.Check) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	for _, c := range checks {
		if e.quiet && !c.Problem() {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", doctorMark(c), c.ID, c.Message)
	}
	tw.Flush()
}

func fixable(checks []doctor.Check) int {
	n := 0
	for _, c := range checks {
		if c.Problem() && c.Fixable {
			n++
		}
	}
	return n
}

// doctorMark is the first column of a check's line.
func doctorMark(c doctor.Check) string {
	switch {
	case c.Skipped:
		return "skip"
	case c.OK:
		return "ok"
	case c.Severity == doctor.SeverityError:
		return "FAIL"
	case c.Severity == doctor.SeverityWarning:
		return "WARN"
	default:
		return "info"
	}
}
