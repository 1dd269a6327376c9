package firewall

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/plan"
)

// fakeRunner finds the programs in have and records what it runs.
type fakeRunner struct {
	have map[string]bool
	exit map[string]int // by argv[0]
	ran  []string
}

func (f *fakeRunner) LookPath(name string) (string, error) {
	if !f.have[name] {
		return "", &fs.PathError{Op: "lookpath", Path: name, Err: fs.ErrNotExist}
	}
	return "/usr/sbin/" + name, nil
}

func (f *fakeRunner) Run(_ context.Context, argv []string, stdin string) (string, int, error) {
	if !f.have[argv[0]] {
		return "", -1, &fs.PathError{Op: "exec", Path: argv[0], Err: fs.ErrNotExist}
	}
	f.ran = append(f.ran, strings.Join(argv, " ")+"|"+stdin)
	return "ok\n", f.exit[argv[0]], nil
}

func keysOf(rs []plan.Result) [][2]string {
	var out [][2]string
	for _, r := range rs {
		out = append(out, [2]string{r.Action, r.Target})
	}
	return out
}

// The dry run of --apply runs nothing and has the real run's steps, one
// per command, in order; the real run runs exactly the commands.
func TestApplyPlanDryRunThenReal(t *testing.T) {
	for _, b := range Backends {
		for _, o := range []Options{{}, {TailnetOnly: true}, {Proxy: true}, {Proxy: true, TailnetOnly: true}} {
			cmds, err := Commands(b, o)
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeRunner{have: map[string]bool{"ufw": true, "firewall-cmd": true, "nft": true}}
			dry := &plan.Plan{}
			dry.Add(NewApplyPlan(context.Background(), f, cmds).Steps()...)
			drs, err := dry.Run(true)
			// only read-only queries: ufw's adds ask whether someone
			// else's rule is there (the fake lists none)
			queries := slices.DeleteFunc(slices.Clone(f.ran), func(c string) bool { return c == "ufw show added|" })
			if err != nil || len(queries) != 0 || len(drs) != len(cmds) || plan.Changed(drs) != len(cmds) {
				t.Fatalf("%s: dry run %+v %v, ran %v", b, drs, err, f.ran)
			}
			a := NewApplyPlan(context.Background(), f, cmds)
			real := &plan.Plan{}
			real.Add(a.Steps()...)
			rrs, err := real.Run(false)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(keysOf(rrs), keysOf(drs)) {
				t.Errorf("%s: real steps %v, dry %v", b, keysOf(rrs), keysOf(drs))
			}
			var want []string
			for i, c := range cmds {
				want = append(want, strings.Join(c.Argv, " ")+"|"+c.Stdin)
				if drs[i].Action != RunAction || drs[i].Target != strings.Join(c.Argv, " ") {
					t.Errorf("%s: step %d is %s %s", b, i, drs[i].Action, drs[i].Target)
				}
			}
			ran := slices.DeleteFunc(slices.Clone(f.ran), func(c string) bool {
				return strings.HasPrefix(c, "nft list ") || c == "ufw show added|"
			})
			if !reflect.DeepEqual(ran, want) || len(a.Results()) != len(cmds) {
				t.Errorf("%s: ran %v, results %+v", b, ran, a.Results())
			}
		}
	}
}

// A dry run fails where the real run would for a reason known in advance:
// the program is not installed.
func TestApplyPlanDryRunFailsWithoutTheTool(t *testing.T) {
	cmds, _ := Commands(UFW, Options{})
	f := &fakeRunner{have: map[string]bool{}}
	dry := &plan.Plan{}
	dry.Add(NewApplyPlan(context.Background(), f, cmds).Steps()...)
	_, derr := dry.Run(true)
	_, rerr := Apply(context.Background(), f, cmds)
	var dce, rce *CommandError
	if !errors.As(derr, &dce) || !errors.As(rerr, &rce) || !errors.Is(derr, fs.ErrNotExist) || dce.Command != rce.Command {
		t.Errorf("dry run %v, real run %v", derr, rerr)
	}
	if len(f.ran) != 0 {
		t.Errorf("ran %v", f.ran)
	}
}

// Steps made without a runner (an image tree) show in a dry run and refuse
// a real one.
func TestApplyPlanWithoutRunner(t *testing.T) {
	cmds, _ := Commands(NFTables, Options{})
	dry := &plan.Plan{}
	dry.Add(NewApplyPlan(context.Background(), nil, cmds).Steps()...)
	if rs, err := dry.Run(true); err != nil || len(rs) != 1 || !rs[0].Changed || rs[0].Target != "nft -f /dev/stdin" {
		t.Errorf("dry run %+v %v", rs, err)
	}
	if _, err := Apply(context.Background(), nil, cmds); !errors.Is(err, ErrNoRunner) {
		t.Errorf("real run: %v", err)
	}
}

// scriptedRunner answers each command line (argv joined) with the next of
// its outputs and exit codes, the last one repeating.
type scriptedRunner struct {
	answers map[string][]answer
	ran     []string
}

type answer struct {
	out  string
	code int
}

func (r *scriptedRunner) LookPath(name string) (string, error) { return "/usr/sbin/" + name, nil }

func (r *scriptedRunner) Run(_ context.Context, argv []string, _ string) (string, int, error) {
	line := strings.Join(argv, " ")
	r.ran = append(r.ran, line)
	as := r.answers[line]
	if len(as) == 0 {
		return "", 0, nil
	}
	a := as[0]
	if len(as) > 1 {
		r.answers[line] = as[1:]
	}
	return a.out, a.code, nil
}

