// Package plan is how every one of rdctl's mutating commands changes a
// system: it builds a Plan of Steps from validated input, then either prints
// it (--dry-run) or applies it under rdctl's lock. Both paths run the same
// steps, so "would …" output cannot drift from what apply does: a dry run
// calls only [Step.Pending], which must not change anything, and which
// fails for a step that cannot be applied (nothing staged, no key), so a dry
// run fails where the real run would.
//
// Both paths end in the same [Report] (action, target, before, after,
// changed per step), which is what --json prints for every mutating command.
//
// A Plan can be run once ([ErrUsed] after that), like restic's prune plan.
package plan

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/safefs"
)

// Step is one idempotent change.
type Step interface {
	// Action is the verb for output, e.g. "write", "create", "link".
	Action() string
	// Target is the path or object changed, for output.
	Target() string
	// Pending reports whether Apply would change anything. It never changes
	// anything.
	Pending() (bool, error)
	// Apply makes the change if needed and reports whether it did.
	Apply() (changed bool, err error)
}

// Detailer is implemented by steps that can say what their target holds
// before and after the change (a key's fingerprint, a unit's state). Plan
// calls it after Pending or Apply, so After may name what Apply produced.
type Detailer interface {
	Detail() (before, after string)
}

// Result is what happened to one step.
type Result struct {
	Action  string
	Target  string
	Before  string // what the target held, where the step can say
	After   string // what it holds (or, in a dry run, would hold)
	Changed bool   // applied (or, in a dry run, would be applied)
	DryRun  bool
}

// ErrUsed means the plan was already run.
var ErrUsed = errors.New("plan already run")

// Plan is an ordered list of steps. The zero value is an empty plan.
type Plan struct {
	steps   []Step
	used    bool
	results []Result // of the run in progress, for ChangedSoFar
}

// Add appends steps.
func (p *Plan) Add(s ...Step) { p.steps = append(p.steps, s...) }

// Steps returns the steps, for inspection.
func (p *Plan) Steps() []Step { return p.steps }

// Run applies every step in order, or with dryRun only asks each whether it
// would change anything. It stops at the first error and returns the results
// so far.
func (p *Plan) Run(dryRun bool) ([]Result, error) {
	if p.used {
		return nil, ErrUsed
	}
	p.used = true
	p.results = nil
	for _, s := range p.steps {
		r := Result{Action: s.Action(), Target: s.Target(), DryRun: dryRun}
		var err error
		if dryRun {
			r.Changed, err = s.Pending()
		} else {
			r.Changed, err = s.Apply()
		}
		if err != nil {
			return p.results, err
		}
		if d, ok := s.(Detailer); ok {
			r.Before, r.After = d.Detail()
		}
		p.results = append(p.results, r)
	}
	return p.results, nil
}

// ChangedSoFar reports whether a step run before the current one changed
// (or, in a dry run, would change) something. A later step uses it to act
// only on a change: a restart after new unit files, say.
func (p *Plan) ChangedSoFar() bool { return Changed(p.results) > 0 }

// Changed counts the results that changed something.
func Changed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Changed {
			n++
		}
	}
	return n
}

// WriteFile writes a file atomically (see safefs), creating missing parent
// directories with mode 0755.
type WriteFile struct {
	Path    string
	Data    []byte
	Options safefs.FileOptions
}

func (w *WriteFile) Action() string { return "write" }
func (w *WriteFile) Target() string { return w.Path }

func (w *WriteFile) Pending() (bool, error) {
	d, err := safefs.OpenDir(filepath.Dir(w.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	same, err := d.Unchanged(filepath.Base(w.Path), w.Data, w.Options)
	return !same, err
}

func (w *WriteFile) Apply() (bool, error) {
	d, err := safefs.MkdirAll(filepath.Dir(w.Path), 0o755)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(w.Path), w.Data, w.Options)
}

// Mkdir makes a directory with an exact mode and owner, fixing both on an
// existing one.
type Mkdir struct {
	Path     string
	Mode     fs.FileMode
	UID, GID int // safefs.KeepOwner leaves the owner alone
}

func (m *Mkdir) Action() string { return "create directory" }
func (m *Mkdir) Target() string { return m.Path }

func (m *Mkdir) Pending() (bool, error) {
	d, err := safefs.OpenDir(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	info, err := d.Stat()
	if err != nil {
		return false, err
	}
	return m.differs(info), nil
}

func (m *Mkdir) differs(info safefs.Info) bool {
	return info.Mode.Perm() != m.Mode.Perm() ||
		(m.UID != safefs.KeepOwner && info.UID != m.UID) ||
		(m.GID != safefs.KeepOwner && info.GID != m.GID)
}

func (m *Mkdir) Apply() (bool, error) {
	pending, err := m.Pending()
	if err != nil || !pending {
		return false, err
	}
	d, err := safefs.MkdirAll(m.Path, m.Mode)
	if err != nil {
		return false, err
	}
	defer d.Close()
	info, err := d.Stat()
	if err != nil {
		return false, err
	}
	if (m.UID != safefs.KeepOwner && info.UID != m.UID) || (m.GID != safefs.KeepOwner && info.GID != m.GID) {
		if err := d.Chown(m.UID, m.GID); err != nil {
			return false, err
		}
	}
	return true, d.Chmod(m.Mode)
}

// Symlink makes Path a symlink to LinkTarget, as `systemctl enable` makes
// the *.wants/ links.
type Symlink struct {
	Path       string
	LinkTarget string
}

func (s *Symlink) Action() string { return "link" }
func (s *Symlink) Target() string { return s.Path + " -> " + s.LinkTarget }

func (s *Symlink) Pending() (bool, error) {
	d, err := safefs.OpenDir(filepath.Dir(s.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	cur, err := d.Readlink(filepath.Base(s.Path))
	if err != nil {
		return true, nil
	}
	return cur != s.LinkTarget, nil
}

func (s *Symlink) Apply() (bool, error) {
	d, err := safefs.MkdirAll(filepath.Dir(s.Path), 0o755)
	if err != nil {
		return false, err
	}
	defer d.Close()
	return d.Symlink(s.LinkTarget, filepath.Base(s.Path))
}
