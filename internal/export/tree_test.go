package export

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/plan"
)

// treeCases are the configurations whose README.txt and installer-name.txt
// are kept under testdata/golden/<name>/.
func treeCases(t *testing.T) []struct {
	name string
	src  Source
} {
	nice, slash := pair(t, 1), pair(t, 0)
	if strings.Contains(nice.PublicBase64(), "/") || !strings.Contains(slash.PublicBase64(), "/") {
		t.Fatalf("the fixed keys no longer have the shapes the cases need: %s %s", nice.PublicBase64(), slash.PublicBase64())
	}
	key := func(p interface {
		PublicBase64() string
		Fingerprint() string
	}) PublicKey {
		return PublicKey{Key: p.PublicBase64(), Fingerprint: p.Fingerprint()}
	}
	hybrid := Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com"), Relay: hp(t, "rd.example.com:21117"), Tailnet: hp(t, "rd.tail1234.ts.net")}, PublicKey: key(nice)}
	profile := func(p Profile) Source {
		s, err := hybrid.ForProfile(p, "/etc/rdctl/rdctl.toml")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	proxied := Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com"), Relay: hp(t, "rd.example.com:21117")}, PublicKey: key(nice)}
	if _, err := proxied.ForProxy("rd.example.com"); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		src  Source
	}{
		{"profile-public", profile(ProfilePublic)},
		{"profile-tailnet", profile(ProfileTailnet)},
		{"live", Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com"), Relay: hp(t, "rd.example.com:21117")}, PublicKey: key(nice)}},
		{"staged", Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com")}, PublicKey: key(nice), Staged: true}},
		{"slash-key", Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com")}, PublicKey: key(slash)}},
		{"relay-api", Source{Endpoints: Endpoints{ID: hp(t, "203.0.113.10"), Relay: hp(t, "relay.example.com:21117"), API: "https://api.example.com"}, PublicKey: key(nice)}},
		{"proxied", proxied},
	}
}

// wantTree is the tree's layout, in the order it is written: README.txt
// last, so that its presence means the rest is there.
var wantTree = []struct {
	rel    string
	format clientconf.Format
}{
	{"windows/rustdesk/RustDesk2.toml", clientconf.FormatTOML},
	{"windows/rustdesk/server.conf", clientconf.FormatServerConf},
	{"windows/rustdesk/install-config.ps1", clientconf.FormatPS1},
	{"linux/RustDesk2.toml", clientconf.FormatTOML},
	{"macos/RustDesk2.toml", clientconf.FormatTOML},
	{"config-string.txt", clientconf.FormatString},
	{"installer-name.txt", ""},
	{"config-qr.png", clientconf.FormatQR},
	{"README.txt", ""},
}

// TestTreeGolden checks the tree's layout, that every format file is
// exactly the single-format output, and README.txt and installer-name.txt
// against golden files (go test -update rewrites them).
func TestTreeGolden(t *testing.T) {
	for _, tc := range treeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.src.Config()
			if err != nil {
				t.Fatal(err)
			}
			tree, err := cfg.Tree("media")
			if err != nil {
				t.Fatal(err)
			}
			if len(tree.Files) != len(wantTree) {
				t.Fatalf("%d files, want %d", len(tree.Files), len(wantTree))
			}
			for i, f := range tree.Files {
				w := wantTree[i]
				if f.Rel != w.rel || f.Format != string(w.format) || f.Path != filepath.Join("media", w.rel) {
					t.Errorf("file %d: %s %q %q, want %s %q", i, f.Path, f.Rel, f.Format, w.rel, w.format)
				}
				if w.format != "" {
					single, err := cfg.Output(w.format)
					if err != nil || !bytes.Equal(single, f.Data) {
						t.Errorf("%s differs from --format %s (%v)", f.Rel, w.format, err)
					}
				}
				if f.Rel != "README.txt" && f.Rel != "installer-name.txt" {
					continue
				}
				path := filepath.Join("testdata", "golden", tc.name, f.Rel)
				if *update {
					os.MkdirAll(filepath.Dir(path), 0o755)
					if err := os.WriteFile(path, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", f.Rel, path, f.Data)
				}
			}
			// The host= name is there exactly when the values fit in it.
			_, hostErr := clientconf.Render(clientconf.FormatExeName, cfg.Server, clientconf.Options{})
			if (hostErr == nil) != (tree.LicensedOnly == "") {
				t.Errorf("LicensedOnly %q, but the host= name renders with error %v", tree.LicensedOnly, hostErr)
			}
			for _, f := range tree.Files {
				if f.Format == "" && bytes.ContainsFunc(f.Data, func(r rune) bool { return r > 0x7e }) {
					t.Errorf("%s is not ASCII", f.Rel)
				}
			}
		})
	}
}

// TestMismatchFailsBeforeAnyStep: a round-trip mismatch in any one format
// fails the whole build with clientconf's typed error, so no plan exists
// and nothing can be written.
func TestMismatchFailsBeforeAnyStep(t *testing.T) {
	cfg, err := treeCases(t)[0].src.Config()
	if err != nil {
		t.Fatal(err)
	}
	saved := ClientConfRender
	defer func() { ClientConfRender = saved }()
	for _, bad := range clientconf.Formats {
		ClientConfRender = func(f clientconf.Format, s clientconf.Server, o clientconf.Options) ([]byte, error) {
			if f == bad {
				return nil, &clientconf.MismatchError{Format: f, Want: s, Detail: "injected by the test"}
			}
			return saved(f, s, o)
		}
		dir := t.TempDir()
		for _, c := range []struct{ format, out string }{{FormatAll, filepath.Join(dir, "media")}, {string(bad), filepath.Join(dir, "one")}, {string(bad), ""}} {
			if c.format == string(clientconf.FormatJSON) {
				continue // the json format is built by Config.JSON
			}
			o, err := cfg.Build(c.format, c.out)
			var mm *clientconf.MismatchError
			if bad != clientconf.FormatJSON && (!errors.As(err, &mm) || len(o.Steps) != 0) {
				t.Errorf("%s breaks, Build(%s, %q): %d steps, %v", bad, c.format, c.out, len(o.Steps), err)
			}
		}
		if _, err := cfg.JSON(); (bad == clientconf.FormatJSON) != (err != nil) {
			t.Errorf("%s breaks, JSON: %v", bad, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("Build wrote %v", ents)
		}
	}
}

// snapshot lists every path under root with its mode and contents.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			t.Fatal(err)
		}
		fi, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			v += " " + string(data)
		}
		m[p] = v
		return nil
	})
	return m
}

