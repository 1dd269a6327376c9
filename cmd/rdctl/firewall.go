package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/firewall"
	"github.com/rdctl/rdctl/internal/plan"
)

func firewallCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "firewall",
		Usage:       "print or apply the firewall rules that admit the server's ports",
		Description: helpText("firewall"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "apply", Usage: "run the commands"},
			&cli.BoolFlag{Name: "remove", Usage: "remove the rules --apply added (idempotent)"},
			&cli.StringFlag{Name: "backend", Usage: "firewall `NAME`: ufw, firewalld or nftables (default: detected)"},
			&cli.BoolFlag{Name: "tailnet-only", Usage: "admit the ports only on tailscale0"},
			&cli.BoolFlag{Name: "proxy", Usage: "a reverse proxy fronts the WebSocket ports: admit them on loopback only (default: the record's [proxy])"},
			&cli.BoolFlag{Name: "print-script", Usage: "print only the nftables script"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runFirewall(ctx, e, cmd) },
	}
}

type firewallCommandJSON struct {
	Argv  []string `json:"argv"`
	Stdin string   `json:"stdin,omitempty"`
	Shell string   `json:"shell"`
}

// firewallJSON is firewall's output; with --apply it carries the plan
// report (dry_run, changed, steps: one "run" step per command).
type firewallJSON struct {
	*plan.Report
	Backend     firewall.Backend      `json:"backend"`
	Reason      string                `json:"reason"`
	TailnetOnly bool                  `json:"tailnet_only"`
	Proxy       bool                  `json:"proxy"`
	Applied     bool                  `json:"applied"`
	Removed     bool                  `json:"removed,omitempty"`
	Commands    []firewallCommandJSON `json:"commands"`
	Results     []firewall.Result     `json:"results,omitempty"`
	// PortRulesLeft are firewalld port rules of the default zone that
	// admit rdctl's ports (--remove) or the loopback-only WebSocket ports
	// (--apply --proxy), which rdctl leaves alone: see portRulesHint.
	PortRulesLeft []string `json:"port_rules_left,omitempty"`
	// OthersRules are ufw rules without rdctl's comment that already
	// admit what an add of rdctl's would have (--apply): the add did not
	// run, so the rule stays someone else's.
	OthersRules []string `json:"others_rules,omitempty"`
}

// portRules renders firewalld port rules as firewall-cmd lists them.
func portRules(rules []firewall.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.String())
	}
	return out
}

// portRulesHint says how to remove firewalld port rules rdctl left alone:
// rdctl's own rules are in its service, and a port rule looks the same
// whether rdctl before the service, a guide or an admin added it.
func portRulesHint(e *env, what string, rules []firewall.Rule) {
	if len(rules) == 0 {
		return
	}
	var cmds []string
	for _, c := range firewall.RemovePortRulesCommands(rules) {
		cmds = append(cmds, c.String())
	}
	// One warning line, commands included: the Ansible module passes
	// rdctl's warnings on as they are.
	e.warnf("firewalld's default zone still admits %s by port rules (%s); rdctl leaves port rules alone (rdctl before %s added its rules so, and so do guides and admins); if nothing else needs them: %s",
		what, strings.Join(portRules(rules), " "), firewall.FirewalldService, strings.Join(cmds, " && "))
}

