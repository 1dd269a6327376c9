package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/rdctl/rdctl/internal/safefs"
)

// JournalFile is the rotation journal in the working directory. Its
// presence means a rotation started and has not finished.
const JournalFile = ".rdctl-rotation.json"

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

func readJournal(d *safefs.Dir) (*Journal, error) {
	data, _, err := d.ReadFile(JournalFile, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("rotation journal %q is unreadable: %w", d.Join(JournalFile), err)
	}
	if j.Format != 1 || j.Stamp == "" || j.OldPublicKey == "" || j.NewPublicKey == "" {
		return nil, fmt.Errorf("rotation journal %q is incomplete", d.Join(JournalFile))
	}
	return &j, nil
}

func writeJournal(d *safefs.Dir, j *Journal) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	_, err = d.WriteFile(JournalFile, append(data, '\n'), safefs.FileOptions{Mode: 0o600, UID: safefs.KeepOwner, GID: safefs.KeepOwner})
	return err
}