// runPlan runs steps as rdctl export does and returns the report.
func runPlan(t *testing.T, steps []plan.Step, dry bool) plan.Report {
	t.Helper()
	r, err := Run(steps, dry)
	if err != nil {
		t.Fatalf("dry=%v: %v", dry, err)
	}
	return r
}

// TestTreePlan: a dry run changes nothing and lists the same steps as the
// real run; the files are 0644, the tree's directories 0755 while the
// target directory keeps its own mode; a second run changes nothing, and a
// file edited by hand is the only one rewritten.
func TestTreePlan(t *testing.T) {
	cfg, err := treeCases(t)[0].src.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "media")
		if existing {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		o, err := cfg.Build(FormatAll, dir)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, filepath.Dir(dir))
		dry := runPlan(t, o.Steps, true)
		if after := snapshot(t, filepath.Dir(dir)); !reflect.DeepEqual(before, after) {
			t.Fatalf("the dry run changed the tree:\n%v\n%v", before, after)
		}
		if got, want := dry.ChangedCount(), len(o.Steps)-map[bool]int{true: 1, false: 0}[existing]; got != want {
			t.Errorf("existing=%v: the dry run would change %d steps, want %d", existing, got, want)
		}
		o2, _ := cfg.Build(FormatAll, dir)
		real := runPlan(t, o2.Steps, false)
		if len(real.Steps) != len(dry.Steps) {
			t.Fatalf("dry run %d steps, real run %d", len(dry.Steps), len(real.Steps))
		}
		for i := range real.Steps {
			d, r := dry.Steps[i], real.Steps[i]
			if d.Action != r.Action || d.Target != r.Target || d.Changed != r.Changed {
				t.Errorf("step %d: dry %+v, real %+v", i, d, r)
			}
		}
		SetChanged(o2.Files, real)
		for _, f := range o2.Files {
			if !f.Changed {
				t.Errorf("%s not marked changed", f.Rel)
			}
			fi, err := os.Lstat(f.Path)
			if err != nil || fi.Mode() != 0o644 {
				t.Errorf("%s: %v %v", f.Path, fi.Mode(), err)
			}
			for d := filepath.Dir(f.Path); d != dir; d = filepath.Dir(d) {
				if fi, err := os.Lstat(d); err != nil || fi.Mode() != fs.ModeDir|0o755 {
					t.Errorf("%s: %v %v", d, fi.Mode(), err)
				}
			}
		}
		wantTop := map[bool]fs.FileMode{true: 0o700, false: 0o755}[existing]
		if fi, err := os.Lstat(dir); err != nil || fi.Mode().Perm() != wantTop {
			t.Errorf("existing=%v: %s is %v, want %v", existing, dir, fi.Mode(), wantTop)
		}

		edited := filepath.Join(dir, "linux", "RustDesk2.toml")
		os.WriteFile(edited, []byte("[options]\n"), 0o644)
		o3, _ := cfg.Build(FormatAll, dir)
		again := runPlan(t, o3.Steps, false)
		SetChanged(o3.Files, again)
		for _, f := range o3.Files {
			if f.Changed != (f.Path == edited) {
				t.Errorf("second run: %s changed=%v", f.Rel, f.Changed)
			}
		}
		if again.ChangedCount() != 1 {
			t.Errorf("second run changed %d steps, want 1", again.ChangedCount())
		}
	}
}

