package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/keys"
)

// doctor --fix's dry run is its plan (a step per fixable problem, after
// the recovery step) and changes nothing; the real run applies the same
// steps and leaves no problem.
func TestDoctorFixPlan(t *testing.T) {
	root, wd := installTree(t)
	os.Chmod(filepath.Join(wd, keys.SecretFile), 0o640)
	os.Remove(filepath.Join(wd, keys.PublicFile))
	os.Chmod(wd, 0o770)

	dry, real := runPlanned(t, root, 1, 0, "--root", root, "doctor", "--fix")
	type step struct {
		Action, Target, Before, After string
		Changed                       bool
	}
	var d, r struct {
		OK       bool   `json:"ok"`
		Problems int    `json:"problems"`
		Steps    []step `json:"steps"`
		Fixed    []struct{ ID, Change, Error string }
	}
	json.Unmarshal([]byte(dry), &d)
	json.Unmarshal([]byte(real), &r)
	fixes := map[string]step{}
	for _, s := range d.Steps {
		if s.Action == "fix" {
			fixes[s.Target] = s
		}
	}
	for _, id := range []string{"secret-mode", "public-key-file", "working-dir-mode"} {
		if s, ok := fixes[id]; !ok || !s.Changed || s.Before == "" {
			t.Errorf("dry run: no pending fix of %s: %+v", id, d.Steps)
		}
	}
	if d.OK || d.Problems != 3 || len(d.Fixed) != 0 {
		t.Errorf("dry run: ok %v, %d problems, fixed %+v", d.OK, d.Problems, d.Fixed)
	}
	if !r.OK || r.Problems != 0 || len(r.Fixed) != 3 {
		t.Errorf("real run: ok %v, %d problems, fixed %+v", r.OK, r.Problems, r.Fixed)
	}
	for _, s := range r.Steps {
		if s.Action == "fix" && (!s.Changed || s.After == "") {
			t.Errorf("real run: %+v", s)
		}
	}
}

// Without --fix doctor only reads: no plan in its JSON.
func TestDoctorWithoutFixHasNoPlan(t *testing.T) {
	root, _ := installTree(t)
	code, out, errOut := runInProcess(t, "--root", root, "--json", "doctor")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("exit %d %v: %s%s", code, err, out, errOut)
	}
	for _, k := range []string{"steps", "dry_run", "changed"} {
		if _, ok := doc[k]; ok {
			t.Errorf("doctor without --fix reports %q", k)
		}
	}
}
