package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdctl/rdctl/internal/plan"
)

func genTestOwner() Owner { return Owner{UID: os.Getuid(), GID: os.Getgid()} }

// writeVectorPair writes the test vector's pair into a fresh directory.
func writeVectorPair(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte(vectorSecretFile), 0o600))
	noErr(t, os.WriteFile(filepath.Join(dir, PublicFile), []byte(vectorPublicFile), 0o644))
	return dir
}

// Verify's items, in their fixed order, for each way a pair can be wrong.
func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		ok    [4]bool // present, valid, pub matches, private
	}{
		{name: "sound", spoil: func(*testing.T, string) {}, ok: [4]bool{true, true, true, true}},
		{name: "no secret", spoil: func(t *testing.T, dir string) { noErr(t, os.Remove(filepath.Join(dir, SecretFile))) },
			ok: [4]bool{false, false, false, false}},
		{name: "garbage secret", spoil: func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte("not a key"), 0o600))
		}, ok: [4]bool{true, false, false, true}},
		{name: "stale pub", spoil: func(t *testing.T, dir string) {
			noErr(t, os.WriteFile(filepath.Join(dir, PublicFile), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 0o644))
		}, ok: [4]bool{true, true, false, true}},
		{name: "readable secret", spoil: func(t *testing.T, dir string) { noErr(t, os.Chmod(filepath.Join(dir, SecretFile), 0o644)) },
			ok: [4]bool{true, true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeVectorPair(t)
			tc.spoil(t, dir)
			st, err := InspectDir(dir)
			noErr(t, err)
			items := Verify(st)
			names := []VerifyCheck{CheckSecretPresent, CheckSecretValid, CheckPubMatches, CheckSecretPrivate}
			if len(items) != len(names) {
				t.Fatalf("%d items", len(items))
			}
			all := true
			for i, it := range items {
				if it.Name != names[i] || it.OK != tc.ok[i] {
					t.Errorf("item %d = %+v, want %q ok=%v", i, it, names[i], tc.ok[i])
				}
				all = all && tc.ok[i]
			}
			if AllOK(items) != all {
				t.Errorf("AllOK = %v", !all)
			}
			if tc.name == "readable secret" && items[3].Detail != "mode 0644" {
				t.Errorf("detail %q", items[3].Detail)
			}
		})
	}
}

func TestGenSteps(t *testing.T) {
	// A missing directory is made, then the pair; again, nothing is pending.
	dir := filepath.Join(t.TempDir(), "new")
	steps, ensure, err := GenSteps(dir, genTestOwner())
	noErr(t, err)
	var p plan.Plan
	p.Add(steps...)
	rs, err := p.Run(false)
	noErr(t, err)
	if plan.Changed(rs) != 2 || !ensure.Generated {
		t.Fatalf("results %+v, generated %v", rs, ensure.Generated)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir %v %v", fi, err)
	}
	st, err := InspectDir(dir)
	if err != nil || !st.Valid || !st.PubMatches {
		t.Fatalf("state %+v %v", st, err)
	}

	// Any secret key, valid or not, is refused: replacing one is a rotation.
	for _, secret := range []string{vectorSecretFile, "not a key"} {
		dir := writeVectorPair(t)
		noErr(t, os.WriteFile(filepath.Join(dir, SecretFile), []byte(secret), 0o600))
		var exists *SecretExistsError
		if _, _, err := GenSteps(dir, genTestOwner()); !errors.As(err, &exists) || exists.Dir != dir {
			t.Errorf("%q: err = %v", secret, err)
		}
	}
}