// TestTreePlanRefusesSymlinks: the target and the tree's own directories
// are never followed through a symlink; a symlinked subdirectory fails the
// dry run as it fails the real run, and the real run writes nothing at all.
func TestTreePlanRefusesSymlinks(t *testing.T) {
	cfg, err := treeCases(t)[0].src.Config()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	elsewhere := filepath.Join(base, "elsewhere")
	os.Mkdir(elsewhere, 0o755)
	os.Symlink(elsewhere, filepath.Join(base, "link"))
	var te *TargetError
	if _, err := cfg.Build(FormatAll, filepath.Join(base, "link")); !errors.As(err, &te) || te.Problem != TargetSymlink {
		t.Errorf("a symlinked target: %v", err)
	}
	media := filepath.Join(base, "media")
	os.Mkdir(media, 0o755)
	os.Symlink(elsewhere, filepath.Join(media, "linux"))
	for _, dry := range []bool{true, false} {
		o, err := cfg.Build(FormatAll, media)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(o.Steps, dry); err == nil {
			t.Errorf("dry=%v: a symlinked linux/ was accepted", dry)
		}
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("written through the symlink: %v", ents)
	}
	// Run asks every step before applying any: windows/, which comes
	// before linux/, was not made either.
	if ents, _ := os.ReadDir(media); len(ents) != 1 {
		t.Errorf("a refused tree was half written: %v", ents)
	}
}