func runFirewall(ctx context.Context, e *env, cmd *cli.Command) error {
	apply, script, remove := cmd.Bool("apply"), cmd.Bool("print-script"), cmd.Bool("remove")
	if apply && script {
		return usageErrorf("--apply and --print-script contradict each other")
	}
	if remove && (apply || script) {
		return usageErrorf("--remove contradicts --apply and --print-script")
	}
	if remove && (cmd.IsSet("tailnet-only") || cmd.IsSet("proxy")) {
		return usageErrorf("--remove removes the open, tailnet-only and proxy rules alike; drop --tailnet-only and --proxy")
	}
	if apply && e.root != "" && !e.dryRun {
		return withHints(usageErrorf("--apply changes the live firewall; it cannot apply to an image tree (--root)"),
			"print the commands for the image instead: rdctl --root DIR firewall")
	}
	if remove && e.root != "" && !e.dryRun {
		return usageErrorf("--remove changes the live firewall; it cannot remove from an image tree (--root)")
	}
	var (
		backend firewall.Backend
		reason  string
	)
	if s := cmd.String("backend"); s != "" {
		b, err := firewall.ParseBackend(s)
		if err != nil {
			return &deploy.InputError{Field: "--backend", Value: s, Reason: "not ufw, firewalld or nftables"}
		}
		backend, reason = b, "--backend"
	}
	opts := firewall.Options{TailnetOnly: cmd.Bool("tailnet-only"), Proxy: cmd.Bool("proxy")}
	tailnetFrom := "--tailnet-only"
	rec, err := deploy.LoadRecord(e.recordPath())
	if err != nil && !errors.Is(err, deploy.ErrNoRecord) {
		return err
	}
	if !cmd.IsSet("tailnet-only") {
		tailnetFrom = ""
		if rec != nil && rec.TailnetOnly {
			opts.TailnetOnly, tailnetFrom = true, "the deployment record"
		}
	}
	if rec != nil && rec.Backend == deploy.BackendCompose && rec.Compose != nil && rec.Compose.Network == compose.NetworkBridge {
		// Docker DNATs published ports before the input hook: the
		// traffic is forwarded to the container, never input here.
		e.warnf("the compose stack runs on a bridge network: Docker publishes its ports past the host firewall's input rules, so these rules neither admit nor restrict them%s",
			map[bool]string{true: " (--tailnet-only needs the stack on the host network: rdctl install compose --network host)", false: ""}[opts.TailnetOnly])
	}
	if !cmd.IsSet("proxy") && rec != nil && rec.Proxy != nil {
		opts.Proxy = true
	}
	if script {
		if backend != "" && backend != firewall.NFTables {
			return usageErrorf("--print-script prints the nftables script; --backend %s has none", backend)
		}
		fmt.Fprint(e.stdout, firewall.NFTScript(opts))
		return nil
	}
	if backend == "" {
		if e.root != "" {
			backend, reason = firewall.DetectRoot(e.root)
		} else {
			backend, reason = firewall.Detect(ctx, firewall.ExecRunner{})
		}
	}
	if remove {
		return removeFirewall(ctx, e, backend, reason)
	}
	cmds, err := firewall.Commands(backend, opts)
	if err != nil {
		return err
	}
	if apply {
		cmds = append(firewall.PruneCommands(backend, opts), cmds...)
	}
	out := firewallJSON{Backend: backend, Reason: reason, TailnetOnly: opts.TailnetOnly, Proxy: opts.Proxy}
	for _, c := range cmds {
		out.Commands = append(out.Commands, firewallCommandJSON{Argv: c.Argv, Stdin: c.Stdin, Shell: c.String()})
	}
	if !e.json {
		e.debugf("backend %s: %s", backend, reason)
		if tailnetFrom != "" {
			e.debugf("tailnet only, from %s", tailnetFrom)
		}
	}

	if !apply {
		if e.json {
			return writeJSON(e.stdout, out)
		}
		e.printf("# %s (%s)%s%s:\n", backend, reason, map[bool]string{true: ", tailnet only", false: ""}[opts.TailnetOnly],
			map[bool]string{true: ", WebSocket ports on loopback only (a reverse proxy fronts them)", false: ""}[opts.Proxy])
		for _, c := range out.Commands {
			e.printf("%s\n", c.Shell)
		}
		if prune := firewall.PruneCommands(backend, opts); len(prune) > 0 {
			e.hintf("--apply also deletes first, while 'ufw show added' lists them with rdctl's comment, the %d rules of rdctl's other modes (--tailnet-only, --proxy) that these do not add", len(prune))
		}
		e.hintf("run them with: rdctl firewall --apply%s", map[bool]string{true: " --backend " + string(backend), false: ""}[reason == "--backend"])
		return nil
	}
	return applyFirewall(ctx, e, &out, cmds, opts)
}

