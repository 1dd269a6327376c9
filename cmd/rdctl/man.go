package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/textsafe"
)

// Man pages are generated from the command tree itself, so a command or a
// flag added anywhere appears in them without anyone touching this file.
// Every command has a page in section 8 named after its path with dashes:
// rdctl(8), rdctl-rotate(8), rdctl-install-systemd(8), rdctl-key-show(8).
// The release build (scripts/release) writes them with `rdctl man --list`
// and `rdctl man PAGE`, gzipped into /usr/share/man/man8.

const manSection = "8"

// manCommand prints one man page (roff) on stdout, or the list of pages.
func manCommand(e *env) *cli.Command {
	var list bool
	return &cli.Command{
		Name:        "man",
		Usage:       "print a man page generated from the command tree",
		ArgsUsage:   "[COMMAND... | PAGE]",
		Description: helpText("man"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Usage: "print the name of every page, one per line", Destination: &list},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			pages := manPages(cmd.Root())
			if list {
				names := make([]string, len(pages))
				for i, p := range pages {
					names[i] = p.name
				}
				if e.json {
					return writeJSON(e.stdout, map[string][]string{"pages": names})
				}
				for _, n := range names {
					fmt.Fprintln(e.stdout, n)
				}
				return nil
			}
			want := "rdctl"
			if args := cmd.Args().Slice(); len(args) > 0 {
				want = strings.Join(args, "-")
				if !strings.HasPrefix(want, "rdctl") {
					want = "rdctl-" + want
				}
				want = strings.TrimSuffix(want, "."+manSection)
			}
			for _, p := range pages {
				if p.name == want {
					writeManPage(e.stdout, p)
					return nil
				}
			}
			return withHints(usageErrorf("no man page %s", textsafe.Echo(want)), "list them: rdctl man --list")
		},
	}
}

// manPage is one command with its place in the tree.
type manPage struct {
	name   string   // rdctl-install-systemd
	path   []string // rdctl install systemd
	cmd    *cli.Command
	parent *manPage
}

// manPages walks the command tree: every command that is not hidden, except
// urfave's help command, has a page.
func manPages(root *cli.Command) []*manPage {
	var pages []*manPage
	var walk func(c *cli.Command, path []string, parent *manPage)
	walk = func(c *cli.Command, path []string, parent *manPage) {
		p := &manPage{name: strings.Join(path, "-"), path: path, cmd: c, parent: parent}
		pages = append(pages, p)
		for _, sub := range visibleCommands(c) {
			walk(sub, append(slices.Clip(path), sub.Name), p)
		}
	}
	walk(root, []string{root.Name}, nil)
	return pages
}

func visibleCommands(c *cli.Command) []*cli.Command {
	var subs []*cli.Command
	for _, sub := range c.Commands {
		if !sub.Hidden && sub.Name != "help" {
			subs = append(subs, sub)
		}
	}
	return subs
}

// manFlag is a flag as its page shows it.
type manFlag struct {
	names       []string
	placeholder string // DIR, or "" for a boolean
	usage       string
	def         string
}

func manFlags(c *cli.Command) []manFlag {
	var out []manFlag
	for _, f := range c.Flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		mf := manFlag{names: f.Names()}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			mf.usage = d.GetUsage()
			if i := strings.IndexByte(mf.usage, '`'); i >= 0 {
				if j := strings.IndexByte(mf.usage[i+1:], '`'); j >= 0 {
					mf.placeholder = mf.usage[i+1 : i+1+j]
					mf.usage = mf.usage[:i] + mf.placeholder + mf.usage[i+2+j:]
				}
			}
			if d.TakesValue() {
				if mf.placeholder == "" {
					mf.placeholder = "VALUE"
				}
				mf.def = d.GetDefaultText()
				if mf.def == "" && d.IsDefaultVisible() {
					if v := d.GetValue(); v != "" && v != `""` && v != "0" && v != "[]" {
						mf.def = v
					}
				}
			}
		}
		out = append(out, mf)
	}
	return out
}

// roff escapes text for a roff line: backslashes, dashes, non-ASCII, and a
// leading dot or apostrophe that would make the line a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	// groff reads its input as Latin-1 unless told otherwise: anything
	// beyond ASCII goes as a Unicode escape (an arrow is \[u2192]).
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return b.String()
}

// bold renders a literal (a command or an option) in bold.
func bold(s string) string { return `\fB` + roff(s) + `\fR` }

// flagNames renders --name, -n VALUE.
func flagNames(f manFlag) string {
	parts := make([]string, len(f.names))
	for i, n := range f.names {
		dash := "--"
		if len(n) == 1 {
			dash = "-"
		}
		parts[i] = bold(dash + n)
	}
	s := strings.Join(parts, ", ")
	if f.placeholder != "" {
		s += ` \fI` + roff(f.placeholder) + `\fR`
	}
	return s
}

// writeText renders help text: paragraphs are filled, indented lines are
// kept as they are (option tables, examples).
func writeText(w io.Writer, text string) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	inBlock := false
	para := false
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == "":
			if inBlock {
				fmt.Fprintln(w, ".fi\n.RE")
				inBlock = false
			}
			para = false
		case strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t"):
			if !inBlock {
				fmt.Fprintln(w, ".RS 4\n.nf")
				inBlock = true
			}
			fmt.Fprintln(w, roff(strings.TrimPrefix(strings.TrimPrefix(l, "  "), "\t")))
		default:
			if inBlock {
				fmt.Fprintln(w, ".fi\n.RE")
				inBlock = false
				para = false
			}
			if !para {
				fmt.Fprintln(w, ".PP")
				para = true
			}
			fmt.Fprintln(w, roff(l))
		}
	}
	if inBlock {
		fmt.Fprintln(w, ".fi\n.RE")
	}
}

