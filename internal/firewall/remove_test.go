package firewall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/plan"
)

// stateRunner is a fake ufw and firewall-cmd that keep their rules, so a
// removal can be checked against what an apply left: ufw's added rules as
// `ufw show added` prints them, firewalld's permanent ports and zones.
type stateRunner struct {
	have     map[string]bool
	ufw      []string        // "ufw allow ..." lines
	ports    map[string]bool // "zone|port/proto", "zone|service:NAME", "service:NAME|port/proto"
	zones    []string
	services []string // besides the stock ones
	ran      []string // the commands that change something
}

func newStateRunner() *stateRunner {
	return &stateRunner{have: map[string]bool{"ufw": true, "firewall-cmd": true}, ports: map[string]bool{}, zones: []string{"public", "trusted"}}
}

func (f *stateRunner) LookPath(name string) (string, error) {
	if !f.have[name] {
		return "", &fs.PathError{Op: "lookpath", Path: name, Err: fs.ErrNotExist}
	}
	return "/usr/sbin/" + name, nil
}

func (f *stateRunner) Run(_ context.Context, argv []string, _ string) (string, int, error) {
	if !f.have[argv[0]] {
		return "", -1, &fs.PathError{Op: "exec", Path: argv[0], Err: fs.ErrNotExist}
	}
	line := Command{Argv: argv}.String()
	switch {
	case line == "ufw show added":
		return "Added user rules (see 'ufw status' for running firewall):\n" + strings.Join(f.ufw, "\n") + "\n", 0, nil
	case argv[0] == "ufw" && (argv[1] == "allow" || argv[1] == "deny"):
		// As measured on Debian's ufw 0.36.2: no second rule that differs
		// only in its comment; the comment of the one there is rewritten.
		for i, l := range f.ufw {
			switch {
			case l == line:
				return "Skipping adding existing rule\nSkipping adding existing rule (v6)\n", 0, nil
			case ufwSpec(l) == ufwSpec(line):
				f.ufw[i] = line
				f.ran = append(f.ran, line)
				return "Rule updated\nRule updated (v6)\n", 0, nil
			}
		}
		f.ufw = append(f.ufw, line)
	case argv[0] == "ufw" && argv[1] == "delete":
		// ufw matches the rule without its comment
		n := len(f.ufw)
		f.ufw = slices.DeleteFunc(f.ufw, func(l string) bool {
			return strings.TrimSuffix(l, " comment "+shellQuote(ruleComment)) == "ufw "+strings.Join(argv[2:], " ")
		})
		if len(f.ufw) == n {
			return "Could not delete non-existent rule\n", 0, nil
		}
	case argv[0] == "firewall-cmd":
		zone, service, zoned := "public", "", false
		var op string
		for _, a := range argv[1:] {
			switch {
			case strings.HasPrefix(a, "--zone="):
				zone, zoned = strings.TrimPrefix(a, "--zone="), true
			case strings.HasPrefix(a, "--service="):
				service = strings.TrimPrefix(a, "--service=")
			case a != "--permanent":
				op = a
			}
		}
		k, v, _ := strings.Cut(op, "=")
		// As measured on firewalld 1.3.3: adding what is there and
		// removing what is not exit 0 with a warning.
		set := func(key string, on bool) (string, int, error) {
			if f.ports[key] == on {
				w := "ALREADY_ENABLED"
				if !on {
					w = "NOT_ENABLED"
				}
				return "Warning: " + w + ": " + v + "\nsuccess\n", 0, nil
			}
			if on {
				f.ports[key] = true
			} else {
				delete(f.ports, key)
			}
			f.ran = append(f.ran, line)
			return "success\n", 0, nil
		}
		if service != "" {
			if !slices.Contains(f.services, service) {
				return "Error: INVALID_SERVICE: " + service, 101, nil
			}
			switch k {
			case "--add-port":
				return set("service:"+service+"|"+v, true)
			case "--remove-port":
				return set("service:"+service+"|"+v, false)
			}
			return "", 2, fmt.Errorf("fake firewall-cmd: %s", op)
		}
		switch k {
		case "--get-zones":
			return strings.Join(f.zones, " ") + "\n", 0, nil
		case "--get-services":
			return "ssh " + strings.Join(f.services, " ") + "\n", 0, nil
		case "--get-default-zone":
			return "public\n", 0, nil
		case "--list-ports":
			// As measured on 1.3.3: the default zone by default, with a
			// warning first when an interface is in another zone.
			var warn string
			for p := range f.ports {
				if !zoned && strings.Contains(p, "|iface:") {
					warn = "You're performing an operation over default zone ('public'),\nbut your connections/interfaces are in zone 'rdctl-tailnet' (see --get-active-zones)\nYou most likely need to use --zone=rdctl-tailnet option.\n\n"
				}
			}
			var ps []string
			for p := range f.ports {
				if z, port, _ := strings.Cut(p, "|"); z == zone && !strings.Contains(port, ":") {
					ps = append(ps, port)
				}
			}
			slices.Sort(ps)
			return warn + strings.Join(ps, " ") + "\n", 0, nil
		case "--new-zone":
			if slices.Contains(f.zones, v) {
				return "Error: NAME_CONFLICT: new_zone(): '" + v + "'", 26, nil
			}
			f.zones = append(f.zones, v)
		case "--new-service":
			if slices.Contains(f.services, v) {
				return "Error: NAME_CONFLICT: new_service(): '" + v + "'", 26, nil
			}
			f.services = append(f.services, v)
		case "--delete-service":
			// firewalld takes the service out of every zone too
			if !slices.Contains(f.services, v) {
				return "Error: INVALID_SERVICE: " + v, 101, nil
			}
			f.services = slices.DeleteFunc(f.services, func(s string) bool { return s == v })
			for p := range f.ports {
				if strings.HasSuffix(p, "|service:"+v) || strings.HasPrefix(p, "service:"+v+"|") {
					delete(f.ports, p)
				}
			}
		case "--delete-zone":
			if !slices.Contains(f.zones, v) {
				return "Error: INVALID_ZONE: " + v, 112, nil
			}
			f.zones = slices.DeleteFunc(f.zones, func(z string) bool { return z == v })
			for p := range f.ports {
				if strings.HasPrefix(p, v+"|") {
					delete(f.ports, p)
				}
			}
		case "--reload":
		case "--add-interface":
			return set(zone+"|iface:"+v, true)
		case "--add-port":
			return set(zone+"|"+v, true)
		case "--remove-port":
			return set(zone+"|"+v, false)
		case "--add-service":
			if !slices.Contains(f.services, v) {
				return "Error: INVALID_SERVICE: " + v, 101, nil
			}
			return set(zone+"|service:"+v, true)
		case "--remove-service":
			return set(zone+"|service:"+v, false)
		case "--query-port", "--query-service":
			key := zone + "|" + v
			if k == "--query-service" {
				key = zone + "|service:" + v
			}
			if f.ports[key] {
				return "yes\n", 0, nil
			}
			return "no\n", 1, nil
		default:
			return "", 2, fmt.Errorf("fake firewall-cmd: %s", op)
		}
	}
	f.ran = append(f.ran, line)
	return "", 0, nil
}

