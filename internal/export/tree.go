package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

// FileOptions is how every exported file is written: 0644, owned by
// whoever runs rdctl. The files hold only public values and are meant to be
// copied onto media and into images.
var FileOptions = safefs.FileOptions{Mode: 0o644, UID: safefs.KeepOwner, GID: safefs.KeepOwner}

// DirMode is the mode of the directories the tree lays out.
const DirMode fs.FileMode = 0o755

// File is one file of an export. Its JSON form (path, format, changed) is
// what export --json and rotate --json list.
type File struct {
	Path    string `json:"path"`             // as given: the output file, or the tree's directory joined with Rel
	Format  string `json:"format,omitempty"` // the clientconf format it holds; "" for installer-name.txt and README.txt
	Changed bool   `json:"changed"`          // set from the plan's report by SetChanged
	Rel     string `json:"-"`                // slash-separated path in the tree ("" for a single file)
	Data    []byte `json:"-"`
}

// Tree is the provisioning tree of --format all, rendered and checked.
type Tree struct {
	Files []File
	// LicensedOnly says why installer-name.txt holds only the licensed
	// name ("" when it holds the host= name too).
	LicensedOnly string
}

// Tree renders the provisioning tree to be laid out in dir. README.txt is
// last so that, written in this order, its presence means the rest is
// there.
func (c Config) Tree(dir string) (Tree, error) {
	rendered := map[clientconf.Format][]byte{}
	for _, f := range []clientconf.Format{clientconf.FormatTOML, clientconf.FormatServerConf, clientconf.FormatPS1,
		clientconf.FormatString, clientconf.FormatExeNameLicensed, clientconf.FormatQR} {
		data, err := c.Output(f)
		if err != nil {
			return Tree{}, err
		}
		rendered[f] = data
	}
	// The host= name is readable and survives a " (1)" rename; when the
	// values cannot be in it, the licensed name is the only one. Its
	// FileNameError is expected here, not an error.
	var t Tree
	names := string(rendered[clientconf.FormatExeNameLicensed])
	if n, err := ClientConfRender(clientconf.FormatExeName, c.Server, clientconf.Options{}); err == nil {
		names = string(n) + "\n" + names
	} else if errors.As(err, new(*clientconf.FileNameError)) {
		t.LicensedOnly = err.Error()
	} else {
		return Tree{}, err
	}
	win := func(name string) string { return path.Join("windows/rustdesk", name) }
	entries := []struct {
		rel    string
		format clientconf.Format
		data   []byte
	}{
		{win(clientconf.TOMLFileName), clientconf.FormatTOML, rendered[clientconf.FormatTOML]},
		{win(clientconf.ServerConfFileName), clientconf.FormatServerConf, rendered[clientconf.FormatServerConf]},
		{win(clientconf.PS1FileName), clientconf.FormatPS1, rendered[clientconf.FormatPS1]},
		{path.Join("linux", clientconf.TOMLFileName), clientconf.FormatTOML, rendered[clientconf.FormatTOML]},
		{path.Join("macos", clientconf.TOMLFileName), clientconf.FormatTOML, rendered[clientconf.FormatTOML]},
		{"config-string.txt", clientconf.FormatString, rendered[clientconf.FormatString]},
		{"installer-name.txt", "", []byte(names)},
		{clientconf.QRFileName, clientconf.FormatQR, rendered[clientconf.FormatQR]},
		{"README.txt", "", c.readme(t.LicensedOnly)},
	}
	for _, en := range entries {
		t.Files = append(t.Files, File{Path: filepath.Join(dir, filepath.FromSlash(en.rel)), Format: string(en.format), Rel: en.rel, Data: en.data})
	}
	return t, nil
}

// TargetProblem is why an output path is refused.
type TargetProblem int

const (
	// TargetNoParent: a single file's directory does not exist.
	TargetNoParent TargetProblem = iota + 1
	// TargetSymlink: rdctl never writes through a symlink.
	TargetSymlink
	// TargetNotDir: the tree's target exists and is not a directory.
	TargetNotDir
	// TargetIsDir: a single file's target is a directory.
	TargetIsDir
	// TargetNotRegular: a single file's target is a device, FIFO or socket.
	TargetNotRegular
)

// TargetError refuses an output path.
type TargetError struct {
	Path    string
	Problem TargetProblem
}

func (e *TargetError) Error() string {
	switch e.Problem {
	case TargetNoParent:
		return fmt.Sprintf("%q: the directory %q does not exist", e.Path, filepath.Dir(e.Path))
	case TargetSymlink:
		return fmt.Sprintf("%q is a symbolic link; rdctl never writes through one", e.Path)
	case TargetNotDir:
		return fmt.Sprintf("%q is not a directory", e.Path)
	case TargetIsDir:
		return fmt.Sprintf("%q is a directory", e.Path)
	}
	return fmt.Sprintf("%q is not a regular file", e.Path)
}

