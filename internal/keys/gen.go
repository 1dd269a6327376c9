package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

// SecretExistsError refuses a key generation where a secret key exists:
// replacing a key is a rotation, which backs the old one up first.
type SecretExistsError struct{ Dir string }

func (e *SecretExistsError) Error() string {
	return fmt.Sprintf("%q already holds a secret key; rdctl never replaces a key without a backup", e.Dir)
}

// GenSteps builds the steps of a key generation in dir: create it (0700)
// where it is missing, then generate a pair owned by owner. It refuses
// (SecretExistsError) where dir holds a secret key, valid or not. The
// returned step says after the run whether it generated the pair.
func GenSteps(dir string, owner Owner) ([]plan.Step, *EnsurePair, error) {
	if st, err := InspectDir(dir); err == nil && st.SecretPresent {
		return nil, nil, &SecretExistsError{Dir: dir}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	missing := func() bool {
		_, err := os.Lstat(dir)
		return errors.Is(err, fs.ErrNotExist)
	}
	mkdir := &plan.Func{Verb: "create directory", Object: dir,
		Check: func() (bool, error) { return missing(), nil },
		Do: func() (bool, error) {
			if !missing() {
				return false, nil
			}
			d, err := safefs.MkdirAll(dir, 0o700)
			if err == nil {
				d.Close()
			}
			return true, err
		}}
	ensure := &EnsurePair{Dir: dir, Owner: owner}
	return []plan.Step{mkdir, ensure}, ensure, nil
}
