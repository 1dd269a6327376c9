package rotate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

// JournalFile is the rotation journal in the state directory. Its presence
// means a rotation started and has not finished.
const JournalFile = "rotation-journal.json"

// LegacyJournalFile is where rdctl before the state directory kept the
// journal: in the working directory, where the service user can write it.
// [Migrate] reports and removes it; it is never resumed.
const LegacyJournalFile = ".rdctl-rotation.json"

// maxJournalSize bounds a journal read: a real one is about 300 bytes.
const maxJournalSize = 4096

// Names of the new key files written next to the live ones before the
// services stop. Fixed names make recovery a matter of looking.
const (
	newSecret = "id_ed25519.rdctl-new"
	newPublic = "id_ed25519.pub.rdctl-new"
)

// Journal records what a rotation is doing. It holds only public keys.
type Journal struct {
	Format int `json:"format"`
	// Op is "rotate", "commit" or "restore".
	Op string `json:"op"`
	// Stamp names the backup directory (backups/<Stamp>).
	Stamp        string `json:"stamp"`
	OldPublicKey string `json:"old_public_key"`
	NewPublicKey string `json:"new_public_key"`
	PID          int    `json:"pid"`
}

// JournalError reports a journal that does not read as one rdctl writes.
// Reason never quotes the journal's contents: they may hold control
// characters meant for a terminal.
type JournalError struct {
	Path   string
	Reason string
}

func (e *JournalError) Error() string {
	return fmt.Sprintf("rotation journal %q is not valid: %s", e.Path, e.Reason)
}

// parseJournal parses and validates a journal's bytes: every field that is
// later printed, used as a directory name or compared with a key must be
// what rdctl writes there.
func parseJournal(path string, data []byte) (*Journal, error) {
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, &JournalError{Path: path, Reason: "not JSON"}
	}
	reason := ""
	switch {
	case j.Format != 1:
		reason = "unknown format"
	case j.Op != OpRotate && j.Op != OpCommit && j.Op != OpRestore:
		reason = "unknown op"
	case checkStamp(j.Stamp) != nil:
		reason = "stamp is not a backup name"
	case !validPublic(j.OldPublicKey):
		reason = "old_public_key is not a public key"
	case !validPublic(j.NewPublicKey):
		reason = "new_public_key is not a public key"
	}
	if reason != "" {
		return nil, &JournalError{Path: path, Reason: reason}
	}
	return &j, nil
}

// validPublic: s is a key string exactly as rdctl writes one.
func validPublic(s string) bool {
	pub, err := keys.ParsePublic([]byte(s))
	return err == nil && base64.StdEncoding.EncodeToString(pub) == s
}

func readJournal(d *safefs.Dir) (*Journal, error) {
	data, _, err := d.ReadUntrusted(JournalFile, maxJournalSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseJournal(d.Join(JournalFile), data)
}

func writeJournal(d *safefs.Dir, j *Journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	_, err = d.WriteFile(JournalFile, append(data, '\n'), safefs.FileOptions{Mode: 0o600, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
	return err
}

// InFlight reports whether stateDir holds a rotation journal: a rotation
// started and has not finished, so the live key may be about to change.
func InFlight(stateDir string) (bool, error) {
	d, err := openState(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	return d.Exists(JournalFile)
}