func TestTreePlanRejectsPathsOutsideTheTree(t *testing.T) {
	for _, rel := range []string{"../x", "/etc/x", "", `a\..\..\x`} {
		if _, err := TreePlan(t.TempDir(), []File{{Rel: rel, Data: []byte("x")}}); err == nil {
			t.Errorf("%q accepted", rel)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	os.Symlink(file, filepath.Join(dir, "link"))
	for _, c := range []struct {
		path string
		dir  bool
		want TargetProblem // 0: accepted
	}{
		{filepath.Join(dir, "new"), false, 0},
		{filepath.Join(dir, "new"), true, 0},
		{filepath.Join(dir, "no/new"), true, 0},
		{filepath.Join(dir, "no/new"), false, TargetNoParent},
		{file, false, 0},
		{file, true, TargetNotDir},
		{dir, true, 0},
		{dir, false, TargetIsDir},
		{filepath.Join(dir, "link"), false, TargetSymlink},
		{filepath.Join(dir, "link"), true, TargetSymlink},
		{os.DevNull, false, TargetNotRegular},
	} {
		err := CheckTarget(c.path, c.dir)
		var te *TargetError
		switch {
		case c.want == 0 && err != nil:
			t.Errorf("%s dir=%v: %v", c.path, c.dir, err)
		case c.want != 0 && (!errors.As(err, &te) || te.Problem != c.want || te.Path != c.path):
			t.Errorf("%s dir=%v: %v, want problem %d", c.path, c.dir, err, c.want)
		}
	}
}

// TestBuildOneFormat: stdout needs no plan; a file is one write step; the
// single-line formats end in a line break, the others as rendered.
func TestBuildOneFormat(t *testing.T) {
	cfg, err := treeCases(t)[0].src.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range clientconf.Formats {
		raw, err := clientconf.Render(f, cfg.Server, clientconf.Options{Fingerprint: cfg.Fingerprint})
		if err != nil {
			t.Fatal(err)
		}
		if IsLine(f) {
			raw = append(raw, '\n')
		}
		o, err := cfg.Build(string(f), "")
		if err != nil || len(o.Steps) != 0 || len(o.Files) != 1 || !bytes.Equal(o.Files[0].Data, raw) {
			t.Errorf("%s to stdout: %d steps, %v", f, len(o.Steps), err)
		}
		out := filepath.Join(t.TempDir(), "out")
		o, err = cfg.Build(string(f), out)
		if err != nil || len(o.Steps) != 1 || o.Steps[0].Action() != "write" || o.Steps[0].Target() != out {
			t.Fatalf("%s to a file: %v", f, err)
		}
		rep := runPlan(t, o.Steps, false)
		SetChanged(o.Files, rep)
		if data, _ := os.ReadFile(out); !bytes.Equal(data, raw) || !o.Files[0].Changed {
			t.Errorf("%s: wrote %q, changed=%v", f, data, o.Files[0].Changed)
		}
	}
}

// --profile all: one tree per client population, public/ then tailnet/,
// each exactly the tree of its profile, laid out by one plan.
func TestBuildProfiles(t *testing.T) {
	var pcs []ProfileConfig
	for _, tc := range treeCases(t) {
		if p, ok := strings.CutPrefix(tc.name, "profile-"); ok {
			cfg, err := tc.src.Config()
			if err != nil {
				t.Fatal(err)
			}
			pcs = append(pcs, ProfileConfig{Profile: Profile(p), Config: cfg})
		}
	}
	if len(pcs) != 2 || pcs[0].Config.Server.Host != "rd.example.com" || pcs[1].Config.Server.Host != "rd.tail1234.ts.net" ||
		pcs[1].Config.Server.Relay != "rd.tail1234.ts.net" || pcs[0].Config.Server.Relay != "" {
		t.Fatalf("profiles: %+v", pcs)
	}
	dir := filepath.Join(t.TempDir(), "media")
	o, err := BuildProfiles(pcs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Files) != 2*len(wantTree) {
		t.Fatalf("%d files", len(o.Files))
	}
	for i, f := range o.Files {
		pc := pcs[i/len(wantTree)]
		w := wantTree[i%len(wantTree)]
		if want := string(pc.Profile) + "/" + w.rel; f.Rel != want || f.Path != filepath.Join(dir, filepath.FromSlash(want)) {
			t.Errorf("file %d: %s (%s), want %s", i, f.Rel, f.Path, want)
		}
		if w.format != "" {
			single, err := pc.Config.Output(w.format)
			if err != nil || !bytes.Equal(single, f.Data) {
				t.Errorf("%s differs from the %s profile's --format %s (%v)", f.Rel, pc.Profile, w.format, err)
			}
		}
		if w.rel == "README.txt" && !bytes.Contains(f.Data, []byte("  rdctl check "+pc.Config.Server.Host+"\n")) {
			t.Errorf("%s does not name its check:\n%s", f.Rel, f.Data)
		}
	}
	rep, err := Run(o.Steps, false)
	if err != nil || !rep.Changed {
		t.Fatal(err)
	}
	for _, p := range []string{"public/README.txt", "tailnet/windows/rustdesk/RustDesk2.toml", "tailnet/config-qr.png"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	// A record without a tailnet name has no tailnet profile.
	if _, err := (Source{}).ForProfile(ProfileTailnet, "/r.toml"); !errors.As(err, new(*NoTailnetHostError)) {
		t.Errorf("no tailnet host: %v", err)
	}
	for _, s := range []string{"public", "tailnet", "all"} {
		if _, err := ParseProfile("--profile", s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseProfile("--profile", "lan"); err == nil {
		t.Error("lan accepted")
	}
}
