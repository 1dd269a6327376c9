package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// liveTree runs rdctl once so urfave sets the tree up (help flags, the
// completion command) and returns its root, as `rdctl man` sees it.
func liveTree(t *testing.T) *cli.Command {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&env{stdout: &out, stderr: &errOut})
	if err := app.Run(context.Background(), []string{"rdctl", "man", "--list"}); err != nil {
		t.Fatal(err, errOut.String())
	}
	return app
}

func manOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"rdctl", "man"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("rdctl man %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

// Every command of the live tree has a page, named after its path, that
// shows its usage line and every one of its flags; --list names exactly
// those pages. A command or flag added anywhere is covered by this test
// without changing it.
func TestManPageForEveryCommandAndFlag(t *testing.T) {
	app := liveTree(t)
	listed := map[string]bool{}
	for _, n := range strings.Fields(manOf(t, "--list")) {
		listed[n] = true
	}
	groff, _ := exec.LookPath("groff")
	seen := 0
	var walk func(c *cli.Command, name string)
	walk = func(c *cli.Command, name string) {
		seen++
		if !listed[name] {
			t.Errorf("%s: no man page listed", name)
		}
		delete(listed, name)
		page := manOf(t, name)
		if !strings.HasPrefix(page, ".TH "+strings.ToUpper(strings.ReplaceAll(name, "-", `\-`))+" 8 ") {
			t.Errorf("%s: page starts %q", name, page[:min(len(page), 60)])
		}
		if !strings.Contains(page, roff(c.Usage)) {
			t.Errorf("%s: usage %q missing", name, c.Usage)
		}
		for _, f := range c.Flags {
			if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
				continue
			}
			for _, n := range f.Names() {
				dash := "--"
				if len(n) == 1 {
					dash = "-"
				}
				if !strings.Contains(page, `\fB`+roff(dash+n)+`\fR`) {
					t.Errorf("%s: flag %s%s missing from its page", name, dash, n)
				}
			}
		}
		for _, want := range []string{".SH EXIT STATUS", ".SH FILES", ".SH SEE ALSO"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: no %s", name, want)
			}
		}
		if _, examples := splitExamples(c.Description); examples != "" && !strings.Contains(page, ".SH EXAMPLES") {
			t.Errorf("%s: examples in the help but not in the page", name)
		}
		if groff != "" {
			cmd := exec.Command(groff, "-ww", "-z", "-man")
			cmd.Stdin = strings.NewReader(page)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("%s: groff -ww -z -man: %v %s", name, err, stderr.String())
			}
		}
		for _, sub := range c.Commands {
			if sub.Hidden || sub.Name == "help" {
				continue
			}
			walk(sub, name+"-"+sub.Name)
		}
	}
	walk(app, "rdctl")
	for n := range listed {
		t.Errorf("page %s listed but no such command", n)
	}
	if seen < 25 {
		t.Errorf("only %d commands walked", seen)
	}
	if groff == "" {
		t.Log("groff not installed: pages not checked with groff -ww")
	}
}

// Pages are addressed by path or by name; an unknown one is a usage error.
func TestManAddressing(t *testing.T) {
	byPath, byName := manOf(t, "install", "systemd"), manOf(t, "rdctl-install-systemd.8")
	if byPath != byName || !strings.Contains(byPath, `\-\-relay`) {
		t.Fatalf("install systemd page differs by address or lacks --relay")
	}
	if !strings.HasPrefix(manOf(t), ".TH RDCTL 8 ") {
		t.Fatal("no-argument page is not rdctl(8)")
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"rdctl", "man", "nosuch"}, &out, &errOut); code != exitUsage {
		t.Fatalf("unknown page: exit %d", code)
	}
}

// roff output never lets a help line become a request.
func TestRoffEscapes(t *testing.T) {
	for in, want := range map[string]string{
		".SH x":  `\&.SH x`,
		"'br":    `\&'br`,
		`a\b`:    `a\eb`,
		"--root": `\-\-root`,
		"plain":  "plain",
		"a → b":  `a \[u2192] b`,
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
}
