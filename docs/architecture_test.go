// Package docs holds rdctl's design documents. Its test keeps
// ARCHITECTURE.md true to the code: every package under internal/ is in
// the layer table, and no package imports one of its own or a higher
// layer, so the import graph stays acyclic and points downwards.
package docs

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rdctl/rdctl/"

// tableRow matches a row of the layer table: | 3 | `internal/rotate` | ... |
var tableRow = regexp.MustCompile("^\\| (\\d+) \\| `(internal/[a-z0-9/]+)` \\|")

// layers reads the layer table of ARCHITECTURE.md.
func layers(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := tableRow.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[1])
			if _, dup := out[m[2]]; dup {
				t.Errorf("%s is in the layer table twice", m[2])
			}
			out[m[2]] = n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no layer table in ARCHITECTURE.md")
	}
	return out
}

// packages maps every package directory under ../internal (relative to the
// module root, e.g. "internal/rotate") to the module packages its non-test
// files import. A package nested in another (internal/hbbstest/standin)
// counts as part of its parent.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir("../internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, err := filepath.Rel("..", filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := topPackage(filepath.ToSlash(rel))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module+"internal/") {
				out[pkg] = append(out[pkg], topPackage(strings.TrimPrefix(p, module)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// topPackage is internal/<name> for any path below it.
func topPackage(p string) string {
	parts := strings.SplitN(p, "/", 3)
	if len(parts) < 2 {
		return p
	}
	return parts[0] + "/" + parts[1]
}

func TestEveryPackageIsDocumented(t *testing.T) {
	doc := layers(t)
	pkgs := packages(t)
	var missing, stale []string
	for p := range pkgs {
		if _, ok := doc[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range doc {
		if _, ok := pkgs[p]; !ok {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, p := range missing {
		t.Errorf("%s is not in ARCHITECTURE.md's layer table: add it with one line on what it owns", p)
	}
	for _, p := range stale {
		t.Errorf("ARCHITECTURE.md names %s, which does not exist", p)
	}
}

func TestNoPackageImportsUpwards(t *testing.T) {
	for _, v := range upwardImports(layers(t), packages(t)) {
		t.Error(v)
	}
}

// upwardImports lists every import of a package of the same or a higher
// layer than the importer's.
func upwardImports(doc map[string]int, pkgs map[string][]string) []string {
	var out []string
	for p, imps := range pkgs {
		for _, imp := range imps {
			if imp == p {
				continue // a nested package importing its parent
			}
			if doc[imp] >= doc[p] {
				out = append(out, fmt.Sprintf("%s (layer %d) imports %s (layer %d): a package may import only lower layers", p, doc[p], imp, doc[imp]))
			}
		}
	}
	sort.Strings(out)
	return out
}

// The checks above must be able to fail: a made-up upward import and a
// same-layer import are caught, a downward one is not.
func TestChecksCanFail(t *testing.T) {
	doc := map[string]int{"internal/low": 0, "internal/mid": 1, "internal/peer": 1}
	got := upwardImports(doc, map[string][]string{
		"internal/low":  {"internal/mid"},                  // upwards
		"internal/mid":  {"internal/low", "internal/peer"}, // fine, then sideways
		"internal/peer": {"internal/peer"},                 // itself: fine
	})
	if len(got) != 2 || !strings.HasPrefix(got[0], "internal/low (layer 0) imports internal/mid") || !strings.HasPrefix(got[1], "internal/mid (layer 1) imports internal/peer") {
		t.Errorf("upwardImports: %q", got)
	}
	if topPackage("internal/hbbstest/standin") != "internal/hbbstest" {
		t.Error("nested packages must count as their parent")
	}
	if m := tableRow.FindStringSubmatch("| 3 | `internal/rotate` | the rotation |"); m == nil || m[1] != "3" || m[2] != "internal/rotate" {
		t.Errorf("table row not recognised: %v", m)
	}
}
