package export

import (
	"fmt"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
)

// PendingRotationError means a rotation journal is in the working
// directory: the live key is about to change (or change back), so
// exporting now could put the wrong key on every client.
type PendingRotationError struct{ Dir string }

func (e *PendingRotationError) Error() string {
	return fmt.Sprintf("an interrupted rotation is pending in %s, so which key will be live is not settled", e.Dir)
}

// NoStagedKeyError means the staged key was asked for and none is staged.
type NoStagedKeyError struct{ Dir string }

func (e *NoStagedKeyError) Error() string {
	return fmt.Sprintf("no staged key in %s", filepath.Join(e.Dir, "staged"))
}

// KeyDirError means the working directory could not be read.
type KeyDirError struct {
	Dir string
	Err error
}

func (e *KeyDirError) Error() string { return e.Err.Error() }
func (e *KeyDirError) Unwrap() error { return e.Err }

// InvalidKeyError means the working directory holds no usable secret key;
// Err says why the one there cannot be used (nil: there is none).
type InvalidKeyError struct {
	Dir string
	Err error
}

func (e *InvalidKeyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("the key in %q cannot be exported: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("no %s in %q", keys.SecretFile, e.Dir)
}

func (e *InvalidKeyError) Unwrap() error { return e.Err }

// ReadKey returns the public key of the live pair in the working directory
// wd, or with staged of the next pair that rotate --stage prepared in the
// state directory sd. The
// live key is derived from the secret, as hbbs does, even when
// id_ed25519.pub says otherwise (PubFileDisagrees), since it is the one hbbs
// serves. The secret goes no further than this.
func ReadKey(wd, sd string, staged bool) (PublicKey, error) {
	// With a rotation journal the live key is about to change (or change
	// back): exporting now could put the wrong key on every client.
	if inFlight, err := rotate.InFlight(sd); err != nil || inFlight {
		if err != nil {
			return PublicKey{}, &KeyDirError{Dir: sd, Err: err}
		}
		return PublicKey{}, &PendingRotationError{Dir: wd}
	}
	if staged {
		p, err := rotate.Staged(sd)
		if err != nil {
			return PublicKey{}, err
		}
		if p.IsZero() {
			return PublicKey{}, &NoStagedKeyError{Dir: sd}
		}
		return PublicKey{Key: p.PublicBase64(), Fingerprint: p.Fingerprint()}, nil
	}
	d, err := safefs.OpenDir(wd)
	if err != nil {
		return PublicKey{}, &KeyDirError{Dir: wd, Err: err}
	}
	defer d.Close()
	st, err := keys.Inspect(d)
	if err != nil {
		return PublicKey{}, &KeyDirError{Dir: wd, Err: err}
	}
	if !st.Valid {
		return PublicKey{}, &InvalidKeyError{Dir: wd, Err: st.SecretErr}
	}
	return PublicKey{Key: st.Pair.PublicBase64(), Fingerprint: st.Pair.Fingerprint(), PubFileDisagrees: st.PubPresent && !st.PubMatches}, nil
}

// Given is what the operator gave instead of the deployment record's
// values, each already validated; nil means not given.
type Given struct {
	ID, Relay *deploy.HostPort // a Relay with Host "" means none
	API       *string          // "" means none
	Key       *PublicKey
	Staged    bool // export the staged key instead of the live one
}

// Resolve fills in what g leaves out from the deployment record rec (read
// from recordPath; nil when there is none) and the key in its working
// directory wd (resolved under --root), with rdctl's state directory sd for
// a staged key. Without a record, g must give the key and the ID server:
// *MissingError otherwise.
func Resolve(g Given, rec *deploy.Record, recordPath, wd, sd string) (Source, error) {
	src := Source{Staged: g.Staged}
	if rec == nil && (g.Key == nil || g.ID == nil) {
		return src, &MissingError{RecordPath: recordPath}
	}
	if rec != nil {
		ep, err := RecordEndpoints(rec, recordPath)
		if err != nil {
			return src, err
		}
		src.Endpoints = ep
		if g.Key == nil {
			if src.PublicKey, err = ReadKey(wd, sd, g.Staged); err != nil {
				return src, err
			}
		}
	}
	if g.ID != nil {
		src.ID = *g.ID
	}
	if g.Relay != nil {
		src.Relay = *g.Relay
	}
	if g.API != nil {
		src.API = *g.API
	}
	if g.Key != nil {
		src.PublicKey = *g.Key
	}
	return src, nil
}

// MissingError means there is no deployment record and the key or the ID
// server was not given.
type MissingError struct{ RecordPath string }

func (e *MissingError) Error() string {
	return fmt.Sprintf("no deployment record at %s, and no key and ID server given instead", e.RecordPath)
}
