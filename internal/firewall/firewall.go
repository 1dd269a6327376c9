// Package firewall opens RustDesk's ports with the host's firewall: the
// rules as ufw or firewalld commands, or as an nftables script that owns
// one table, printed or applied.
//
// The port set is the servers' (tcp 21115-21119, udp 21116). hbbr has no
// UDP port, so udp 21117 — which guides often open — is not opened.
// Tailnet-only rules admit the ports on the tailscale interface (and
// loopback) only.
package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rdctl/rdctl/internal/plan"
)

// Backend is a firewall front end.
type Backend string

const (
	UFW       Backend = "ufw"
	Firewalld Backend = "firewalld"
	NFTables  Backend = "nftables"
)

// Backends lists them, in detection order.
var Backends = []Backend{UFW, Firewalld, NFTables}

// ParseBackend checks a --backend value.
func ParseBackend(s string) (Backend, error) {
	b := Backend(s)
	if !slices.Contains(Backends, b) {
		return "", fmt.Errorf("unknown firewall backend %q (want ufw, firewalld or nftables)", s)
	}
	return b, nil
}

// Rule is a port range to admit.
type Rule struct {
	Proto    string `json:"proto"`
	From, To uint16
}

// Rules are RustDesk's server ports: tcp 21115-21119 (NAT test,
// rendezvous, relay, and the two WebSocket ports) and udp 21116
// (registration and heartbeats).
var Rules = []Rule{{"tcp", 21115, 21119}, {"udp", 21116, 21116}}

// String is the rule as firewall-cmd lists it: 21115-21119/tcp.
func (r Rule) String() string { return r.span("-") + "/" + r.Proto }

func (r Rule) span(sep string) string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d%s%d", r.From, sep, r.To)
}

// TailnetInterface is the interface tailscaled creates in TUN mode.
const TailnetInterface = "tailscale0"

// FirewalldZone is the zone rdctl creates for the tailnet interface.
const FirewalldZone = "rdctl-tailnet"

// FirewalldService is the firewalld service rdctl defines with the ports
// and adds to a zone; like FirewalldZone it is rdctl's alone.
const FirewalldService = "rdctl-rustdesk"

// TableName is the nftables table rdctl owns (family inet).
const TableName = "rdctl"

// ruleComment marks ufw rules as rdctl's.
const ruleComment = "rdctl: RustDesk server"

// Options say which rules to make.
type Options struct {
	// TailnetOnly admits the ports only on TailnetInterface (and loopback).
	TailnetOnly bool
	// Proxy: a TLS reverse proxy on this host fronts the WebSocket ports
	// (hbbs's and hbbr's port + 2), so they are admitted on loopback only;
	// anyone who reached them directly could forge X-Real-IP, which both
	// servers trust. The other ports stay as without it: devices to be
	// controlled still need them with the open-source server.
	Proxy bool
}

// Split returns the rules o admits from anywhere (subject to TailnetOnly)
// and those it admits on loopback only. Without Proxy they are [Rules]
// and none; with it, tcp 21115-21117 and udp 21116, and the WebSocket
// ports tcp 21118-21119 on loopback only. The ports are the servers' own:
// rdctl never starts them with -p, and the record's ports are the ones
// clients use, which a port forward may map.
func (o Options) Split() (open, loopbackOnly []Rule) {
	if !o.Proxy {
		return Rules, nil
	}
	return []Rule{{"tcp", 21115, 21117}, {"udp", 21116, 21116}}, []Rule{{"tcp", 21118, 21119}}
}

// PruneCommands are the commands an apply runs before [Commands]: on ufw,
// the deletion of each rule of rdctl's (by its comment) that another mode
// added and o does not, each run only while `ufw show added` lists it. ufw
// keeps rules until deleted, so after an open apply --tailnet-only would
// leave the ports open everywhere, and after --proxy a plain apply would
// leave the WebSocket ports denied. The other backends need none: the
// nftables table is replaced whole, and firewalld's service gets exactly
// o's ports ([Commands]). A fresh host needs none of them, so they are
// not part of the printed commands.
func PruneCommands(b Backend, o Options) []Command {
	if b != UFW {
		return nil
	}
	mine := ufwRules(o)
	seen := map[string]bool{}
	for _, c := range mine {
		seen[c.String()] = true
	}
	if o.Proxy {
		// the wide rule: Commands deletes it in any case
		wide := ufwRules(Options{TailnetOnly: o.TailnetOnly})
		seen[wide[0].String()] = true
	}
	var out []Command
	for _, other := range o.otherModes() {
		for _, add := range ufwRules(other) {
			line := add.String()
			if seen[line] {
				continue
			}
			seen[line] = true
			out = append(out, Command{Argv: append([]string{"ufw", "delete"}, add.Argv[1:len(add.Argv)-2]...), IfUFWAdded: line})
		}
	}
	return out
}

