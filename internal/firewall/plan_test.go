package firewall

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
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
			if err != nil || len(f.ran) != 0 || len(drs) != len(cmds) || plan.Changed(drs) != len(cmds) {
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
			if !reflect.DeepEqual(f.ran, want) || len(a.Results()) != len(cmds) {
				t.Errorf("%s: ran %v, results %+v", b, f.ran, a.Results())
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
