package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/rdctl/rdctl/internal/plan"
)

// treeSnapshot is every path under root with its mode, owner and
// content (a symlink's target), to show that a dry run changed nothing:
// byte for byte, mode for mode, owner for owner.
func treeSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := fi.Mode().String()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			s += " -> " + l
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s += " " + string(data)
		}
		out[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// planOf decodes the plan report of a mutating command's JSON.
func planOf(t *testing.T, out string) plan.Report {
	t.Helper()
	var r plan.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return r
}

// stepKeys are a report's steps as (action, target) pairs.
func stepKeys(r plan.Report) [][2]string {
	var out [][2]string
	for _, s := range r.Steps {
		out = append(out, [2]string{s.Action, s.Target})
	}
	return out
}

// runPlanned runs a command as --dry-run --json, checks that it printed
// a plan and changed nothing under root, then runs it for real and checks
// that it reported the same steps. It returns both outputs.
func runPlanned(t *testing.T, root string, wantDry, wantReal int, args ...string) (dry, real string) {
	t.Helper()
	before := treeSnapshot(t, root)
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"rdctl", "--dry-run", "--json"}, args...), &out, &errOut)
	if code != wantDry {
		t.Fatalf("dry run: exit %d, want %d\n%s%s", code, wantDry, out.String(), errOut.String())
	}
	dr := planOf(t, out.String())
	if !dr.DryRun || len(dr.Steps) == 0 || !dr.Changed {
		t.Fatalf("dry run reported no plan: %+v\n%s", dr, out.String())
	}
	if after := treeSnapshot(t, root); !reflect.DeepEqual(before, after) {
		for p, s := range after {
			if before[p] != s {
				t.Errorf("dry run changed %s: %q -> %q", p, before[p], s)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("dry run removed %s", p)
			}
		}
		t.FailNow()
	}
	dry = out.String()
	out.Reset()
	errOut.Reset()
	code = run(context.Background(), append([]string{"rdctl", "--json"}, args...), &out, &errOut)
	if code != wantReal {
		t.Fatalf("real run: exit %d, want %d\n%s%s", code, wantReal, out.String(), errOut.String())
	}
	rr := planOf(t, out.String())
	if rr.DryRun || !rr.Changed {
		t.Errorf("real run: %+v", rr)
	}
	if got, want := stepKeys(rr), stepKeys(dr); !reflect.DeepEqual(got, want) {
		t.Errorf("the real run's steps differ from the dry run's:\nreal %v\ndry  %v", got, want)
	}
	return dry, out.String()
}

// adopt's dry run is its plan (the record's write) and changes nothing;
// the real run writes the record through the same plan.
func TestAdoptPlan(t *testing.T) {
	root := t.TempDir()
	for rel, data := range map[string]string{
		"lib/systemd/system/rustdesk-hbbs.service": "[Service]\nExecStart=/usr/bin/hbbs -r rd.example.com\nWorkingDirectory=/var/lib/rustdesk-server\nUser=rustdesk\n",
		"lib/systemd/system/rustdesk-hbbr.service": "[Service]\nExecStart=/usr/bin/hbbr -k _\nWorkingDirectory=/var/lib/rustdesk-server\nUser=rustdesk\n",
	} {
		full := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recPath := filepath.Join(root, "etc/rdctl/rdctl.toml")
	dry, real := runPlanned(t, root, 0, 0, "--root", root, "adopt")
	var d, r struct {
		Written  bool   `json:"written"`
		Record   string `json:"record"`
		Steps    []plan.StepReport
		Recorded struct {
			IDHost string `json:"id_host"`
		} `json:"recorded"`
	}
	json.Unmarshal([]byte(dry), &d)
	json.Unmarshal([]byte(real), &r)
	if d.Written || !r.Written || d.Record != recPath || r.Record != recPath || r.Recorded.IDHost != "rd.example.com" {
		t.Errorf("dry %+v\nreal %+v", d, r)
	}
	if len(r.Steps) != 1 || r.Steps[0].Action != "write" || r.Steps[0].Target != recPath || !r.Steps[0].Changed {
		t.Errorf("steps %+v", r.Steps)
	}
	if _, err := os.Stat(recPath); err != nil {
		t.Errorf("no record after the real run: %v", err)
	}
}
