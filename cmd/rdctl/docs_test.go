package main

import (
	"bytes"
	"context"
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
	if !strings.Contains(out.String(), `"version": "`) {
		t.Fatalf("version json: %s", out.String())
	}
	Version = "9.9.9"
	defer func() { Version = "" }()
	out.Reset()
	run(context.Background(), []string{"rdctl", "version"}, &out, &errOut)
	if !strings.HasPrefix(out.String(), "rdctl 9.9.9 ") {
		t.Fatalf("link-time version not used: %s", out.String())
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
