package compose

import (
	"context"
	"path"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Load parses and validates compose file bytes with compose-go's loader
// (schema validation, normalization, consistency checks), as Docker Compose
// itself would read the file at path with project name project. Nothing is
// interpolated from rdctl's environment. It lives in the tests: the loader's
// schema package compiles JSON schemas at init, which rdctl's binary must not
// pay at every start; Render's own read-back check runs in the binary.
func Load(ctx context.Context, file string, data []byte, project string) (*types.Project, error) {
	details := types.ConfigDetails{
		WorkingDir:  path.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: data}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(project, true)
		o.SkipInclude = true
		o.SkipExtends = true
		o.ResolvePaths = true
	})
}

// normalizeProjectName is compose-go's rule, byte for byte.
func FuzzNormalizeProjectName(f *testing.F) {
	for _, s := range []string{"RustDesk_Server", "-_a", "Ä-b", "x y", "", "İstanbul", "rustdesk-server"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := normalizeProjectName(s), loader.NormalizeProjectName(s); got != want {
			t.Fatalf("normalizeProjectName(%q) = %q, compose-go says %q", s, got, want)
		}
	})
}

// readBack refuses what rdctl never writes and reads what it writes.
func TestReadBackStrict(t *testing.T) {
	for name, y := range map[string]string{
		"unknown attribute": "services:\n  hbbs:\n    image: x\n    imagee: y\n",
		"bad command type":  "services:\n  hbbs:\n    command: {a: 1}\n",
		"bad port":          "services:\n  hbbs:\n    ports: [{target: -1}]\n",
		"not yaml":          "services: [\n",
	} {
		if _, err := readBack([]byte(y)); err == nil {
			t.Errorf("%s: read back", name)
		}
	}
}