func runPlan(t *testing.T, a *ApplyPlan, dry bool) ([]plan.Result, error) {
	t.Helper()
	p := &plan.Plan{}
	p.Add(a.Steps()...)
	return p.Run(dry)
}

// --remove undoes --apply on ufw and firewalld, open and tailnet-only
// alike: the dry run changes nothing and reports the real run's steps, the
// real run removes exactly rdctl's rules, and a second removal (dry and
// real) has nothing to do.
func TestRemovePlanUndoesApply(t *testing.T) {
	for _, b := range []Backend{UFW, Firewalld} {
		for _, tailnet := range []bool{false, true} {
			f := newStateRunner()
			f.ufw = []string{"ufw allow 22/tcp"}
			f.ports["public|22/tcp"] = true
			// The guides' firewalld rules, from before rdctl: the same
			// ports, but someone else's.
			guide := []string{"public|21115-21117/tcp", "public|21117/udp", "public|21118-21119/tcp"}
			for _, g := range guide {
				f.ports[g] = true
			}
			cmds, _ := Commands(b, Options{TailnetOnly: tailnet})
			if _, err := Apply(context.Background(), f, cmds); err != nil {
				t.Fatal(err)
			}
			f.ran = nil
			a, err := NewRemovePlan(context.Background(), f, b)
			if err != nil {
				t.Fatal(err)
			}
			drs, err := runPlan(t, a, true)
			if err != nil || len(f.ran) != 0 || plan.Changed(drs) == 0 {
				t.Fatalf("%s %v: dry run %+v %v, ran %v", b, tailnet, drs, err, f.ran)
			}
			a, _ = NewRemovePlan(context.Background(), f, b)
			rrs, err := runPlan(t, a, false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rrs, dryToReal(drs)) {
				t.Errorf("%s %v: real %+v, dry %+v", b, tailnet, rrs, drs)
			}
			if b == Firewalld {
				want := []Rule{{"tcp", 21115, 21117}, {"tcp", 21118, 21119}}
				if got := a.PortRulesLeft(); !reflect.DeepEqual(got, want) {
					t.Errorf("%v: port rules left %v, want %v", tailnet, got, want)
				}
			}
			for _, g := range guide {
				if !f.ports[g] {
					t.Errorf("%s %v: removed someone else's %s", b, tailnet, g)
				}
				delete(f.ports, g)
			}
			if !reflect.DeepEqual(f.ufw, []string{"ufw allow 22/tcp"}) || !reflect.DeepEqual(f.ports, map[string]bool{"public|22/tcp": true}) ||
				!reflect.DeepEqual(f.zones, []string{"public", "trusted"}) {
				t.Errorf("%s %v: left ufw %v, ports %v, zones %v", b, tailnet, f.ufw, f.ports, f.zones)
			}
			var want []string
			for _, r := range rrs {
				if r.Changed {
					want = append(want, r.Target)
				}
			}
			if !reflect.DeepEqual(strings.Join(f.ran, "\n"), strings.Join(want, "\n")) || len(a.Results()) != len(want) {
				t.Errorf("%s %v: ran %v, changed steps %v", b, tailnet, f.ran, want)
			}
			if b == Firewalld && f.ran[len(f.ran)-1] != "firewall-cmd --reload" {
				t.Errorf("no reload: %v", f.ran)
			}
			// again: nothing to do
			f.ran = nil
			for _, dry := range []bool{true, false} {
				a, _ = NewRemovePlan(context.Background(), f, b)
				rs, err := runPlan(t, a, dry)
				if err != nil || plan.Changed(rs) != 0 || len(f.ran) != 0 {
					t.Errorf("%s %v: second removal (dry %v) %+v %v, ran %v", b, tailnet, dry, rs, err, f.ran)
				}
			}
		}
	}
}

