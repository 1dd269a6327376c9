package adopt

import (
	"slices"
	"strings"
	"testing"
)

// quoteWord quotes w so that splitWords reads it back as one word.
func quoteWord(w string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(w) + `"`
}

// FuzzSplitWords: never panics, and words quoted by the systemd rules
// split back into exactly themselves.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`/usr/bin/hbbs -r a -k _`, `"KEY=a b" X=1`, `'a "b"' c\ d`, `a\`, `"`, "a\tb\nc", `\n\t\s`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quoteWord(w)
		}
		again, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q: words %q quoted and split again: %q, %v", s, words, again, err)
		}
	})
}

// FuzzParseEnvFile: never panics; names come out as written: non-empty,
// trimmed, without '=' or a line break; the exact and normalised lookups
// find every name they should.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"relay-servers=a:1\nKEY=_\n", "export KEY='x'\n# c\n", "A_B=\"unterminated\n", "=\n==\n", "key=_\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars := parseEnvFile(data)
		for _, v := range vars {
			if v.Name == "" || v.Name != strings.TrimSpace(v.Name) || strings.ContainsAny(v.Name, "=\n") {
				t.Fatalf("name %q", v.Name)
			}
			if _, ok := vars.exact(v.Name); !ok {
				t.Fatalf("%q not found by its exact name", v.Name)
			}
			if _, ok := vars.normalised(normKey(v.Name)); !ok {
				t.Fatalf("%q not found by its normalised name", v.Name)
			}
		}
	})
}

// FuzzLoadUnitData: the unit parser never panics on any file.
func FuzzParseUnit(f *testing.F) {
	f.Add([]byte(debianHBBS))
	f.Add([]byte("[Service]\nExecStart=/a \\\n  b\n"))
	f.Add([]byte("[Service\nx"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts, err := parseUnit(data)
		if err != nil {
			return
		}
		u := &UnitFile{opts: opts}
		u.Exec()
		u.Values("Service", "Environment")
	})
}