// A real run reports changed only when the firewall is not as it was:
// nftables by its table's listing before and after, ufw by its "Skipping"
// lines, firewalld by its already-so exit codes, and firewalld's reload
// runs only after a change. A re-apply is then changed=0.
func TestApplyReportsOnlyRealChanges(t *testing.T) {
	const list = "nft list table inet rdctl"
	for _, tc := range []struct {
		name        string
		b           Backend
		answers     map[string][]answer
		wantChanged int
		wantReload  bool
	}{
		{"nftables, new table", NFTables, map[string][]answer{list: {{"", 1}, {"table inet rdctl { }", 0}}}, 1, false},
		{"nftables, same table", NFTables, map[string][]answer{list: {{"table inet rdctl { }", 0}}}, 0, false},
		{"nftables, other rules", NFTables, map[string][]answer{list: {{"table inet rdctl { old }", 0}, {"table inet rdctl { new }", 0}}}, 1, false},
		{"ufw, rules there", UFW, map[string][]answer{
			"ufw allow 21115:21119/tcp comment rdctl: RustDesk server": {{"Skipping adding existing rule\nSkipping adding existing rule (v6)\n", 0}},
			"ufw allow 21116/udp comment rdctl: RustDesk server":       {{"Skipping adding existing rule\n", 0}},
		}, 0, false},
		{"ufw, one added", UFW, map[string][]answer{
			"ufw allow 21115:21119/tcp comment rdctl: RustDesk server": {{"Skipping adding existing rule\n", 0}},
			"ufw allow 21116/udp comment rdctl: RustDesk server":       {{"Rule added\nRule added (v6)\n", 0}},
		}, 1, false},
		// firewalld 1.3.3 as measured: exit 0 with a warning
		{"firewalld, already so", Firewalld, map[string][]answer{
			"firewall-cmd --permanent --new-service=rdctl-rustdesk":                           {{"Error: NAME_CONFLICT: new_service(): 'rdctl-rustdesk'", 26}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp":    {{"Warning: ALREADY_ENABLED: '21115-21119:tcp'\nsuccess\n", 0}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp":          {{"Warning: ALREADY_ENABLED: '21116:udp'\nsuccess\n", 0}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp": {{"Warning: NOT_ENABLED: '21115-21117:tcp'\nsuccess\n", 0}},
			"firewall-cmd --permanent --add-service=rdctl-rustdesk":                           {{"Warning: ALREADY_ENABLED: rdctl-rustdesk\nsuccess\n", 0}},
		}, 0, false},
		// firewalld before 0.9: the same as exit codes
		{"firewalld before 0.9, already so", Firewalld, map[string][]answer{
			"firewall-cmd --permanent --new-service=rdctl-rustdesk":                           {{"Error: NAME_CONFLICT", 26}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp":    {{"Error: ALREADY_ENABLED", 11}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp":          {{"Error: ALREADY_ENABLED", 11}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp": {{"Error: NOT_ENABLED", 12}},
			"firewall-cmd --permanent --add-service=rdctl-rustdesk":                           {{"Error: ALREADY_ENABLED", 11}},
		}, 0, false},
		{"firewalld, one added", Firewalld, map[string][]answer{
			"firewall-cmd --permanent --new-service=rdctl-rustdesk":                           {{"Error: NAME_CONFLICT: new_service(): 'rdctl-rustdesk'", 26}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp":    {{"Warning: ALREADY_ENABLED: '21115-21119:tcp'\nsuccess\n", 0}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp":          {{"success\n", 0}},
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp": {{"Warning: NOT_ENABLED: '21115-21117:tcp'\nsuccess\n", 0}},
			"firewall-cmd --permanent --add-service=rdctl-rustdesk":                           {{"Warning: ALREADY_ENABLED: rdctl-rustdesk\nsuccess\n", 0}},
		}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := Commands(tc.b, Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := &scriptedRunner{answers: tc.answers}
			p := &plan.Plan{}
			p.Add(NewApplyPlan(context.Background(), r, cmds).Steps()...)
			rs, err := p.Run(false)
			if err != nil {
				t.Fatal(err)
			}
			if n := plan.Changed(rs); n != tc.wantChanged {
				t.Errorf("changed %d, want %d: %+v", n, tc.wantChanged, rs)
			}
			if got := slices.Contains(r.ran, "firewall-cmd --reload"); got != tc.wantReload {
				t.Errorf("reload ran %v, want %v: %v", got, tc.wantReload, r.ran)
			}
		})
	}
}

// `ufw show added` runs once per plan, dry or real, however many steps
// read it (each run of ufw costs about 90 ms).
func TestUFWListingOncePerPlan(t *testing.T) {
	o := Options{TailnetOnly: true}
	cmds, _ := Commands(UFW, o)
	cmds = append(PruneCommands(UFW, o), cmds...)
	for _, dry := range []bool{true, false} {
		r := &scriptedRunner{answers: map[string][]answer{"ufw show added": {{"Added user rules:\nufw allow 21115:21119/tcp comment 'rdctl: RustDesk server'\n", 0}}}}
		p := &plan.Plan{}
		p.Add(NewApplyPlan(context.Background(), r, cmds).Steps()...)
		if _, err := p.Run(dry); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range r.ran {
			if l == "ufw show added" {
				n++
			}
		}
		if n != 1 || len(cmds) < 5 {
			t.Errorf("dry %v: ufw show added ran %d times for %d steps", dry, n, len(cmds))
		}
		if !dry && !slices.Contains(r.ran, "ufw delete allow 21115:21119/tcp") {
			t.Errorf("the listed rule of another mode was not pruned: %v", r.ran)
		}
	}
}