func dryToReal(rs []plan.Result) []plan.Result {
	out := slices.Clone(rs)
	for i := range out {
		out[i].DryRun = false
	}
	return out
}

func TestRemoveCommandsExact(t *testing.T) {
	var got []string
	for _, b := range Backends {
		a, _ := NewRemovePlan(context.Background(), nil, b)
		for _, s := range a.Steps() {
			got = append(got, s.Action()+" "+s.Target())
		}
	}
	want := []string{
		"run ufw delete allow 21115:21119/tcp",
		"run ufw delete allow 21116/udp",
		"run ufw delete allow in on tailscale0 to any port 21115:21119 proto tcp",
		"run ufw delete allow in on tailscale0 to any port 21116 proto udp",
		// the --proxy variants
		"run ufw delete allow 21115:21117/tcp",
		"run ufw delete deny 21118:21119/tcp",
		"run ufw delete allow in on tailscale0 to any port 21115:21117 proto tcp",
		// rdctl's service and zone only: port rules stay
		"run firewall-cmd --permanent --remove-service=rdctl-rustdesk",
		"run firewall-cmd --permanent --delete-service=rdctl-rustdesk",
		"run firewall-cmd --permanent --delete-zone=rdctl-tailnet",
		"run firewall-cmd --reload",
		"run nft delete table inet rdctl",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A removal fails, in the dry run already, when the program is missing or
// its query fails; the purge plan skips the backends that are not there.
func TestRemovePlanFailures(t *testing.T) {
	f := newStateRunner()
	f.have = map[string]bool{}
	a, _ := NewRemovePlan(context.Background(), f, UFW)
	var ce *CommandError
	if _, err := runPlan(t, a, true); !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run without ufw: %v", err)
	}
	if rs := NewPurgePlan(context.Background(), f).Steps(); len(rs) != 0 {
		t.Errorf("purge without any firewall: %d steps", len(rs))
	}
	ff := &fakeRunner{have: map[string]bool{"firewall-cmd": true}, exit: map[string]int{"firewall-cmd": 252}}
	a, _ = NewRemovePlan(context.Background(), ff, Firewalld)
	if _, err := runPlan(t, a, true); !errors.As(err, &ce) || ce.ExitCode != 252 {
		t.Errorf("a failing query: %v", err)
	}
	// firewall-cmd present but firewalld not running: nothing of it in the purge
	if rs := NewPurgePlan(context.Background(), ff).Steps(); len(rs) != 0 {
		t.Errorf("purge with firewalld stopped: %d steps", len(rs))
	}
	g := newStateRunner()
	delete(g.have, "firewall-cmd")
	if got := len(NewPurgePlan(context.Background(), g).Steps()); got != 7 {
		t.Errorf("purge with ufw only: %d steps, want 7 (4 without --proxy, 3 with)", got)
	}
}

// With the real nft in a namespace of its own: apply, then remove, and
// table inet rdctl is gone while another table stays; removing again (dry
// and real) changes nothing.
func TestNFTRemoveInNetns(t *testing.T) {
	needNetns(t)
	ns, _ := newNetns(t)
	r := runIn(ns)
	must(t, r, "nft", "add", "table", "inet", "other")
	ctx := context.Background()
	cmds, _ := Commands(NFTables, Options{TailnetOnly: true})
	if _, err := Apply(ctx, r, cmds); err != nil {
		t.Fatal(err)
	}
	a, _ := NewRemovePlan(ctx, r, NFTables)
	if rs, err := runPlan(t, a, true); err != nil || len(rs) != 1 || !rs[0].Changed || rs[0].Target != "nft delete table inet rdctl" {
		t.Fatalf("dry run: %+v %v", rs, err)
	}
	if tables := must(t, r, "nft", "list", "tables"); tables != "table inet other\ntable inet rdctl\n" {
		t.Errorf("the dry run changed the tables: %s", tables)
	}
	a, _ = NewRemovePlan(ctx, r, NFTables)
	if rs, err := runPlan(t, a, false); err != nil || plan.Changed(rs) != 1 || len(a.Results()) != 1 {
		t.Fatalf("removal: %+v %v", rs, err)
	}
	if tables := must(t, r, "nft", "list", "tables"); tables != "table inet other\n" {
		t.Errorf("tables after the removal:\n%s", tables)
	}
	for _, dry := range []bool{true, false} {
		a, _ = NewRemovePlan(ctx, r, NFTables)
		if rs, err := runPlan(t, a, dry); err != nil || plan.Changed(rs) != 0 || len(a.Results()) != 0 {
			t.Errorf("second removal (dry %v): %+v %v", dry, rs, err)
		}
	}
	// the purge plan finds nft and has nothing to do either
	if rs, err := runPlan(t, NewPurgePlan(ctx, r), false); err != nil || plan.Changed(rs) != 0 {
		t.Errorf("purge: %+v %v", rs, err)
	}
}

// Applying one mode after another leaves rdctl's service with exactly the
// last mode's ports, in the last mode's zone only.
func TestFirewalldServiceFollowsMode(t *testing.T) {
	f := newStateRunner()
	ours := func() []string {
		var out []string
		for k := range f.ports {
			if strings.Contains(k, "service:"+FirewalldService) {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, step := range []struct {
		o    Options
		want []string
	}{
		{Options{}, []string{"public|service:rdctl-rustdesk", "service:rdctl-rustdesk|21115-21119/tcp", "service:rdctl-rustdesk|21116/udp"}},
		{Options{Proxy: true}, []string{"public|service:rdctl-rustdesk", "service:rdctl-rustdesk|21115-21117/tcp", "service:rdctl-rustdesk|21116/udp"}},
		{Options{Proxy: true, TailnetOnly: true}, []string{"rdctl-tailnet|service:rdctl-rustdesk", "service:rdctl-rustdesk|21115-21117/tcp", "service:rdctl-rustdesk|21116/udp"}},
		{Options{TailnetOnly: true}, []string{"rdctl-tailnet|service:rdctl-rustdesk", "service:rdctl-rustdesk|21115-21119/tcp", "service:rdctl-rustdesk|21116/udp"}},
	} {
		cmds, _ := Commands(Firewalld, step.o)
		if _, err := Apply(context.Background(), f, cmds); err != nil {
			t.Fatal(err)
		}
		if got := ours(); !reflect.DeepEqual(got, step.want) {
			t.Errorf("%+v: %v, want %v", step.o, got, step.want)
		}
		// and again: nothing changes, no reload
		f.ran = nil
		a := NewApplyPlan(context.Background(), f, cmds)
		if rs, err := runPlan(t, a, false); err != nil || plan.Changed(rs) != 0 || len(f.ran) != 0 {
			t.Errorf("%+v again: %+v %v, ran %v", step.o, rs, err, f.ran)
		}
	}
}

func TestParseFirewalldPorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Rule
		ok   bool
	}{
		{"\n", nil, true},
		{"21115-21117/tcp 21117/udp 22/tcp\n", []Rule{{"tcp", 21115, 21117}, {"udp", 21117, 21117}, {"tcp", 22, 22}}, true},
		{"0-65535/sctp", []Rule{{"sctp", 0, 65535}}, true},
		{"21117", nil, false},
		{"21117/", nil, false},
		{"21119-21115/tcp", nil, false},
		{"65536/tcp", nil, false},
		{"-1/tcp", nil, false},
		{"21115-/tcp", nil, false},
		{"21115/TCP", nil, false},
	} {
		got, err := ParseFirewalldPorts(tc.in)
		if (err == nil) != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v %v, want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseFirewalldPorts: any input parses or fails without panicking,
// and what parses prints back as firewall-cmd would list it.
func FuzzParseFirewalldPorts(f *testing.F) {
	f.Add("21115-21117/tcp 21117/udp")
	f.Add("1-2/x\t3/y")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseFirewalldPorts(s)
		if err != nil {
			return
		}
		var words []string
		for _, r := range rules {
			if r.From > r.To {
				t.Fatalf("%q: %+v", s, r)
			}
			words = append(words, r.span("-")+"/"+r.Proto)
		}
		again, err := ParseFirewalldPorts(strings.Join(words, " "))
		if err != nil || !reflect.DeepEqual(again, rules) {
			t.Fatalf("%q: round trip %v %v, want %v", s, again, err, rules)
		}
	})
}

// On ufw, an apply of one mode after another leaves exactly the last
// mode's rules of rdctl's: the prune deletes rdctl's rules of the other
// modes (only while `ufw show added` lists them with rdctl's comment), and
// rules of others, overlapping or not, stay.
func TestUFWApplyFollowsMode(t *testing.T) {
	f := newStateRunner()
	others := []string{"ufw allow 22/tcp", "ufw allow 21115/tcp", "ufw allow in on tailscale0 to any port 21116 proto udp"}
	f.ufw = slices.Clone(others)
	for _, o := range []Options{{}, {TailnetOnly: true}, {TailnetOnly: true, Proxy: true}, {Proxy: true}, {}} {
		cmds, _ := Commands(UFW, o)
		a := NewApplyPlan(context.Background(), f, append(PruneCommands(UFW, o), cmds...))
		if _, err := runPlan(t, a, false); err != nil {
			t.Fatal(err)
		}
		if got := a.OthersRules(); o.TailnetOnly != slices.Equal(got, []string{"ufw allow in on tailscale0 to any port 21116 proto udp"}) {
			t.Errorf("%+v: others' rules %q", o, got)
		}
		var want []string
		for _, c := range ufwRules(o) {
			// ufw skips rdctl's rule when another of the same spec is there
			if !slices.Contains(others, strings.TrimSuffix(c.String(), " comment "+shellQuote(ruleComment))) {
				want = append(want, c.String())
			}
		}
		var ours []string
		for _, l := range f.ufw {
			if slices.Contains(others, l) {
				continue
			}
			ours = append(ours, l)
		}
		slices.Sort(want)
		slices.Sort(ours)
		if !slices.Equal(ours, want) {
			t.Errorf("%+v: rdctl's rules\n%s\nwant\n%s", o, strings.Join(ours, "\n"), strings.Join(want, "\n"))
		}
		for _, l := range others {
			if !slices.Contains(f.ufw, l) {
				t.Errorf("%+v: someone else's %q went", o, l)
			}
		}
	}
	if got := PruneCommands(NFTables, Options{}); got != nil {
		t.Errorf("nftables prune: %v", got)
	}
}
