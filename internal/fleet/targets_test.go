package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t testing.TB, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "targets.txt")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, file string
		args       []string
		want       []string // target names
		wantErr    any
		line       int
	}{
		{name: "args and file, repeats dropped", args: []string{"127.0.0.1", "127.0.0.2:31116"},
			file: "# fleet\n127.0.0.1\n\n[::1]:21116  # v6\n", want: []string{"127.0.0.1", "127.0.0.2:31116", "[::1]:21116"}},
		{name: "two on a line", file: "127.0.0.1 127.0.0.2\n", wantErr: &FileError{}, line: 1},
		{name: "bad target in the file", file: "127.0.0.1\nbad host\n", wantErr: &FileError{}, line: 2},
		{name: "line too long", file: "127.0.0.1\n" + strings.Repeat("a", MaxLine+1) + "\n", wantErr: &FileError{}, line: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := ""
			if c.file != "" {
				file = writeFile(t, c.file)
			}
			got, err := Parse(c.args, file)
			if c.wantErr != nil {
				var fe *FileError
				if !errors.As(err, &fe) || fe.Line != c.line {
					t.Fatalf("err %v, want a FileError at line %d", err, c.line)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tg := range got {
				names = append(names, tg.Name)
			}
			if strings.Join(names, " ") != strings.Join(c.want, " ") {
				t.Errorf("got %v, want %v", names, c.want)
			}
		})
	}
}

func TestTooMany(t *testing.T) {
	lines := make([]string, MaxTargets+1)
	for i := range lines {
		lines[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	ts, err := Parse(nil, writeFile(t, strings.Join(lines[:MaxTargets], "\n")))
	if err != nil || len(ts) != MaxTargets {
		t.Fatalf("%d targets: %v", len(ts), err)
	}
	_, err = Parse(nil, writeFile(t, strings.Join(lines, "\n")))
	var tm *TooManyError
	var fe *FileError
	if !errors.As(err, &tm) || tm.Max != MaxTargets || !errors.As(err, &fe) || fe.Line != MaxTargets+1 {
		t.Fatalf("err %v", err)
	}
}

// FuzzParse: any file content parses or fails with a typed error, never
// panics, and never yields more than MaxTargets targets.
func FuzzParse(f *testing.F) {
	f.Add("127.0.0.1\n# c\n[::1]:21116\n")
	f.Add("a b\n")
	f.Add(strings.Repeat("x", MaxLine+2))
	f.Fuzz(func(t *testing.T, data string) {
		ts, err := Parse(nil, writeFile(t, data))
		if len(ts) > MaxTargets {
			t.Fatalf("%d targets", len(ts))
		}
		var fe *FileError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
