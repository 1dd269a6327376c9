package export

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
)

// keyDir writes p into a new working directory as hbbs keeps it.
func keyDir(t *testing.T, p keys.Pair) string {
	t.Helper()
	wd := t.TempDir()
	os.WriteFile(filepath.Join(wd, keys.SecretFile), p.SecretFileBytes(), 0o600)
	os.WriteFile(filepath.Join(wd, keys.PublicFile), p.PublicFileBytes(), 0o644)
	return wd
}

func TestReadKey(t *testing.T) {
	live, other := pair(t, 1), pair(t, 3)
	want := func(p keys.Pair) PublicKey { return PublicKey{Key: p.PublicBase64(), Fingerprint: p.Fingerprint()} }
	wd, sd := keyDir(t, live), filepath.Join(t.TempDir(), "state")
	if k, err := ReadKey(wd, sd, false); err != nil || k != want(live) {
		t.Errorf("live: %+v, %v", k, err)
	}
	var noStaged *NoStagedKeyError
	if _, err := ReadKey(wd, sd, true); !errors.As(err, &noStaged) || noStaged.Dir != sd {
		t.Errorf("nothing staged: %v", err)
	}
	// A staged pair in the working directory (where an older rdctl kept
	// it, and where the service user can plant one) is not the staged key.
	os.Mkdir(filepath.Join(wd, "staged"), 0o700)
	os.WriteFile(filepath.Join(wd, "staged", keys.SecretFile), other.SecretFileBytes(), 0o600)
	if _, err := ReadKey(wd, sd, true); !errors.As(err, &noStaged) {
		t.Errorf("staged pair in the working directory: %v", err)
	}
	next, _, err := rotate.Stage(rotate.Options{WorkingDir: wd, StateDir: sd, BackupOwner: keys.Owner{UID: os.Getuid(), GID: os.Getgid()}})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ReadKey(wd, sd, true); err != nil || k != want(next) {
		t.Errorf("staged: %+v, %v", k, err)
	}

	// A stale .pub: the key hbbs serves is the one derived from the secret.
	os.WriteFile(filepath.Join(wd, keys.PublicFile), other.PublicFileBytes(), 0o644)
	if k, err := ReadKey(wd, sd, false); err != nil || k.Key != live.PublicBase64() || !k.PubFileDisagrees {
		t.Errorf("stale .pub: %+v, %v", k, err)
	}

	// A rotation journal leaves the live key unsettled, staged or not.
	os.WriteFile(filepath.Join(sd, rotate.JournalFile), []byte("{}"), 0o600)
	for _, staged := range []bool{false, true} {
		var pending *PendingRotationError
		if _, err := ReadKey(wd, sd, staged); !errors.As(err, &pending) {
			t.Errorf("journal, staged=%v: %v", staged, err)
		}
	}

	empty, sd := t.TempDir(), t.TempDir()
	var invalid *InvalidKeyError
	if _, err := ReadKey(empty, sd, false); !errors.As(err, &invalid) || invalid.Err != nil {
		t.Errorf("no key: %v", err)
	}
	os.WriteFile(filepath.Join(empty, keys.SecretFile), []byte("not a key\n"), 0o600)
	if _, err := ReadKey(empty, sd, false); !errors.As(err, &invalid) || invalid.Err == nil {
		t.Errorf("malformed key: %v", err)
	}
	var dirErr *KeyDirError
	if _, err := ReadKey(filepath.Join(empty, "missing"), sd, false); !errors.As(err, &dirErr) {
		t.Errorf("missing directory: %v", err)
	}
}

// TestResolve: what is given wins over the record, the record fills in the
// rest, and without a record the key and the ID server must be given.
func TestResolve(t *testing.T) {
	live, given := pair(t, 1), pair(t, 4)
	wd := keyDir(t, live)
	rec := &deploy.Record{IDHost: "rd.example.com", Relay: "relay.example.com:21117", API: "https://api.example.com/", WorkingDir: "/var/lib/rustdesk"}
	id, relay, none := hp(t, "other.example.com:31116"), hp(t, "r2.example.com"), deploy.HostPort{}
	api, noAPI := "https://x.example.com", ""
	gk := &PublicKey{Key: given.PublicBase64(), Fingerprint: given.Fingerprint()}
	recSrc := Source{Endpoints: Endpoints{ID: hp(t, "rd.example.com"), Relay: hp(t, "relay.example.com:21117"), API: "https://api.example.com"},
		PublicKey: PublicKey{Key: live.PublicBase64(), Fingerprint: live.Fingerprint()}}
	for _, c := range []struct {
		name string
		g    Given
		rec  *deploy.Record
		want Source
		err  any // a pointer to the wanted error type, or nil
	}{
		{"record", Given{}, rec, recSrc, nil},
		{"flags win", Given{ID: &id, Relay: &relay, API: &api, Key: gk}, rec,
			Source{Endpoints: Endpoints{ID: id, Relay: relay, API: api}, PublicKey: *gk}, nil},
		{"no relay, no api", Given{Relay: &none, API: &noAPI}, rec,
			Source{Endpoints: Endpoints{ID: recSrc.ID}, PublicKey: recSrc.PublicKey}, nil},
		{"no record", Given{ID: &id, Key: gk}, nil, Source{Endpoints: Endpoints{ID: id}, PublicKey: *gk}, nil},
		{"no record, no key", Given{ID: &id}, nil, Source{}, new(*MissingError)},
		{"no record, no id", Given{Key: gk}, nil, Source{}, new(*MissingError)},
		{"bad record", Given{}, &deploy.Record{IDHost: "rd example.com"}, Source{}, new(*deploy.RecordError)},
		{"bad record api", Given{Key: gk}, &deploy.Record{IDHost: "rd.example.com", API: "ftp://x"}, Source{}, new(*deploy.InputError)},
		{"nothing staged", Given{Staged: true}, rec, Source{}, new(*NoStagedKeyError)},
	} {
		got, err := Resolve(c.g, c.rec, "/etc/rdctl/rdctl.toml", wd, filepath.Join(t.TempDir(), "state"))
		switch {
		case c.err == nil && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		case c.err != nil && (err == nil || !errors.As(err, c.err)):
			t.Errorf("%s: %v, want %T", c.name, err, c.err)
		}
	}
}