// CheckTarget refuses an output path that rdctl would not replace: a
// symlink, or anything but a regular file (a directory with dir, for the
// tree). A missing path is fine; for a single file its directory must
// exist, since a typo there should not grow a directory tree.
func CheckTarget(p string, dir bool) error {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !dir {
			if pfi, err := os.Stat(filepath.Dir(p)); err != nil || !pfi.IsDir() {
				return &TargetError{Path: p, Problem: TargetNoParent}
			}
		}
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return &TargetError{Path: p, Problem: TargetSymlink}
	case dir && !fi.IsDir():
		return &TargetError{Path: p, Problem: TargetNotDir}
	case !dir && fi.IsDir():
		return &TargetError{Path: p, Problem: TargetIsDir}
	case !dir && !fi.Mode().IsRegular():
		return &TargetError{Path: p, Problem: TargetNotRegular}
	}
	return nil
}

// FilePlan is the step that writes one output file atomically, after
// checking its target (a *TargetError).
func FilePlan(f File) (plan.Step, error) {
	if err := CheckTarget(f.Path, false); err != nil {
		return nil, err
	}
	return &plan.WriteFile{Path: f.Path, Data: f.Data, Options: FileOptions}, nil
}

// TreePlan is the steps that lay out files (from [Config.Tree]) in dir,
// after checking dir (a *TargetError): dir itself if missing, each of the
// tree's directories before its first file, then each file, atomically and
// in order. The tree's own directories are opened without following
// symlinks and get mode 0755, so the media is readable wherever it is
// copied; dir is the operator's and keeps its mode (it may be the root of a
// FAT file system that refuses chmod).
func TreePlan(dir string, files []File) ([]plan.Step, error) {
	if err := CheckTarget(dir, true); err != nil {
		return nil, err
	}
	steps := []plan.Step{topDir(dir)}
	made := map[string]bool{".": true}
	var mkdir func(rel string)
	mkdir = func(rel string) {
		if made[rel] {
			return
		}
		mkdir(path.Dir(rel))
		made[rel] = true
		steps = append(steps, &plan.Mkdir{Path: filepath.Join(dir, filepath.FromSlash(rel)), Mode: DirMode, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
	}
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Rel)) || strings.Contains(f.Rel, `\`) {
			return nil, fmt.Errorf("export: %q is not a path inside the tree", f.Rel)
		}
		mkdir(path.Dir(f.Rel))
		steps = append(steps, &plan.WriteFile{Path: filepath.Join(dir, filepath.FromSlash(f.Rel)), Data: f.Data, Options: FileOptions})
	}
	return steps, nil
}

// topDir creates the tree's directory if it is missing and leaves an
// existing one as it is (plan.Mkdir would fix its mode).
func topDir(dir string) plan.Step {
	missing := func() (bool, error) {
		_, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	return &plan.Func{
		Verb: "create directory", Object: dir,
		Check: missing,
		Do: func() (bool, error) {
			if m, err := missing(); err != nil || !m {
				return false, err
			}
			d, err := safefs.MkdirAll(dir, DirMode)
			if err != nil {
				return false, err
			}
			return true, d.Close()
		},
	}
}

// SetChanged marks the files whose write step changed (or, in a dry run,
// would change) something in the report of their plan.
func SetChanged(files []File, r plan.Report) {
	changed := map[string]bool{}
	for _, s := range r.Steps {
		if s.Action == (&plan.WriteFile{}).Action() {
			changed[s.Target] = s.Changed
		}
	}
	for i := range files {
		files[i].Changed = changed[files[i].Path]
	}
}

// Output is an export rendered, checked and planned.
type Output struct {
	Files []File      // one file, or the tree
	Steps []plan.Step // what writes them; none for stdout
	// LicensedOnly: see [Tree].
	LicensedOnly string
}

// Build renders format (a clientconf format or FormatAll) and plans its
// writes: to the file out, to the tree in the directory out, or with out ""
// to nothing (the caller prints Files[0].Data). Everything is rendered,
// and so checked, before any step exists; out is checked as CheckTarget
// does.
func (c Config) Build(format, out string) (Output, error) {
	if format == FormatAll {
		t, err := c.Tree(out)
		if err != nil {
			return Output{}, err
		}
		steps, err := TreePlan(out, t.Files)
		if err != nil {
			return Output{}, err
		}
		return Output{Files: t.Files, Steps: steps, LicensedOnly: t.LicensedOnly}, nil
	}
	data, err := c.Output(clientconf.Format(format))
	if err != nil {
		return Output{}, err
	}
	o := Output{Files: []File{{Path: out, Format: format, Data: data}}}
	if out == "" {
		return o, nil
	}
	step, err := FilePlan(o.Files[0])
	if err != nil {
		return Output{}, err
	}
	o.Steps = []plan.Step{step}
	return o, nil
}

// Run runs an export's steps, or with dryRun only asks each what it would
// do, and reports as every mutating command does. A real run asks every
// step first, so that what a dry run refuses (a symlinked directory in the
// tree) fails before the first file is written. It takes no lock: the
// caller decides (export writes only the operator's own files).
func Run(steps []plan.Step, dryRun bool) (plan.Report, error) {
	for i := 0; !dryRun && i < len(steps); i++ {
		if _, err := steps[i].Pending(); err != nil {
			return plan.NewReport(nil, false), err
		}
	}
	var p plan.Plan
	p.Add(steps...)
	rs, err := p.Run(dryRun)
	return plan.NewReport(rs, dryRun), err
}
