package doctor

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
)

func stepKeys(rs []plan.Result) [][2]string {
	var out [][2]string
	for _, r := range rs {
		out = append(out, [2]string{r.Action, r.Target})
	}
	return out
}

// A dry run of the fix plan names each fixable problem and changes
// nothing; the real run has the same steps and fixes them; run again,
// nothing is pending.
func TestFixPlanDryRunThenReal(t *testing.T) {
	root, rec := image(t)
	wd := filepath.Join(root, rec.WorkingDir)
	secret := filepath.Join(wd, keys.SecretFile)
	os.Chmod(secret, 0o644)
	os.Remove(filepath.Join(wd, keys.PublicFile))
	cs := run(root, rec)

	dry := &plan.Plan{}
	dry.Add(FixPlan(input(root, rec), cs)...)
	drs, err := dry.Run(true)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{FixAction, "secret-mode"}, {FixAction, "public-key-file"}}
	if got := stepKeys(drs); !reflect.DeepEqual(got, want) {
		t.Fatalf("dry run steps %v, want %v", got, want)
	}
	for _, r := range drs {
		if !r.Changed || r.Before == "" || r.After != "" {
			t.Errorf("dry run %s: %+v", r.Target, r)
		}
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o644 {
		t.Fatal("the dry run changed the secret's mode")
	}
	if _, err := os.Lstat(filepath.Join(wd, keys.PublicFile)); !os.IsNotExist(err) {
		t.Fatal("the dry run wrote the .pub")
	}
	if f := Fixed(plan.NewReport(drs, true), nil); len(f) != 0 {
		t.Errorf("a dry run fixed %+v", f)
	}

	real := &plan.Plan{}
	real.Add(FixPlan(input(root, rec), cs)...)
	rrs, err := real.Run(false)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepKeys(rrs); !reflect.DeepEqual(got, want) {
		t.Fatalf("real run steps %v, want %v", got, want)
	}
	for _, r := range rrs {
		if !r.Changed || r.Before == "" || r.After == "" {
			t.Errorf("real run %s: %+v", r.Target, r)
		}
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o600 {
		t.Error("secret-mode not fixed")
	}

	// Built from the old checks, the same plan now has nothing to do.
	again := &plan.Plan{}
	again.Add(FixPlan(input(root, rec), cs)...)
	ars, err := again.Run(true)
	if err != nil || plan.Changed(ars) != 0 {
		t.Errorf("pending after fixing: %+v %v", ars, err)
	}
}

// A step looks again before it repairs: a problem fixed by someone else
// in between is not "fixed" twice.
func TestFixStepRechecks(t *testing.T) {
	root, rec := image(t)
	wd := filepath.Join(root, rec.WorkingDir)
	os.Chmod(wd, 0o777)
	cs := run(root, rec)
	mustFail(t, cs, "working-dir-mode", true, "0777")
	steps := FixPlan(input(root, rec), cs)
	if len(steps) != 1 {
		t.Fatalf("steps %d", len(steps))
	}
	os.Chmod(wd, 0o750)
	if pending, err := steps[0].Pending(); pending || err != nil {
		t.Errorf("pending %v %v after the problem went away", pending, err)
	}
	if changed, err := steps[0].Apply(); changed || err != nil {
		t.Errorf("applied %v %v", changed, err)
	}
	if fi, _ := os.Stat(wd); fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %04o", fi.Mode().Perm())
	}
}
