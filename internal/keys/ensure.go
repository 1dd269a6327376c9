package keys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/rdctl/rdctl/internal/safefs"
)

// UnusableSecretError reports an id_ed25519 that exists but that rdctl
// will not use or replace: it is malformed, not a regular file, or a
// symlink. rdctl never overwrites a secret key it did not back up.
type UnusableSecretError struct {
	Dir string
	Err error
}

func (e *UnusableSecretError) Error() string {
	return fmt.Sprintf("%s in %q is unusable and will not be replaced: %v", SecretFile, e.Dir, e.Err)
}
func (e *UnusableSecretError) Unwrap() error { return e.Err }

// EnsurePair is a plan step that makes sure Dir holds a valid key pair with
// rdctl's modes and Owner: it keeps a valid existing secret (repairing a
// missing or disagreeing .pub and wrong modes or owners), generates a new
// pair when there is no secret, and refuses to touch an unusable one.
// The directory must exist when Apply runs.
type EnsurePair struct {
	Dir   string
	Owner Owner
	// Rand is the randomness for a new pair; nil means crypto/rand.
	Rand io.Reader

	// Generated is set by Apply when it made a new pair.
	Generated bool
}

// Action says what Apply will do: generate a pair where there is no secret,
// otherwise keep the secret and repair around it.
func (e *EnsurePair) Action() string {
	if d, err := safefs.OpenDir(e.Dir); err == nil {
		defer d.Close()
		if ok, _ := d.Exists(SecretFile); ok {
			return "keep the key and repair files in"
		}
	}
	return "generate a key pair in"
}
func (e *EnsurePair) Target() string { return e.Dir }

// Pending reports whether Apply would generate or repair anything.
func (e *EnsurePair) Pending() (bool, error) {
	d, err := safefs.OpenDir(e.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	st, err := Inspect(d)
	if err != nil {
		return false, err
	}
	return e.needs(st)
}

// needs decides from the directory's state whether anything is to do.
func (e *EnsurePair) needs(st State) (bool, error) {
	if !st.SecretPresent {
		return true, nil
	}
	if !st.Valid {
		return false, &UnusableSecretError{Dir: e.Dir, Err: st.SecretErr}
	}
	return !st.PubMatches || !e.ownedRight(st.SecretInfo, SecretMode) || !e.ownedRight(st.PubInfo, PublicMode), nil
}

func (e *EnsurePair) ownedRight(i safefs.Info, mode fs.FileMode) bool {
	return i.Mode.Perm() == mode && i.UID == e.Owner.UID && i.GID == e.Owner.GID
}

// Apply generates or repairs as Pending said.
func (e *EnsurePair) Apply() (bool, error) {
	d, err := safefs.OpenDir(e.Dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	st, err := Inspect(d)
	if err != nil {
		return false, err
	}
	if todo, err := e.needs(st); err != nil || !todo {
		return false, err
	}
	if !st.SecretPresent {
		p, err := Generate(e.Rand)
		if err != nil {
			return false, err
		}
		if err := Write(d, p, e.Owner); err != nil {
			return false, err
		}
		e.Generated = true
		return true, nil
	}
	sec := safefs.FileOptions{Mode: SecretMode, UID: e.Owner.UID, GID: e.Owner.GID}
	if _, err := d.FixOwnerMode(SecretFile, sec); err != nil {
		return false, err
	}
	pub := safefs.FileOptions{Mode: PublicMode, UID: e.Owner.UID, GID: e.Owner.GID}
	if _, err := d.WriteFile(PublicFile, st.Pair.PublicFileBytes(), pub); err != nil {
		return false, err
	}
	return true, nil
}
