package clientconf

import (
	"bytes"
	"errors"
	"github.com/rdctl/rdctl/internal/golden"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

var update = golden.Update

// goldenCases are the servers whose outputs are kept under
// testdata/golden/<dir>/, one file per format. A format that refuses a
// server (the host= file name for a host:port relay, say) has a <file>.err
// holding the error text instead.
var goldenCases = []struct {
	dir string
	s   Server
}{
	{"vector-a", vectorA},
	{"vector-b", vectorB},
	{"vector-c", vectorC},
	{"relay", Server{Host: "rd.example.com", Relay: "relay.example.com", Key: refKey}},
	// behind a TLS reverse proxy: allow-websocket, only where it fits
	{"websocket", Server{Host: "rd.example.com", API: "https://rd.example.com", Key: refKey, AllowWebSocket: true}},
}

// goldenFiles names each format's golden file, as in the provisioning tree
// where the names coincide.
var goldenFiles = map[Format]string{
	FormatTOML:            TOMLFileName,
	FormatServerConf:      ServerConfFileName,
	FormatString:          "config-string.txt",
	FormatExeName:         "installer-name.txt",
	FormatExeNameLicensed: "installer-name-licensed.txt",
	FormatJSON:            "export.json",
	FormatPS1:             PS1FileName,
	FormatQR:              QRFileName,
}

const goldenFingerprint = "test-fingerprint"

func TestGolden(t *testing.T) {
	if len(goldenFiles) != len(Formats) {
		t.Fatalf("goldenFiles covers %d formats, there are %d", len(goldenFiles), len(Formats))
	}
	for _, gc := range goldenCases {
		for _, f := range Formats {
			path := filepath.Join("testdata", "golden", gc.dir, goldenFiles[f])
			out, err := Render(f, gc.s, Options{Fingerprint: goldenFingerprint})
			want, other := path, path+".err"
			if err != nil {
				out, want, other = []byte(err.Error()+"\n"), path+".err", path
			}
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(want, out, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(other); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
				continue
			}
			golden, rerr := os.ReadFile(want)
			if rerr != nil {
				t.Errorf("%s %s: %v (run go test ./internal/clientconf -update)", gc.dir, f, rerr)
				continue
			}
			if !bytes.Equal(out, golden) {
				t.Errorf("%s %s differs from %s (run go test ./internal/clientconf -update if intended):\n got %q\nwant %q", gc.dir, f, want, out, golden)
			}
			if _, err := os.Stat(other); err == nil {
				t.Errorf("stale golden file %s", other)
			}
			// The golden file itself decodes: a reviewer can trust what
			// they read there.
			if err == nil {
				if err := Verify(f, gc.s, Options{Fingerprint: goldenFingerprint}, golden); err != nil {
					t.Errorf("golden %s: %v", want, err)
				}
			}
		}
	}
}
