package hbbstest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNotImportedByShippedCode fails when a non-test Go file outside this
// package imports it: the stand-in must never end up in the rdctl binary.
func TestNotImportedByShippedCode(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("module root not found")
	}
	self, _ := filepath.Abs(".")
	const path = "github.com/rdctl/rdctl/internal/hbbstest"
	fset := token.NewFileSet()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); p == self || name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return nil // someone else's file mid-edit
		}
		for _, imp := range f.Imports {
			if v, _ := strconv.Unquote(imp.Path.Value); v == path || strings.HasPrefix(v, path+"/") {
				t.Errorf("%s imports %s: the stand-in is test-only", p, v)
			}
		}
		return nil
	})
}
