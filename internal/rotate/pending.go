package rotate

import (
	"errors"
	"io/fs"

	"github.com/rdctl/rdctl/internal/safefs"
)

// NeedsResume reports, without changing anything, whether [Resume] would
// finish or roll back something in workingDir: a journal, or new-key files
// a crash left. A dry run uses it to show the recovery the real run would
// do first. (Resume also removes safefs temporaries, which this does not
// count: removing them changes no key.)
func NeedsResume(workingDir string) (bool, error) {
	d, err := safefs.OpenDir(workingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer d.Close()
	if j, err := readJournal(d); err != nil || j != nil {
		return j != nil, err
	}
	for _, n := range []string{newSecret, newPublic} {
		if ok, err := d.Exists(n); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
