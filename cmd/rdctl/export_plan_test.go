package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// exportRun runs rdctl in-process with --json and decodes its document.
func exportRun(t *testing.T, args ...string) exportJSON {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"rdctl"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
	}
	var doc exportJSON
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v: not one JSON document: %v\n%s", args, err, out.String())
	}
	return doc
}

type actionTarget struct{ action, target string }

func stepList(doc exportJSON) []actionTarget {
	var l []actionTarget
	for _, s := range doc.Steps {
		l = append(l, actionTarget{s.Action, s.Target})
	}
	return l
}

// TestExportDryRunIsTheRealPlan: --dry-run --json export on a prepared
// image tree prints JSON with the steps and leaves every byte and mode as
// it was; the real run then reports the same steps, in the same order, and
// did what the dry run said it would. Run twice, the second time over the
// first run's output, where nothing is left to change.
func TestExportDryRunIsTheRealPlan(t *testing.T) {
	for _, c := range []struct {
		name   string
		format string
		out    string // under the test's directory
		steps  int
		extra  []string
	}{
		{"tree", "all", "media", 14, nil},
		{"file", "toml", "RustDesk2.toml", 1, nil},
		// A tree per client population: the top directory, then per
		// profile its directory, its four subdirectories and nine files.
		{"profiles", "all", "media", 29, []string{"--profile", "all"}},
		{"tailnet tree", "all", "media", 15, []string{"--profile", "tailnet"}},
		{"tailnet file", "string", "config.txt", 1, []string{"--profile", "tailnet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, _ := installTree(t)
			if c.extra != nil {
				if code, _, stderr := runInProcess(t, "-q", "install", "systemd", "--root", root, "--relay", "rd.example.com", "--tailnet-host", "rd.tail1234.ts.net"); code != 0 {
					t.Fatalf("install --tailnet-host: %s", stderr)
				}
			}
			base := filepath.Dir(root) // holds the image tree and the output
			args := append([]string{"--root", root, "export", "--format", c.format, "--out", filepath.Join(base, c.out)}, c.extra...)
			for pass := 1; pass <= 2; pass++ {
				before := treeSnapshot(t, base)
				dry := exportRun(t, append([]string{"--dry-run", "--json"}, args...)...)
				if after := treeSnapshot(t, base); !reflect.DeepEqual(before, after) {
					t.Fatalf("pass %d: the dry run changed the tree", pass)
				}
				if !dry.DryRun || len(dry.Steps) != c.steps || len(dry.Files) == 0 || dry.Key == "" {
					t.Fatalf("pass %d: dry run: dry_run=%v, %d steps (want %d), %d files, key %q", pass, dry.DryRun, len(dry.Steps), c.steps, len(dry.Files), dry.Key)
				}
				real := exportRun(t, append([]string{"--json"}, args...)...)
				if real.DryRun {
					t.Error("the real run says dry_run")
				}
				if got, want := stepList(real), stepList(dry); !reflect.DeepEqual(got, want) {
					t.Fatalf("pass %d: the real run's steps differ from the dry run's:\n%v\n%v", pass, got, want)
				}
				for i, s := range real.Steps {
					if s.Changed != dry.Steps[i].Changed || s.Changed != (pass == 1) {
						t.Errorf("pass %d: %s %s changed=%v, dry run said %v", pass, s.Action, s.Target, s.Changed, dry.Steps[i].Changed)
					}
				}
				if real.Changed != (pass == 1) || !reflect.DeepEqual(real.Files, dry.Files) {
					t.Errorf("pass %d: changed=%v, files %+v, dry run %+v", pass, real.Changed, real.Files, dry.Files)
				}
			}
		})
	}
}

// TestExportDryRunFailsLikeTheRealRun: a target export cannot use fails the
// dry run with the same exit code and message as the real run, and neither
// changes anything.
func TestExportDryRunFailsLikeTheRealRun(t *testing.T) {
	root, _ := installTree(t)
	base := filepath.Dir(root)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(base, "target.toml"), []byte("x"), 0o644))
	must(os.Symlink("target.toml", filepath.Join(base, "link.toml")))
	must(os.Mkdir(filepath.Join(base, "dir"), 0o755))
	must(os.Symlink("dir", filepath.Join(base, "linkdir")))
	must(os.Mkdir(filepath.Join(base, "media"), 0o755))
	must(os.Symlink(filepath.Join(base, "dir"), filepath.Join(base, "media", "linux")))
	for _, c := range []struct {
		format, out string
		code        int
	}{
		{"toml", "link.toml", exitUsage},
		{"all", "linkdir", exitUsage},
		{"all", "target.toml", exitUsage},
		{"toml", "dir", exitUsage},
		{"toml", "nodir/x.toml", exitUsage},
		{"all", "media", exitFailed}, // media/linux is a symlink: found by the plan's steps
	} {
		before := treeSnapshot(t, base)
		var got [2]string
		for i, dry := range []bool{true, false} {
			args := []string{"--root", root, "export", "--format", c.format, "--out", filepath.Join(base, c.out)}
			if dry {
				args = append([]string{"--dry-run"}, args...)
			}
			code, stdout, stderr := runInProcess(t, args...)
			if code != c.code {
				t.Errorf("%s %s dry=%v: exit %d, want %d: %s", c.format, c.out, dry, code, c.code, stderr)
			}
			got[i] = fmt.Sprintf("exit %d: %s", code, stderr)
			if c.code == exitUsage && stdout != "" {
				t.Errorf("%s %s dry=%v: printed %q", c.format, c.out, dry, stdout)
			}
		}
		if got[0] != got[1] {
			t.Errorf("%s %s: the dry run and the real run fail differently:\n%s\n%s", c.format, c.out, got[0], got[1])
		}
		if after := treeSnapshot(t, base); !reflect.DeepEqual(before, after) {
			t.Errorf("%s %s: something was written", c.format, c.out)
		}
	}
}
