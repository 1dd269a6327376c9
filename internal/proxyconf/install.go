package proxyconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// Runner runs the proxy's own checker (nginx -t, caddy validate).
type Runner interface {
	// LookPath finds a program as exec.LookPath does.
	LookPath(name string) (string, error)
	// Run runs argv and returns its combined output and exit code; err is
	// only for a command that could not run at all.
	Run(ctx context.Context, argv []string) (output string, exitCode int, err error)
}

// Reloader reloads the proxy's service (systemctl reload over D-Bus).
type Reloader interface {
	// Reload reloads unit if it is running and reports whether it was;
	// a unit that is not running is left alone (false, nil).
	Reload(ctx context.Context, unit string) (running bool, err error)
}

// FileOptions is how the site file and the Caddyfile are written: 0644,
// owned by whoever runs rdctl (root on a live host). They hold no secrets:
// the certificate key is named by its path, never read.
var FileOptions = safefs.CallerOwned(0o644)

// maxConfig bounds what rdctl reads back of a file it may replace.
const maxConfig = 1 << 20

// ValidationError is a configuration the proxy's checker refused. The
// previous configuration was put back.
type ValidationError struct {
	Command  string
	ExitCode int
	Output   string
	// RollbackErr is set when putting the previous configuration back
	// failed too.
	RollbackErr error
}

func (e *ValidationError) Error() string {
	msg := fmt.Sprintf("%s refused the new configuration (exit %d)", e.Command, e.ExitCode)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + textsafe.Escape(out)
	}
	if e.RollbackErr != nil {
		return msg + "; putting the previous configuration back failed too: " + e.RollbackErr.Error()
	}
	return msg + "; the previous configuration is back in place"
}

// Install is `rdctl proxy --apply` as plan steps: write the site file (and,
// for Caddy, the import line in the Caddyfile), validate the whole
// configuration with the proxy's checker, and reload the proxy's unit. A
// refused configuration puts every file back as it was (or removes it when
// it was new) before the reload, so the running proxy never sees it and
// the next start loads the previous one. Nothing is pending when the files
// already hold the configuration: a re-run validates and reloads nothing.
type Install struct {
	ctx      context.Context
	layout   Layout
	runner   Runner   // nil: do not validate (not installed, or an image)
	reloader Reloader // nil: do not reload (an image)
	files    []*fileStep
	// Validated and Reloaded say what the run did; Running is whether
	// the unit was running when it was to be reloaded.
	Validated, Reloaded, Running bool
}

// NewInstall plans the installation of data (a rendered site) at
// under(layout's paths), where under resolves a path under --root. A nil
// runner skips the validation and a nil reloader the reload; the caller
// says so to the operator.
func NewInstall(ctx context.Context, layout Layout, data []byte, under func(string) string, runner Runner, reloader Reloader) *Install {
	in := &Install{ctx: ctx, layout: layout, runner: runner, reloader: reloader}
	in.files = append(in.files, &fileStep{path: under(layout.Site), content: func([]byte, bool) []byte { return data }})
	if layout.Main != "" {
		in.files = append(in.files, &fileStep{path: under(layout.Main),
			content: func(prev []byte, _ bool) []byte { return withImport(prev, layout.Import) }})
	}
	return in
}

// Steps are the plan's steps, in order.
func (in *Install) Steps() []plan.Step {
	var out []plan.Step
	for _, f := range in.files {
		out = append(out, f)
	}
	if in.runner != nil {
		out = append(out, &plan.Func{Verb: "validate with", Object: strings.Join(in.layout.Validate, " "),
			Check: in.anyPending, Do: in.validate})
	}
	if in.reloader != nil {
		out = append(out, &plan.Func{Verb: "reload", Object: in.layout.Unit, Check: in.anyPending, Do: in.reload})
	}
	return out
}

// anyPending: the validation and the reload are due when a file is (in a
// dry run: would be) changed.
func (in *Install) anyPending() (bool, error) {
	for _, f := range in.files {
		if f.pending {
			return true, nil
		}
	}
	return false, nil
}

func (in *Install) changed() bool {
	for _, f := range in.files {
		if f.wrote {
			return true
		}
	}
	return false
}

func (in *Install) validate() (bool, error) {
	if !in.changed() {
		return false, nil
	}
	out, code, err := in.runner.Run(in.ctx, in.layout.Validate)
	if err == nil && code == 0 {
		in.Validated = true
		return true, nil
	}
	verr := &ValidationError{Command: strings.Join(in.layout.Validate, " "), ExitCode: code, Output: out}
	if err != nil {
		verr.Output = err.Error()
	}
	verr.RollbackErr = in.Rollback()
	return true, verr
}

func (in *Install) reload() (bool, error) {
	if !in.changed() {
		return false, nil
	}
	running, err := in.reloader.Reload(in.ctx, in.layout.Unit)
	in.Running = running
	if err != nil {
		return false, fmt.Errorf("reloading %s: %w", in.layout.Unit, err)
	}
	in.Reloaded = running
	return running, nil
}

// Rollback puts every file the run changed back as it was, the last first.
func (in *Install) Rollback() error {
	var errs []error
	for i := len(in.files) - 1; i >= 0; i-- {
		if err := in.files[i].restore(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fileStep writes one file atomically and remembers what it replaced.
type fileStep struct {
	path    string
	verb    string // "" is "write"
	content func(prev []byte, existed bool) []byte
	pending bool
	// wrote: Apply replaced the file; prev/existed is what was there.
	wrote   bool
	prev    []byte
	existed bool
}

func (f *fileStep) Action() string {
	if f.verb != "" {
		return f.verb
	}
	return "write"
}
func (f *fileStep) Target() string { return f.path }

// read returns the file's current bytes, or existed false.
func (f *fileStep) read() (data []byte, existed bool, err error) {
	d, err := safefs.OpenDir(filepath.Dir(f.path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer d.Close()
	data, _, err = d.ReadFile(filepath.Base(f.path), maxConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

func (f *fileStep) want() (want, prev []byte, existed bool, err error) {
	prev, existed, err = f.read()
	if err != nil {
		return nil, nil, false, err
	}
	return f.content(prev, existed), prev, existed, nil
}

func (f *fileStep) Pending() (bool, error) {
	want, prev, existed, err := f.want()
	if err != nil {
		return false, err
	}
	f.pending = !existed || !bytes.Equal(want, prev)
	return f.pending, nil
}

func (f *fileStep) Apply() (bool, error) {
	want, prev, existed, err := f.want()
	if err != nil {
		return false, err
	}
	if existed && bytes.Equal(want, prev) {
		return false, nil
	}
	f.pending = true
	d, err := safefs.MkdirAll(filepath.Dir(f.path), 0o755)
	if err != nil {
		return false, err
	}
	defer d.Close()
	changed, err := d.WriteFile(filepath.Base(f.path), want, FileOptions)
	if err != nil {
		return false, err
	}
	f.wrote, f.prev, f.existed = changed, prev, existed
	return changed, nil
}

// restore puts back what Apply replaced: the previous bytes, or no file.
func (f *fileStep) restore() error {
	if !f.wrote {
		return nil
	}
	d, err := safefs.OpenDir(filepath.Dir(f.path))
	if err != nil {
		return err
	}
	defer d.Close()
	if f.existed {
		_, err = d.WriteFile(filepath.Base(f.path), f.prev, FileOptions)
	} else {
		err = d.Remove(filepath.Base(f.path))
	}
	if err == nil {
		f.wrote = false
	}
	return err
}
