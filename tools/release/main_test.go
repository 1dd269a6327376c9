package main

import (
	"bytes"
	"compress/gzip"
	"testing"
)

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":              "1.2.3",
		"1.2.3":               "1.2.3",
		"v1.2.3-4-gabcdef0":   "1.2.3+4.gabcdef0",
		"v1.2.3-rc1":          "1.2.3~rc1",
		"v1.2.3-dirty":        "1.2.3+dirty",
		"v1.2.3-4-gabc-dirty": "1.2.3+4.gabc+dirty",
		"ac6aed4":             "0.0.0+ac6aed4",
		"ac6aed4-dirty":       "0.0.0+ac6aed4+dirty",
	} {
		got := debVersion(in)
		if got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
		if !versionRE.MatchString(got) {
			t.Errorf("debVersion(%q) = %q is not a valid release version", in, got)
		}
	}
}

// gzipBytes writes no name and no time (gzip -n): same input, same bytes.
func TestGzipBytesDeterministic(t *testing.T) {
	a, err := gzipBytes([]byte("page"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := gzipBytes([]byte("page"))
	if !bytes.Equal(a, b) {
		t.Fatal("two compressions differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Fatalf("gzip header has name %q, time %v", zr.Name, zr.ModTime)
	}
}
