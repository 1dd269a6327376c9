package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/urfave/cli/v3"
)

// TestDocs holds every command to the help style: a lower-case usage line
// without a trailing period, and examples in the description.
func TestDocs(t *testing.T) {
	var walk func(path string, c *cli.Command)
	walk = func(path string, c *cli.Command) {
		if c.Name == "help" {
			return
		}
		if c.Usage == "" || strings.HasSuffix(c.Usage, ".") || strings.ToLower(c.Usage[:1]) != c.Usage[:1] {
			t.Errorf("%s: usage %q should be lower case with no trailing period", path, c.Usage)
		}
		if !strings.Contains(c.Description, "Examples:\n  rdctl ") && !strings.Contains(c.Description, "Examples:\n  # ") {
			t.Errorf("%s: description has no examples", path)
		}
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				if strings.ToLower(n) != n {
					t.Errorf("%s: flag %q is not lower case", path, n)
				}
			}
		}
		for _, sub := range c.Commands {
			walk(path+" "+sub.Name, sub)
		}
	}
	walk("rdctl", newApp(&env{}))
}

// TestHelpEveryCommand runs --help on every command through the real entry
// point: exit 0, examples shown.
func TestHelpEveryCommand(t *testing.T) {
	var paths [][]string
	var walk func(prefix []string, c *cli.Command)
	walk = func(prefix []string, c *cli.Command) {
		for _, sub := range c.Commands {
			if sub.Name == "help" {
				continue
			}
			p := append(append([]string{}, prefix...), sub.Name)
			paths = append(paths, p)
			walk(p, sub)
		}
	}
	walk(nil, newApp(&env{}))
	for _, p := range paths {
		var out, errOut bytes.Buffer
		args := append(append([]string{"rdctl"}, p...), "--help")
		if code := run(context.Background(), args, &out, &errOut); code != 0 {
			t.Errorf("%v: exit %d, stderr %s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%v: help shows no examples", args)
		}
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"rdctl", "instal"}, &out, &errOut)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, errOut.String())
	}
}

// Newlines cannot be written in a testscript argument; check them here.
func TestInstallRejectsNewlineAndTab(t *testing.T) {
	for _, bad := range []string{"rd.example.com\nExecStartPre=/bin/sh", "rd\texample.com", "rd.example.com\r"} {
		root := t.TempDir()
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"rdctl", "install", "systemd", "--root", root + "/img", "--relay", bad}, &out, &errOut)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want 2", bad, code)
		}
		if !strings.HasPrefix(errOut.String(), "rdctl: error: invalid --relay") || !strings.Contains(errOut.String(), "control character") {
			t.Errorf("%q: stderr %q", bad, errOut.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "--json", "version"}, &out, &errOut); code != 0 {
		t.Fatal(code, errOut.String())
	}
	var got buildInfo
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("version json: %v: %s", err, out.String())
	}
	if got.Version == "" || got.Commit == "" || got.BuildDate == "" || !strings.HasPrefix(got.Go, "go") || got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version json: %+v", got)
	}
	Version, Commit, BuildDate = "9.9.9", "0123abc", "2026-01-02T03:04:05Z"
	defer func() { Version, Commit, BuildDate = "", "", "" }()
	out.Reset()
	run(context.Background(), []string{"rdctl", "version"}, &out, &errOut)
	for _, want := range []string{"rdctl 9.9.9\n", "commit:   0123abc\n", "built:    2026-01-02T03:04:05Z\n", "go:       go"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("link-time values not used (%q missing): %s", want, out.String())
		}
	}
}

// Without link-time values, the version comes from the build info: module
// version and VCS stamp, or "devel"/"unknown" (go build -buildvcs=false).
func TestVersionFromBuildInfo(t *testing.T) {
	defer func() { readBuildInfo = debug.ReadBuildInfo }()
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want buildInfo
	}{
		{"module and vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-01-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			buildInfo{Version: "v1.2.3", Commit: "abc-dirty", BuildDate: "2026-01-01T00:00:00Z", Go: "go1.26.8"}},
		{"buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			buildInfo{Version: "devel", Commit: "unknown", BuildDate: "unknown", Go: "go1.26.8"}},
		{"no build info", nil, buildInfo{Version: "devel", Commit: "unknown", BuildDate: "unknown", Go: runtime.Version()}},
	} {
		readBuildInfo = func() (*debug.BuildInfo, bool) { return c.bi, c.bi != nil }
		got := currentBuild()
		c.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// fatalRecorder is a testscript.T that records Fatal instead of stopping.
type fatalRecorder struct{ failed bool }

func (r *fatalRecorder) Skip(...any)                    {}
func (r *fatalRecorder) Fatal(...any)                   { r.failed = true }
func (r *fatalRecorder) Parallel()                      {}
func (r *fatalRecorder) Log(...any)                     {}
func (r *fatalRecorder) FailNow()                       { r.failed = true }
func (r *fatalRecorder) Verbose() bool                  { return false }
func (r *fatalRecorder) Run(string, func(testscript.T)) {}

// The leak guard must be able to fail: feed it a log that holds a secret in
// each encoding it knows, and one that holds only the public key.
func TestSecretLeakGuardFails(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "-q", "key", "gen", "--dir", dir + "/k"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	pairs := secretsUnder(dir)
	if len(pairs) != 1 {
		t.Fatalf("found %d secrets", len(pairs))
	}
	for i, form := range secretForms(pairs[0]) {
		logPath := dir + "/log"
		writeFile(t, logPath, append([]byte("noise "), form...))
		r := &fatalRecorder{}
		checkNoSecretLeak(r, dir, logPath)
		if !r.failed {
			t.Errorf("form %d of the secret was not caught", i)
		}
	}
	writeFile(t, dir+"/log", []byte(pairs[0].PublicBase64()+" "+pairs[0].Fingerprint()))
	r := &fatalRecorder{}
	checkNoSecretLeak(r, dir, dir+"/log")
	if r.failed {
		t.Error("public key flagged as a leak")
	}
}

func TestShellCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"rdctl", "completion", shell}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d %s", shell, code, errOut.String())
		}
		if !strings.Contains(out.String(), "rdctl") {
			t.Errorf("%s completion does not mention rdctl", shell)
		}
	}
}
