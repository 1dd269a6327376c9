package adopt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// UnitDirs are the system unit directories, highest precedence first, as
// systemd searches them: a file in /etc overrides the package's in /usr/lib
// or /lib.
var UnitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// rdctlHeader starts every unit file rdctl writes (internal/systemd).
const rdctlHeader = "# Written by rdctl"

// maxUnitSize caps how much of a unit or environment file is read.
const maxUnitSize = 1 << 20

// UnitFile is a unit as systemd would load it from disk: the first file
// found along [UnitDirs], then its drop-ins (<name>.d/*.conf from every
// directory, a same-named drop-in in a higher directory masking a lower one,
// applied in file-name order).
type UnitFile struct {
	// Name is the unit name, e.g. "rustdesk-hbbs.service".
	Name string `json:"name"`
	// Path is the main file's path on the system (not under the root).
	Path string `json:"path"`
	// DropIns are the drop-in files applied, in order (system paths).
	DropIns []string `json:"drop_ins,omitempty"`
	// Masked is true when the unit is linked to /dev/null (or empty), as
	// Debian's postrm leaves it after a package removal.
	Masked bool `json:"masked,omitempty"`
	// WrittenByRdctl is true when the main file carries rdctl's header.
	WrittenByRdctl bool `json:"written_by_rdctl"`

	opts []*unit.UnitOption
}

// under resolves an absolute system path under root ("" is the live system).
func under(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// readUnitFile reads a unit or drop-in file under root. A symlink is
// followed one level, resolved inside root (an absolute target names a
// path in the tree, as `systemctl --root` sees it); a link to /dev/null
// reports masked.
func readUnitFile(root, sysPath string) (data []byte, masked bool, err error) {
	p := under(root, sysPath)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return nil, false, err
		}
		if target == "/dev/null" {
			return nil, true, nil
		}
		if path.IsAbs(target) {
			p = under(root, target)
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
		if root != "" && root != "/" && !strings.HasPrefix(p, filepath.Clean(root)+string(filepath.Separator)) {
			return nil, false, fmt.Errorf("%s: links outside the root to %s", sysPath, target)
		}
		if fi, err = os.Stat(p); err != nil {
			return nil, false, err
		}
	}
	if !fi.Mode().IsRegular() {
		if fi.Mode()&fs.ModeCharDevice != 0 {
			return nil, true, nil // /dev/null itself
		}
		return nil, false, fmt.Errorf("%s: not a regular file", sysPath)
	}
	if fi.Size() > maxUnitSize {
		return nil, false, fmt.Errorf("%s: larger than %d bytes", sysPath, maxUnitSize)
	}
	data, err = os.ReadFile(p)
	if err != nil {
		return nil, false, err
	}
	return data, len(bytes.TrimSpace(data)) == 0, nil
}

// ErrNoUnit means no unit file of that name exists in any unit directory.
var ErrNoUnit = errors.New("no such unit file")

// LoadUnit finds and parses the unit name under root. It fails with an
// error matching ErrNoUnit (and fs.ErrNotExist) when there is none.
func LoadUnit(root, name string) (*UnitFile, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("invalid unit name %q", name)
	}
	u := &UnitFile{Name: name}
	for _, dir := range UnitDirs {
		sys := path.Join(dir, name)
		data, masked, err := readUnitFile(root, sys)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		u.Path, u.Masked = sys, masked
		if masked {
			return u, nil
		}
		u.WrittenByRdctl = bytes.HasPrefix(data, []byte(rdctlHeader))
		if u.opts, err = parseUnit(data); err != nil {
			return nil, fmt.Errorf("%s: %w", sys, err)
		}
		break
	}
	if u.Path == "" {
		return nil, fmt.Errorf("%s: %w", name, errNoUnit)
	}
	// Drop-ins: first directory wins per file name, applied by file name.
	byBase := map[string]string{}
	for _, dir := range UnitDirs {
		entries, err := os.ReadDir(under(root, path.Join(dir, name+".d")))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if _, seen := byBase[e.Name()]; !seen {
				byBase[e.Name()] = path.Join(dir, name+".d", e.Name())
			}
		}
	}
	bases := make([]string, 0, len(byBase))
	for b := range byBase {
		bases = append(bases, b)
	}
	sort.Strings(bases)
	for _, b := range bases {
		sys := byBase[b]
		data, masked, err := readUnitFile(root, sys)
		if err != nil {
			return nil, err
		}
		if masked {
			continue
		}
		opts, err := parseUnit(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sys, err)
		}
		u.opts = append(u.opts, opts...)
		u.DropIns = append(u.DropIns, sys)
	}
	return u, nil
}

// errNoUnit matches both ErrNoUnit and fs.ErrNotExist.
var errNoUnit = noUnitError{}

type noUnitError struct{}

func (noUnitError) Error() string { return ErrNoUnit.Error() }
func (noUnitError) Is(target error) bool {
	return target == ErrNoUnit || target == fs.ErrNotExist
}

// parseUnit deserializes a unit file with go-systemd and joins continuation
// lines the way systemd does (backslash-newline becomes a space).
func parseUnit(data []byte) ([]*unit.UnitOption, error) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		if strings.Contains(o.Value, "\\\n") {
			parts := strings.Split(o.Value, "\\\n")
			for i := range parts {
				if i > 0 {
					parts[i] = strings.TrimLeft(parts[i], " \t")
				}
			}
			o.Value = strings.Join(parts, " ")
		}
	}
	return opts, nil
}

// Value is the effective value of a single-valued setting: the last
// assignment wins, an empty one included. ok is false when it is never set.
func (u *UnitFile) Value(section, name string) (v string, ok bool) {
	for _, o := range u.opts {
		if o.Section == section && o.Name == name {
			v, ok = o.Value, true
		}
	}
	return v, ok
}

// Values is the effective list of a list setting (ExecStart=,
// Environment=, EnvironmentFile=): assignments accumulate and an empty
// assignment resets the list, as in drop-ins.
func (u *UnitFile) Values(section, name string) []string {
	var out []string
	for _, o := range u.opts {
		if o.Section == section && o.Name == name {
			if strings.TrimSpace(o.Value) == "" {
				out = nil
				continue
			}
			out = append(out, o.Value)
		}
	}
	return out
}

// Exec is the unit's effective ExecStart= split into words, with the
// executable prefixes (@ - : + !) removed from the first. It is nil when
// there is no ExecStart=.
func (u *UnitFile) Exec() ([]string, error) {
	vs := u.Values("Service", "ExecStart")
	if len(vs) == 0 {
		return nil, nil
	}
	// Type=simple allows one; systemd refuses more, take the last.
	return splitExec(vs[len(vs)-1])
}

// splitExec splits an ExecStart= value and strips its prefixes.
func splitExec(v string) ([]string, error) {
	words, err := splitWords(v)
	if err != nil || len(words) == 0 {
		return nil, err
	}
	words[0] = strings.TrimLeft(words[0], "@-:+!")
	if words[0] == "" {
		words = words[1:]
	}
	if len(words) == 0 {
		return nil, errors.New("ExecStart= names no program")
	}
	return words, nil
}

// splitWords splits a systemd value into words: whitespace separates, double
// and single quotes group, and a backslash escapes the next character (\n,
// \t, \s and \\ have their C meanings; others stand for themselves).
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("trailing backslash")
			}
			i++
			switch rs[i] {
			case 'n':
				cur.WriteRune('\n')
			case 't':
				cur.WriteRune('\t')
			case 's':
				cur.WriteRune(' ')
			default:
				cur.WriteRune(rs[i])
			}
			in = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