// applyFirewall runs the commands as a plan, one step each; a dry run only
// says what it would run (under --root, where only a dry run gets here,
// it cannot even look for the tools).
func applyFirewall(ctx context.Context, e *env, out *firewallJSON, cmds []firewall.Command, opts firewall.Options) error {
	var runner firewall.Runner = firewall.ExecRunner{}
	if e.root != "" {
		runner = nil
	}
	a := firewall.NewApplyPlan(ctx, runner, cmds)
	p := e.newPlan(ctx, nil)
	p.Add(a.Steps()...)
	rep, err := e.execute(p)
	var failed *firewall.CommandError
	if err != nil && (rep.DryRun || !errors.As(err, &failed)) {
		return err // nothing ran: a program is missing, the lock is held
	}
	out.Report, out.Results, out.Applied = &rep, a.Results(), err == nil && !rep.DryRun
	out.OthersRules = a.OthersRules()
	var left []firewall.Rule
	if out.Backend == firewall.Firewalld && opts.Proxy && runner != nil && failed == nil && !opts.TailnetOnly {
		// A port rule of someone else's that admits the WebSocket ports
		// from anywhere undoes --proxy; it is not rdctl's to remove.
		_, lo := opts.Split()
		left = firewall.FirewalldPortRules(ctx, runner, lo)
		out.PortRulesLeft = portRules(left)
	}
	switch {
	case e.json:
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	case rep.DryRun:
		e.printf("# dry run: would run, for %s (%s):\n", out.Backend, out.Reason)
		e.printReport(rep)
	default:
		for _, r := range out.Results {
			e.printf("ran %s\n", r.Command)
			if r.Output != "" && e.verbose {
				e.printf("  %s\n", strings.ReplaceAll(r.Output, "\n", "\n  "))
			}
		}
	}
	portRulesHint(e, "the WebSocket ports from anywhere", left)
	for _, r := range out.OthersRules {
		// ufw would have rewritten its comment to rdctl's, making it a
		// rule that --remove deletes.
		e.warnf("kept %s: a rule rdctl did not add admits the same; rdctl firewall --remove leaves it", r)
	}
	if failed != nil {
		return withHints(err, "the commands before it were applied; fix the cause and run rdctl firewall --apply again (each command is idempotent)")
	}
	if e.json || rep.DryRun {
		return nil
	}
	e.printf("applied %d command(s) with %s\n", len(out.Results), out.Backend)
	if out.Backend == firewall.NFTables {
		e.hintf("nft rules are lost on reboot: rdctl firewall --print-script%s%s > /etc/nftables.d/rdctl.nft and include it from /etc/nftables.conf",
			map[bool]string{true: " --tailnet-only", false: ""}[opts.TailnetOnly], map[bool]string{true: " --proxy", false: ""}[opts.Proxy])
	}
	return nil
}

// removeFirewall undoes --apply as a plan: one "run" step per rule rdctl
// may have added, each pending only while the backend shows that rule.
func removeFirewall(ctx context.Context, e *env, backend firewall.Backend, reason string) error {
	var runner firewall.Runner = firewall.ExecRunner{}
	if e.root != "" {
		runner = nil
	}
	a, err := firewall.NewRemovePlan(ctx, runner, backend)
	if err != nil {
		return err
	}
	out := firewallJSON{Backend: backend, Reason: reason, Commands: []firewallCommandJSON{}}
	for _, s := range a.Steps() {
		argv := strings.Fields(s.Target())
		out.Commands = append(out.Commands, firewallCommandJSON{Argv: argv, Shell: firewall.Command{Argv: argv}.String()})
	}
	p := e.newPlan(ctx, nil)
	p.Add(a.Steps()...)
	rep, err := e.execute(p)
	var failed *firewall.CommandError
	if err != nil && (rep.DryRun || !errors.As(err, &failed)) {
		return err
	}
	out.Report, out.Results, out.Removed = &rep, a.Results(), err == nil && !rep.DryRun
	out.PortRulesLeft = portRules(a.PortRulesLeft())
	switch {
	case e.json:
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	case rep.DryRun:
		e.printf("# dry run: would remove, from %s (%s):\n", backend, reason)
		e.printReport(rep)
	default:
		for _, r := range out.Results {
			e.printf("ran %s\n", r.Command)
		}
	}
	portRulesHint(e, "rdctl's ports", a.PortRulesLeft())
	if failed != nil {
		return withHints(err, "the removals before it were made; fix the cause and run rdctl firewall --remove again (it removes only what is still there)")
	}
	if e.json || rep.DryRun {
		return nil
	}
	if len(out.Results) == 0 {
		e.printf("unchanged: %s holds none of rdctl's rules\n", backend)
	} else {
		e.printf("removed rdctl's rules from %s (%d command(s))\n", backend, len(out.Results))
	}
	return nil
}
