package compose

import (
	"context"
	"path"
	"reflect"
	"strings"
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

func TestServiceEnvironments(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       map[string][]string
		err        bool
	}{
		{"map", "services:\n  hbbr:\n    image: x\n    environment:\n      LIMIT_SPEED: 400Mb/s\n      EMPTY:\n      N: 3\n", map[string][]string{"hbbr": {"LIMIT_SPEED=400Mb/s", "N=3"}}, false},
		{"list", "services:\n  hbbs:\n    environment:\n      - RUST_LOG=debug\n      - FROM_CALLER\n      - A=b=c\n", map[string][]string{"hbbs": {"A=b=c", "RUST_LOG=debug"}}, false},
		{"none", "services:\n  hbbs:\n    image: x\n    x-anything: {a: 1}\n", map[string][]string{"hbbs": nil}, false},
		{"nested value", "services:\n  hbbs:\n    environment:\n      A: [1, 2]\n", nil, true},
		{"scalar", "services:\n  hbbs:\n    environment: oops\n", nil, true},
		{"not yaml", "services: [\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ServiceEnvironments([]byte(tc.yaml))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzServiceEnvironments(f *testing.F) {
	f.Add([]byte("services:\n  hbbs:\n    environment:\n      - A=1\n"))
	f.Add([]byte("services:\n  hbbr:\n    environment:\n      A: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		envs, err := ServiceEnvironments(data)
		if err != nil {
			return
		}
		for _, env := range envs {
			for _, kv := range env {
				if !strings.Contains(kv, "=") {
					t.Fatalf("entry %q has no =", kv)
				}
			}
		}
	})
}
