package keys

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/rdctl/rdctl/internal/safefs"
)

// Modes rdctl gives the key files. hbbs itself creates them 0666&^umask,
// which leaves the secret world-readable; rdctl never does.
const (
	SecretMode fs.FileMode = 0o600
	PublicMode fs.FileMode = 0o644
)

// State is what a working directory's key files say.
type State struct {
	// SecretPresent is true when id_ed25519 exists as a regular file.
	SecretPresent bool
	// Pair is the parsed secret; zero when absent or malformed.
	Pair Pair
	// SecretErr is why the secret could not be read or parsed (hbbs exits
	// on a malformed one), nil when it parsed.
	SecretErr error
	// Valid is true when the secret parsed and [Pair.Validate] passed.
	Valid bool
	// SecretInfo is the secret file's mode and owner.
	SecretInfo safefs.Info
	// Verdict is what the real hbbs does with what is at id_ed25519: a
	// secret rdctl calls invalid may still run a server that enforces
	// nothing, which no client notices.
	Verdict Verdict

	// PubPresent is true when id_ed25519.pub exists as a regular file.
	PubPresent bool
	// PubKey is the .pub file's key string, trimmed; empty when absent or
	// malformed.
	PubKey string
	// PubErr is why the .pub could not be read or parsed.
	PubErr error
	// PubMatches is true when .pub is present and equals the public half of
	// the secret. hbbs never reads .pub, so a mismatch misleads only humans
	// and exported configs, but it misleads them reliably.
	PubMatches bool
	// PubInfo is the .pub file's mode and owner.
	PubInfo safefs.Info
}

// Inspect reads the key files in d without following symlinks. d is
// usually hbbs's working directory, which the service user can write, so
// each file is read as untrusted ([safefs.Dir.ReadUntrusted]): a FIFO, a
// hard link or a file larger than [MaxFileSize] is reported as a problem
// with that file, never followed, waited on or read whole. It fails
// only when d cannot be read at all; problems with the files are reported in
// the State.
func Inspect(d *safefs.Dir) (State, error) {
	st := State{Verdict: VerdictAbsent}
	data, info, err := d.ReadUntrusted(SecretFile, MaxFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		st.SecretErr, st.SecretPresent, st.Verdict = err, true, VerdictUnknown
		// hbbs opens a directory at id_ed25519, fails to read it as text
		// and goes on with no key (measured on 1.1.16).
		if li, lerr := d.Lstat(SecretFile); lerr == nil && li.Mode.IsDir() {
			st.Verdict = VerdictUnenforced
		}
	default:
		st.SecretPresent, st.SecretInfo = true, info
		st.Verdict = SecretVerdict(data)
		p, err := ParseSecret(data)
		if err != nil {
			st.SecretErr = err
		} else {
			st.Pair = p
			st.SecretErr = p.Validate()
			st.Valid = st.SecretErr == nil
		}
	}
	data, info, err = d.ReadUntrusted(PublicFile, MaxFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		st.PubErr, st.PubPresent = err, true
	default:
		st.PubPresent, st.PubInfo = true, info
		pub, err := ParsePublic(data)
		if err != nil {
			st.PubErr = err
		} else {
			st.PubKey = encodePublic(pub)
			st.PubMatches = !st.Pair.IsZero() && st.PubKey == st.Pair.PublicBase64()
		}
	}
	return st, nil
}

// Owner is who the key files belong to.
type Owner struct{ UID, GID int }

// Write writes both key files of p into d atomically, the secret first:
// should a crash come between the two, hbbs uses the secret it finds and the
// stale .pub is what `rdctl doctor --fix` repairs.
func Write(d *safefs.Dir, p Pair, o Owner) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("refusing to write an invalid key pair: %w", err)
	}
	if _, err := d.WriteFile(SecretFile, p.SecretFileBytes(), safefs.FileOptions{Mode: SecretMode, UID: o.UID, GID: o.GID}); err != nil {
		return err
	}
	_, err := d.WriteFile(PublicFile, p.PublicFileBytes(), safefs.FileOptions{Mode: PublicMode, UID: o.UID, GID: o.GID})
	return err
}