// ufwRules are the ufw commands that add o's rules, with rdctl's comment.
func ufwRules(o Options) []Command {
	var out []Command
	open, lo := o.Split()
	for _, r := range open {
		if o.TailnetOnly {
			out = append(out, Command{Argv: []string{"ufw", "allow", "in", "on", TailnetInterface, "to", "any", "port", r.span(":"), "proto", r.Proto, "comment", ruleComment}, UnlessUFWOthers: true})
		} else {
			out = append(out, Command{Argv: []string{"ufw", "allow", r.span(":") + "/" + r.Proto, "comment", ruleComment}, UnlessUFWOthers: true})
		}
	}
	// ufw admits loopback before any user rule (before.rules), so a
	// deny shuts the port everywhere else.
	for _, r := range lo {
		out = append(out, Command{Argv: []string{"ufw", "deny", r.span(":") + "/" + r.Proto, "comment", ruleComment}, UnlessUFWOthers: true})
	}
	return out
}

// otherModes are the modes (with and without TailnetOnly and Proxy) that
// are not o.
func (o Options) otherModes() []Options {
	var out []Options
	for _, m := range []Options{{}, {TailnetOnly: true}, {Proxy: true}, {TailnetOnly: true, Proxy: true}} {
		if m != o {
			out = append(out, m)
		}
	}
	return out
}

