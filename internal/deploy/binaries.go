package deploy

import (
	"fmt"
)

// InstalledBinary is a program rdctl wrote on install: where (absolute, as
// seen on the system) and its sha256 (lowercase hex).
type InstalledBinary struct {
	Path   string `toml:"path"`
	SHA256 string `toml:"sha256"`
}

var sha256Hex = lazyRegexp(`^[0-9a-f]{64}$`)

func validateInstalledBinaries(bs []InstalledBinary) error {
	for i, b := range bs {
		if _, err := ParseAbsPath(fmt.Sprintf("installed_binaries[%d].path", i), b.Path); err != nil {
			return err
		}
		if !sha256Hex().MatchString(b.SHA256) {
			return &InputError{Field: fmt.Sprintf("installed_binaries[%d].sha256", i), Value: b.SHA256, Reason: "not 64 lowercase hex digits"}
		}
	}
	return nil
}