// splitExamples separates a command's long help from its examples.
func splitExamples(desc string) (body, examples string) {
	const marker = "Examples:\n"
	i := strings.Index(desc, marker)
	if i < 0 || (i > 0 && desc[i-1] != '\n') {
		return desc, ""
	}
	rest := desc[i+len(marker):]
	// The examples block ends at the first line that is not indented and
	// not blank; what follows belongs to the description again.
	lines := strings.Split(rest, "\n")
	end := len(lines)
	for k, l := range lines {
		if l != "" && !strings.HasPrefix(l, " ") {
			end = k
			break
		}
	}
	body = desc[:i] + strings.Join(lines[end:], "\n")
	return body, strings.Join(lines[:end], "\n")
}

const manExitStatus = `.TP
.B 0
success
.TP
.B 1
the operation or a check failed
.TP
.B 2
bad usage or bad input, or a live change asked without root; nothing was changed
.TP
.B 3
another rdctl holds the lock
`

var manFiles = [][2]string{
	{"/etc/rdctl/rdctl.toml", "the deployment record (--config, under --root)"},
	{"/var/lib/rustdesk", "working directory of the systemd backend: the key pair id_ed25519{,.pub} and the database"},
	{"/opt/rustdesk-server", "the compose backend: compose.yaml and data/ with the keys"},
	{"/var/lib/rdctl", "rdctl's state per deployment: key backups, the staged key, the rotation journal"},
	{"/etc/systemd/system/hbbs.service, hbbr.service", "the units install systemd writes"},
	{"/run/rdctl/rdctl.lock", "the lock every mutating command holds"},
}

// writeManPage renders one page.
func writeManPage(w io.Writer, p *manPage) {
	c := p.cmd
	date := ""
	if b := currentBuild(); len(b.BuildDate) >= 10 && b.BuildDate[4] == '-' {
		date = b.BuildDate[:10]
	}
	fmt.Fprintf(w, ".TH %s %s \"%s\" \"rdctl %s\" \"System Administration\"\n",
		strings.ToUpper(roff(p.name)), manSection, date, roff(version()))
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", roff(p.name), roff(c.Usage))

	fmt.Fprintln(w, ".SH SYNOPSIS")
	synopsis := bold(strings.Join(p.path, " "))
	if p.parent != nil {
		synopsis = bold("rdctl") + ` [\fIGLOBAL OPTIONS\fR] ` + bold(strings.Join(p.path[1:], " "))
	}
	if len(manFlags(c)) > 0 {
		synopsis += ` [\fIOPTIONS\fR]`
	}
	if subs := visibleCommands(c); len(subs) > 0 {
		synopsis += ` \fICOMMAND\fR`
	}
	if c.ArgsUsage != "" {
		synopsis += ` \fI` + roff(c.ArgsUsage) + `\fR`
	}
	fmt.Fprintln(w, synopsis)

	body, examples := splitExamples(c.Description)
	fmt.Fprintln(w, ".SH DESCRIPTION")
	if strings.TrimSpace(body) == "" {
		body = c.Usage + "."
	}
	writeText(w, body)

	if subs := visibleCommands(c); len(subs) > 0 {
		fmt.Fprintln(w, ".SH COMMANDS")
		for _, sub := range subs {
			fmt.Fprintf(w, ".TP\n%s\n%s; see \\fB%s\\fR(%s)\n", bold(sub.Name), roff(sub.Usage), roff(p.name+"-"+sub.Name), manSection)
		}
	}
	if flags := manFlags(c); len(flags) > 0 {
		if p.parent == nil {
			fmt.Fprintln(w, ".SH GLOBAL OPTIONS")
			fmt.Fprintln(w, ".PP\nThese go before the command and apply to every command.")
		} else {
			fmt.Fprintln(w, ".SH OPTIONS")
		}
		for _, f := range flags {
			fmt.Fprintf(w, ".TP\n%s\n%s", flagNames(f), roff(f.usage))
			if f.def != "" {
				fmt.Fprintf(w, " (default: %s)", roff(f.def))
			}
			fmt.Fprintln(w)
		}
	}
	if p.parent != nil {
		fmt.Fprintf(w, ".PP\nThe global options (\\fB\\-\\-root\\fR, \\fB\\-\\-config\\fR, \\fB\\-\\-json\\fR, \\fB\\-\\-dry\\-run\\fR, \\fB\\-\\-quiet\\fR, \\fB\\-\\-verbose\\fR, \\fB\\-\\-lock\\-wait\\fR, \\fB\\-\\-tailscale\\-socket\\fR) are described in \\fBrdctl\\fR(%s).\n", manSection)
	}
	fmt.Fprint(w, ".SH EXIT STATUS\n"+manExitStatus)
	fmt.Fprintln(w, ".SH FILES")
	for _, f := range manFiles {
		fmt.Fprintf(w, ".TP\n.I %s\n%s\n", roff(f[0]), roff(f[1]))
	}
	if strings.TrimSpace(examples) != "" {
		fmt.Fprintln(w, ".SH EXAMPLES")
		writeText(w, examples)
	}
	fmt.Fprintln(w, ".SH SEE ALSO")
	var see []string
	if p.parent != nil {
		see = append(see, fmt.Sprintf(`\fB%s\fR(%s)`, roff(p.parent.name), manSection))
	}
	for _, sub := range visibleCommands(c) {
		see = append(see, fmt.Sprintf(`\fB%s\fR(%s)`, roff(p.name+"-"+sub.Name), manSection))
	}
	see = append(see, `\fBsystemctl\fR(1)`)
	fmt.Fprintln(w, strings.Join(see, ",\n"))
}