// otherShapes are the open rules of the other port shape (with or without
// Proxy) that open lacks.
func (o Options) otherShapes(open []Rule) []Rule {
	var out []Rule
	for _, other := range []Options{{}, {Proxy: true}} {
		rs, _ := other.Split()
		for _, r := range rs {
			if !slices.Contains(open, r) && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// Command is one command to run.
type Command struct {
	Argv []string `json:"argv"`
	// Stdin is fed to the command (the nftables script).
	Stdin string `json:"stdin,omitempty"`
	// OKExit are exit codes besides 0 that mean "already so" (firewalld's
	// NAME_CONFLICT for a zone that exists).
	OKExit []int `json:"-"`
	// AfterChange makes the command run only when one before it in the
	// same plan changed something (firewalld's reload).
	AfterChange bool `json:"-"`
	// IfUFWAdded makes the command run only while `ufw show added` lists
	// this line: a rule of rdctl's (its comment says so) that an apply
	// of another mode takes out.
	IfUFWAdded string `json:"-"`
	// UnlessUFWOthers skips a ufw add while `ufw show added` lists the
	// same rule without rdctl's comment: ufw would not add a second one
	// but rewrite that rule's comment to rdctl's ("Rule updated",
	// measured on Debian's ufw 0.36.2), making someone else's rule one
	// that --remove deletes. The port is admitted either way.
	UnlessUFWOthers bool `json:"-"`
}

// String renders the command for a shell: arguments quoted where needed,
// stdin as a quoted here-document.
func (c Command) String() string {
	words := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		words[i] = shellQuote(a)
	}
	s := strings.Join(words, " ")
	if c.IfUFWAdded != "" {
		s = "ufw show added | grep -qxF -- " + shellQuote(c.IfUFWAdded) + " && " + s
	}
	if c.Stdin != "" {
		s += " <<'EOF'\n" + c.Stdin + "EOF"
	}
	return s
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=:/.,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Commands returns the commands that make backend b admit the ports.
// Each is idempotent: running them again changes nothing.
func Commands(b Backend, o Options) ([]Command, error) {
	var out []Command
	open, _ := o.Split()
	switch b {
	case UFW:
		mine := ufwRules(o)
		if o.Proxy {
			// The wide rule of the mode without --proxy would admit the
			// WebSocket ports before the deny below: ufw takes the first
			// match. Deleting a rule that is not there is harmless.
			wide := ufwRules(Options{TailnetOnly: o.TailnetOnly})
			out = append(out, Command{Argv: append([]string{"ufw", "delete"}, wide[0].Argv[1:len(wide[0].Argv)-2]...), OKExit: []int{1}})
		}
		out = append(out, mine...)
	case Firewalld:
		// The ports go into a firewalld service of rdctl's own, and the
		// service into the zone: a port rule of the same range that
		// someone else added (the guides' --add-port) stays theirs, and
		// --remove takes out only the service. Warnings ALREADY_ENABLED
		// and NOT_ENABLED (exit 0 since firewalld 0.9; 11 and 12 before)
		// mean "already so"; 26 is NAME_CONFLICT (the service exists).
		svc := []string{"firewall-cmd", "--permanent", "--service=" + FirewalldService}
		out = append(out, Command{Argv: []string{"firewall-cmd", "--permanent", "--new-service=" + FirewalldService}, OKExit: []int{26}})
		for _, r := range open {
			out = append(out, Command{Argv: append(slices.Clone(svc), "--add-port="+r.span("-")+"/"+r.Proto), OKExit: []int{11}})
		}
		// The service holds exactly this mode's ports: take out those
		// the other mode (with or without --proxy) put there.
		for _, r := range o.otherShapes(open) {
			out = append(out, Command{Argv: append(slices.Clone(svc), "--remove-port="+r.span("-")+"/"+r.Proto), OKExit: []int{12}})
		}
		var zone []string
		if o.TailnetOnly {
			// A zone of its own for the tailnet interface: the ports are
			// open there and nowhere else, so the service leaves the
			// default zone (where an apply without --tailnet-only put
			// it). 16 is ZONE_ALREADY_SET.
			out = append(out,
				Command{Argv: []string{"firewall-cmd", "--permanent", "--new-zone=" + FirewalldZone}, OKExit: []int{26}},
				Command{Argv: []string{"firewall-cmd", "--permanent", "--zone=" + FirewalldZone, "--add-interface=" + TailnetInterface}, OKExit: []int{16, 11}},
				Command{Argv: []string{"firewall-cmd", "--permanent", "--remove-service=" + FirewalldService}, OKExit: []int{12}},
			)
			zone = []string{"--zone=" + FirewalldZone}
		}
		if o.Proxy {
			// A wide port rule (from rdctl before it had its service, or
			// from a guide) would still admit the WebSocket ports from
			// anywhere, where X-Real-IP can be forged: take it out.
			// firewalld never filters loopback, so ports left out of the
			// zone are loopback-only.
			argv := append([]string{"firewall-cmd", "--permanent"}, zone...)
			out = append(out, Command{Argv: append(argv, "--remove-port="+Rules[0].span("-")+"/"+Rules[0].Proto), OKExit: []int{12}})
		}
		argv := append([]string{"firewall-cmd", "--permanent"}, zone...)
		out = append(out, Command{Argv: append(argv, "--add-service="+FirewalldService), OKExit: []int{11}})
		out = append(out, Command{Argv: []string{"firewall-cmd", "--reload"}, AfterChange: true})
	case NFTables:
		out = append(out, Command{Argv: []string{"nft", "-f", "/dev/stdin"}, Stdin: NFTScript(o)})
	default:
		return nil, fmt.Errorf("unknown firewall backend %q", b)
	}
	return out, nil
}

// NFTScript is an nftables script that (re)creates table inet rdctl with an
// input chain admitting the ports. Loading it is atomic and idempotent: it
// declares the table (a no-op when it exists), deletes it, and creates it
// afresh in one transaction, touching no other table.
//
// An accept ends a packet's evaluation only within this table: a drop in
// another table's input chain still applies. With TailnetOnly the chain
// drops the ports on every interface but loopback and the tailnet, which
// holds whatever other tables say.
func NFTScript(o Options) string {
	open, lo := o.Split()
	var b strings.Builder
	b.WriteString("#!/usr/sbin/nft -f\n")
	if o.Proxy {
		var los []string
		for _, r := range lo {
			los = append(los, r.Proto+" "+r.span("-"))
		}
		b.WriteString("# Written by rdctl: RustDesk server ports; a reverse proxy fronts the WebSocket ports (" + strings.Join(los, ", ") + "): loopback only.\n")
	} else {
		b.WriteString("# Written by rdctl: RustDesk server ports (tcp 21115-21119, udp 21116; hbbr has no UDP port).\n")
	}
	b.WriteString("# Loading it replaces table inet " + TableName + " and touches nothing else.\n")
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", TableName, TableName)
	fmt.Fprintf(&b, "table inet %s {\n\tchain input {\n\t\ttype filter hook input priority filter - 1; policy accept;\n", TableName)
	for _, r := range lo {
		fmt.Fprintf(&b, "\t\tiifname != \"lo\" %s dport %s drop\n", r.Proto, r.span("-"))
	}
	if o.TailnetOnly {
		for _, r := range open {
			fmt.Fprintf(&b, "\t\tiifname != { \"lo\", %q } %s dport %s drop\n", TailnetInterface, r.Proto, r.span("-"))
		}
	}
	for _, r := range open {
		fmt.Fprintf(&b, "\t\t%s dport %s accept\n", r.Proto, r.span("-"))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// Runner runs the firewall tools.
type Runner interface {
	// LookPath finds a program as exec.LookPath does.
	LookPath(name string) (string, error)
	// Run runs argv with stdin and returns its combined output and exit
	// code; err is only for a command that could not run at all.
	Run(ctx context.Context, argv []string, stdin string) (output string, exitCode int, err error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct {
	// Prefix goes before every command, e.g. nsenter --net=PATH -- to
	// run in another network namespace. Empty means none.
	Prefix []string
}

func (ExecRunner) LookPath(name string) (string, error) { return exec.LookPath(name) }

func (r ExecRunner) Run(ctx context.Context, argv []string, stdin string) (string, int, error) {
	full := append(slices.Clone(r.Prefix), argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

// Detect picks the live firewall: ufw when it is installed and active,
// else firewalld when `firewall-cmd --state` says running, else nftables.
// reason says why, for the user.
func Detect(ctx context.Context, r Runner) (b Backend, reason string) {
	if _, err := r.LookPath("ufw"); err == nil {
		out, code, err := r.Run(ctx, []string{"ufw", "status"}, "")
		first, _, _ := strings.Cut(out, "\n")
		if err == nil && code == 0 && strings.TrimSpace(first) == "Status: active" {
			return UFW, "ufw is active"
		}
		reason = "ufw is installed but not active"
	}
	if _, err := r.LookPath("firewall-cmd"); err == nil {
		out, code, err := r.Run(ctx, []string{"firewall-cmd", "--state"}, "")
		if err == nil && code == 0 && strings.TrimSpace(out) == "running" {
			return Firewalld, "firewalld is running"
		}
		reason = strings.TrimPrefix(reason+"; firewalld is installed but not running", "; ")
	}
	if reason == "" {
		reason = "neither ufw nor firewalld is installed"
	}
	return NFTables, reason
}

// DetectRoot picks the firewall an image tree will boot with, from its
// files only: ufw when /etc/ufw/ufw.conf says ENABLED=yes, firewalld when
// its unit is enabled, else nftables.
func DetectRoot(root string) (b Backend, reason string) {
	if data, err := os.ReadFile(filepath.Join(root, "etc/ufw/ufw.conf")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == "ENABLED=yes" {
				return UFW, "the image enables ufw (/etc/ufw/ufw.conf)"
			}
		}
	}
	for _, l := range []string{"etc/systemd/system/multi-user.target.wants/firewalld.service", "etc/systemd/system/dbus-org.fedoraproject.FirewallD1.service"} {
		if _, err := os.Lstat(filepath.Join(root, l)); err == nil {
			return Firewalld, "the image enables firewalld.service"
		}
	}
	return NFTables, "the image enables neither ufw nor firewalld"
}

// Result is what one applied command did.
type Result struct {
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output,omitempty"`
}

// CommandError reports a command that failed.
type CommandError struct {
	Command  string
	ExitCode int
	Output   string
	Err      error
}

func (e *CommandError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Command, e.Err)
	}
	msg := fmt.Sprintf("%s exited %d", e.Command, e.ExitCode)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + out
	}
	return msg
}
func (e *CommandError) Unwrap() error { return e.Err }

// Apply runs cmds in order and stops at the first that fails: the plan
// of [NewApplyPlan], run for real.
func Apply(ctx context.Context, r Runner, cmds []Command) ([]Result, error) {
	a := NewApplyPlan(ctx, r, cmds)
	p := &plan.Plan{}
	p.Add(a.Steps()...)
	_, err := p.Run(false)
	return a.Results(), err
}

// RunAction is the action of an [ApplyPlan]'s steps; their target is the
// command line (argv joined, as [Result.Command]).
const RunAction = "run"

// ApplyPlan is `rdctl firewall --apply` as plan steps, one per command,
// run in order with a Runner, and what they did.
type ApplyPlan struct {
	steps         []*runStep
	portRulesLeft []Rule
}

// OthersRules are the ufw rules, as `ufw show added` lists them, that
// admit what an add of rdctl's would have: the adds did not run, so the
// rules stay someone else's (see [Command.UnlessUFWOthers]).
func (a *ApplyPlan) OthersRules() []string {
	var out []string
	for _, s := range a.steps {
		if s.others != "" {
			out = append(out, s.others)
		}
	}
	return out
}

// PortRulesLeft are the port rules of firewalld's default zone that admit
// rdctl's ports, found when a removal plan was made. The removal leaves
// them: rdctl's own rules are in its service (rdctl before the service
// added port rules, which look the same as a guide's or an admin's).
func (a *ApplyPlan) PortRulesLeft() []Rule { return slices.Clone(a.portRulesLeft) }

// NewApplyPlan makes the steps that run cmds with r. A nil r (an image
// tree, where there is nothing to run) makes steps that a dry run can show
// and a real run refuses. Firewall commands cannot say beforehand whether
// they would change anything, so every step is pending; a step whose
// program r cannot find fails in the dry run already.
func NewApplyPlan(ctx context.Context, r Runner, cmds []Command) *ApplyPlan {
	r = listedOnce(r)
	a := &ApplyPlan{}
	for _, c := range cmds {
		s := &runStep{ctx: ctx, r: r, c: c}
		if c.IfUFWAdded != "" {
			rm := ufwListed(c.IfUFWAdded, c)
			s.guard = &rm
		}
		if c.UnlessUFWOthers {
			rm := ufwNotOthers(s, c)
			s.guard = &rm
		}
		if c.AfterChange {
			s.after = slices.Clone(a.steps)
		}
		a.steps = append(a.steps, s)
	}
	return a
}

// Steps are the plan's steps, in order.
func (a *ApplyPlan) Steps() []plan.Step {
	out := make([]plan.Step, len(a.steps))
	for i, s := range a.steps {
		out[i] = s
	}
	return out
}

// Results are what the commands that ran did, in order (the one that
// failed last).
func (a *ApplyPlan) Results() []Result {
	var out []Result
	for _, s := range a.steps {
		if s.result != nil {
			out = append(out, *s.result)
		}
	}
	return out
}

// ErrNoRunner is a real run of steps made without a Runner.
var ErrNoRunner = errors.New("no firewall to run commands on (an image tree)")

type runStep struct {
	ctx    context.Context
	r      Runner
	c      Command
	result *Result
	// guard, when set, makes the step pending only while its query says
	// so (a removal, a ufw prune or add).
	guard *guarded
	// others is the rule of someone else's that an UnlessUFWOthers add
	// found (and so did not run).
	others string
	// after, when set, makes the step pending only when one of these is
	// (firewalld's reload after removals), and run only when one ran.
	after []*runStep
	// pending is what Pending last said.
	pending bool
	// changed is what Apply found: the command ran and the firewall is
	// not as it was (see [runStep.Apply]).
	changed bool
}

func (s *runStep) Action() string { return RunAction }
func (s *runStep) Target() string { return strings.Join(s.c.Argv, " ") }

func (s *runStep) Pending() (bool, error) {
	if s.r == nil {
		return true, nil
	}
	if _, err := s.r.LookPath(s.c.Argv[0]); err != nil {
		return false, &CommandError{Command: s.Target(), ExitCode: -1, Err: err}
	}
	var err error
	s.pending, err = s.needed(false)
	return s.pending, err
}

// needed says whether the step has anything to do: a guarded command
// while its query says so, a reload when a removal before it is pending
// (dry run) or ran (ran).
func (s *runStep) needed(ran bool) (bool, error) {
	if s.after != nil {
		for _, a := range s.after {
			if (!ran && a.pending) || (ran && a.changed) {
				return true, nil
			}
		}
		return false, nil
	}
	if s.guard == nil {
		return true, nil
	}
	q := s.guard.probe
	output, code, err := s.r.Run(s.ctx, q.Argv, q.Stdin)
	if err != nil {
		return false, &CommandError{Command: strings.Join(q.Argv, " "), ExitCode: code, Output: output, Err: err}
	}
	ok, err := s.guard.present(output, code)
	if err != nil {
		return false, &CommandError{Command: strings.Join(q.Argv, " "), ExitCode: code, Output: output, Err: err}
	}
	return ok, nil
}

func (s *runStep) Apply() (bool, error) {
	if s.r == nil {
		return false, ErrNoRunner
	}
	if s.guard != nil || s.after != nil {
		// the same failure as the dry run's for a missing program, before
		// its query
		if _, err := s.r.LookPath(s.c.Argv[0]); err != nil {
			return false, &CommandError{Command: s.Target(), ExitCode: -1, Err: err}
		}
		if ok, err := s.needed(true); !ok || err != nil {
			return false, err
		}
	}
	// nft -f replaces rdctl's table wholesale and says nothing either
	// way: the table's listing before and after tells whether it changed.
	var listing []string
	before, listed := "", false
	if s.c.Argv[0] == "nft" && s.c.Stdin != "" {
		listing = []string{"nft", "list", "table", "inet", TableName}
		out, code, err := s.r.Run(s.ctx, listing, "")
		before, listed = out, err == nil && code == 0
	}
	name := s.Target()
	output, code, err := s.r.Run(s.ctx, s.c.Argv, s.c.Stdin)
	if err != nil {
		return false, &CommandError{Command: name, ExitCode: code, Output: output, Err: err}
	}
	s.result = &Result{Command: name, ExitCode: code, Output: strings.TrimSpace(output)}
	if code != 0 && !slices.Contains(s.c.OKExit, code) {
		return true, &CommandError{Command: name, ExitCode: code, Output: output}
	}
	switch {
	case code != 0:
		// An OKExit code: already so (firewalld's ALREADY_ENABLED,
		// NOT_ENABLED, NAME_CONFLICT; ufw deleting a rule it lacks).
		s.changed = false
	case s.c.Argv[0] == "ufw":
		s.changed = !ufwUnchanged(output)
	case s.c.Argv[0] == "firewall-cmd":
		s.changed = !firewalldUnchanged(output)
	case listing != nil && listed:
		out, code, err := s.r.Run(s.ctx, listing, "")
		s.changed = err != nil || code != 0 || out != before
	default:
		s.changed = true
	}
	return s.changed, nil
}

// ufwUnchanged says whether ufw's output reports that nothing changed:
// every line says it skipped an existing rule or could not delete one
// that is not there.
func ufwUnchanged(output string) bool {
	lines := 0
	for l := range strings.Lines(output) {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		lines++
		if !strings.HasPrefix(l, "Skipping ") && !strings.HasPrefix(l, "Could not delete non-existent rule") {
			return false
		}
	}
	return lines > 0
}

// firewalldUnchanged says whether firewall-cmd's output reports that
// nothing changed: since firewalld 0.9 an add of what is there and a
// remove of what is not exit 0 with a warning (measured on 1.3.3:
// "Warning: ALREADY_ENABLED: 21115-21119:tcp", "Warning: NOT_ENABLED:
// rdctl-rustdesk"; ZONE_ALREADY_SET is the older interface warning).
func firewalldUnchanged(output string) bool {
	for l := range strings.Lines(output) {
		l = strings.TrimSpace(l)
		for _, w := range []string{"ALREADY_ENABLED", "NOT_ENABLED", "ZONE_ALREADY_SET"} {
			if strings.HasPrefix(l, "Warning: "+w) {
				return true
			}
		}
	}
	return false
}

// listedOnce wraps r so that `ufw show added` runs once per plan (each
// run of ufw costs about 90 ms): the steps' conditions may all read the
// listing from before the plan ran, since none of them looks at a rule an
// earlier step changes (a prune or a removal looks for its own rule of
// rdctl's, an add for someone else's rule, which rdctl never changes).
func listedOnce(r Runner) Runner {
	if r == nil {
		return nil
	}
	return &onceRunner{Runner: r}
}

type onceRunner struct {
	Runner
	done bool
	out  string
	code int
	err  error
}

func (o *onceRunner) Run(ctx context.Context, argv []string, stdin string) (string, int, error) {
	if len(argv) != 3 || argv[0] != "ufw" || argv[1] != "show" || argv[2] != "added" {
		return o.Runner.Run(ctx, argv, stdin)
	}
	if !o.done {
		o.out, o.code, o.err = o.Runner.Run(ctx, argv, stdin)
		o.done = o.err == nil
	}
	return o.out, o.code, o.err
}

// ufwQuery makes c a step that asks `ufw show added` first: pending when
// a listed line is found (pendingIfFound), or when none is.
func ufwQuery(c Command, pendingIfFound bool, found func(line string) bool) guarded {
	return guarded{
		probe: Command{Argv: []string{"ufw", "show", "added"}},
		present: func(output string, code int) (bool, error) {
			if code != 0 {
				return false, fmt.Errorf("exit %d", code)
			}
			for l := range strings.Lines(output) {
				if found(strings.TrimSpace(l)) {
					return pendingIfFound, nil
				}
			}
			return !pendingIfFound, nil
		},
		run: c,
	}
}

// ufwListed is c, pending while `ufw show added` lists line.
func ufwListed(line string, c Command) guarded {
	return ufwQuery(c, true, func(l string) bool { return l == line })
}

// ufwSpec is a `ufw show added` line without its comment.
func ufwSpec(line string) string {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, " comment "); i >= 0 {
		return line[:i]
	}
	return line
}

// ufwNotOthers makes the add c (to be run by step s) pending unless `ufw
// show added` lists its rule with no or another comment; s.others then
// says which.
func ufwNotOthers(s *runStep, c Command) guarded {
	mine := c.String()
	return ufwQuery(c, false, func(l string) bool {
		if l != mine && strings.HasPrefix(l, "ufw ") && ufwSpec(l) == ufwSpec(mine) {
			s.others = l
			return true
		}
		return false
	})
}

// guarded is a command that runs only while a read-only query says so: a
// removal while its rule is there, a ufw prune while rdctl's rule of
// another mode is listed, a ufw add while no one else's rule admits the
// same.
type guarded struct {
	probe   Command
	present func(output string, code int) (bool, error)
	run     Command
}

// removals lists what undoing `firewall --apply` on backend b takes, for
// both the open and the tailnet-only rules (a host may have had either).
func removals(b Backend) ([]guarded, error) {
	var out []guarded
	switch b {
	case UFW:
		// `ufw show added` lists the user rules as the commands that added
		// them; a rule with rdctl's comment is rdctl's, and ufw keeps no
		// second rule that differs only in its comment, so deleting the
		// spec deletes that rule.
		seen := map[string]bool{}
		for _, o := range []Options{{}, {TailnetOnly: true}, {Proxy: true}, {TailnetOnly: true, Proxy: true}} {
			adds, _ := Commands(UFW, o)
			for _, add := range adds {
				line := add.String()
				if add.Argv[1] == "delete" || seen[line] {
					continue
				}
				seen[line] = true
				spec := add.Argv[1 : len(add.Argv)-2] // without "ufw" and the comment
				out = append(out, ufwListed(line, Command{Argv: append([]string{"ufw", "delete"}, spec...)}))
			}
		}
	case Firewalld:
		// 0 yes, 1 no: firewall-cmd's answer to a --query-*.
		query := func(_ string, code int) (bool, error) {
			switch code {
			case 0:
				return true, nil
			case 1:
				return false, nil
			}
			return false, fmt.Errorf("exit %d", code)
		}
		// The service is rdctl's alone. It leaves the default zone
		// first; deleting it also takes it out of every other zone
		// (measured on firewalld 1.3.3). Port rules are never removed:
		// nothing tells rdctl's (from before the service) from those a
		// guide or an admin added; [ApplyPlan.PortRulesLeft] names them.
		out = append(out,
			guarded{
				probe:   Command{Argv: []string{"firewall-cmd", "--permanent", "--query-service=" + FirewalldService}},
				present: query,
				run:     Command{Argv: []string{"firewall-cmd", "--permanent", "--remove-service=" + FirewalldService}},
			},
			deleteFirewalld("service", FirewalldService),
			// The tailnet zone is rdctl's alone: deleting it takes its
			// interface and service along.
			deleteFirewalld("zone", FirewalldZone),
		)
	case NFTables:
		out = append(out, guarded{
			probe: Command{Argv: []string{"nft", "list", "table", "inet", TableName}},
			present: func(output string, code int) (bool, error) {
				switch {
				case code == 0:
					return true, nil
				case strings.Contains(output, "No such file or directory"):
					return false, nil
				}
				return false, fmt.Errorf("exit %d: %s", code, strings.TrimSpace(output))
			},
			run: Command{Argv: []string{"nft", "delete", "table", "inet", TableName}},
		})
	default:
		return nil, fmt.Errorf("unknown firewall backend %q", b)
	}
	return out, nil
}

// deleteFirewalld is the removal of firewalld's permanent object kind
// ("service", "zone") called name: present while --get-<kind>s lists it.
func deleteFirewalld(kind, name string) guarded {
	return guarded{
		probe: Command{Argv: []string{"firewall-cmd", "--permanent", "--get-" + kind + "s"}},
		present: func(output string, code int) (bool, error) {
			if code != 0 {
				return false, fmt.Errorf("exit %d", code)
			}
			return slices.Contains(strings.Fields(output), name), nil
		},
		run: Command{Argv: []string{"firewall-cmd", "--permanent", "--delete-" + kind + "=" + name}},
	}
}

// NewRemovePlan makes the steps of `rdctl firewall --remove` on backend b:
// one "run" step per rule `firewall --apply` may have added (either
// variant, open or tailnet-only), each pending only while a read-only query
// through r finds the rule, so a second removal changes nothing; firewalld
// ends with a reload, pending when a removal is. A program r cannot find
// fails the step, in a dry run already.
func NewRemovePlan(ctx context.Context, r Runner, b Backend) (*ApplyPlan, error) {
	rms, err := removals(b)
	if err != nil {
		return nil, err
	}
	r = listedOnce(r)
	a := &ApplyPlan{}
	var removes []*runStep
	for _, rm := range rms {
		s := &runStep{ctx: ctx, r: r, c: rm.run, guard: &rm}
		removes = append(removes, s)
		a.steps = append(a.steps, s)
	}
	if b == Firewalld {
		a.steps = append(a.steps, &runStep{ctx: ctx, r: r, c: Command{Argv: []string{"firewall-cmd", "--reload"}}, after: removes})
		if r != nil {
			a.portRulesLeft = FirewalldPortRules(ctx, r, Rules)
		}
	}
	return a, nil
}

// FirewalldPortRules are the port rules of firewalld's default zone that
// admit any port of ports (read-only; nil when firewall-cmd does not
// answer as expected).
func FirewalldPortRules(ctx context.Context, r Runner, ports []Rule) []Rule {
	// The zone is named: on the default zone by default, firewall-cmd
	// first warns "You're performing an operation over default zone" when
	// an interface is in another zone (tailscale0 in rdctl-tailnet).
	zone, code, err := r.Run(ctx, []string{"firewall-cmd", "--get-default-zone"}, "")
	zone = strings.TrimSpace(zone)
	if err != nil || code != 0 || zone == "" || strings.ContainsAny(zone, " \n") {
		return nil
	}
	out, code, err := r.Run(ctx, []string{"firewall-cmd", "--permanent", "--zone=" + zone, "--list-ports"}, "")
	if err != nil || code != 0 {
		return nil
	}
	rules, err := ParseFirewalldPorts(out)
	if err != nil {
		return nil
	}
	var found []Rule
	for _, p := range rules {
		for _, q := range ports {
			if p.Proto == q.Proto && p.From <= q.To && q.From <= p.To {
				found = append(found, p)
				break
			}
		}
	}
	return found
}

// ParseFirewalldPorts reads firewall-cmd --list-ports: PORT[-PORT]/PROTO
// words separated by spaces.
func ParseFirewalldPorts(s string) ([]Rule, error) {
	var out []Rule
	for _, w := range strings.Fields(s) {
		span, proto, ok := strings.Cut(w, "/")
		if !ok || proto == "" || strings.Trim(proto, "abcdefghijklmnopqrstuvwxyz") != "" {
			return nil, fmt.Errorf("port %q: want PORT[-PORT]/PROTO", w)
		}
		from, to, isRange := strings.Cut(span, "-")
		if !isRange {
			to = from
		}
		f, err1 := strconv.ParseUint(from, 10, 16)
		t, err2 := strconv.ParseUint(to, 10, 16)
		if err1 != nil || err2 != nil || f > t {
			return nil, fmt.Errorf("port %q: want PORT[-PORT]/PROTO with PORT 0-65535, the lower first", w)
		}
		out = append(out, Rule{Proto: proto, From: uint16(f), To: uint16(t)})
	}
	return out, nil
}

// RemovePortRulesCommands are the commands that remove port rules from
// firewalld's default zone and reload it, for a hint: rdctl never runs
// them itself (see [ApplyPlan.PortRulesLeft]).
func RemovePortRulesCommands(rules []Rule) []Command {
	argv := []string{"firewall-cmd", "--permanent"}
	for _, r := range rules {
		argv = append(argv, "--remove-port="+r.span("-")+"/"+r.Proto)
	}
	return []Command{{Argv: argv}, {Argv: []string{"firewall-cmd", "--reload"}}}
}

// NewPurgePlan is the firewall part of `rdctl uninstall --purge`: the
// removal steps of every backend whose program r finds (rdctl's rules may
// be in any of them), in detection order. Backends whose program is
// missing have nothing of rdctl's to remove.
func NewPurgePlan(ctx context.Context, r Runner) *ApplyPlan {
	all := &ApplyPlan{}
	for _, b := range Backends {
		prog := map[Backend]string{UFW: "ufw", Firewalld: "firewall-cmd", NFTables: "nft"}[b]
		if _, err := r.LookPath(prog); err != nil {
			continue
		}
		if b == Firewalld {
			// firewall-cmd answers only while firewalld runs; a stopped
			// firewalld applies nothing rdctl could have added live.
			if out, code, err := r.Run(ctx, []string{"firewall-cmd", "--state"}, ""); err != nil || code != 0 || strings.TrimSpace(out) != "running" {
				continue
			}
		}
		a, _ := NewRemovePlan(ctx, r, b)
		all.steps = append(all.steps, a.steps...)
		all.portRulesLeft = append(all.portRulesLeft, a.portRulesLeft...)
	}
	return all
}
