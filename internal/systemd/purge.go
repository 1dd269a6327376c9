package systemd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"syscall"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
)

// UserComment is the comment (GECOS) of the service user rdctl makes, with
// systemd-sysusers from its sysusers.d entry or with useradd.
const UserComment = "RustDesk server (rdctl)"

// Accounts looks up and deletes system users: the seam between uninstall
// --purge and the host's user database.
type Accounts interface {
	// Comment returns the user's comment (GECOS); ok is false when there
	// is no such user.
	Comment(name string) (comment string, ok bool, err error)
	// Delete deletes the user and its own group.
	Delete(ctx context.Context, name string) error
}

// SystemAccounts are the host's: os/user to look up, userdel (and
// groupdel, for a group userdel left) to delete.
type SystemAccounts struct{}

func (SystemAccounts) Comment(name string) (string, bool, error) {
	u, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return u.Name, true, nil
}

func (SystemAccounts) Delete(ctx context.Context, name string) error {
	if out, err := exec.CommandContext(ctx, "userdel", name).CombinedOutput(); err != nil {
		return fmt.Errorf("userdel %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	if _, err := user.LookupGroup(name); err == nil {
		if out, err := exec.CommandContext(ctx, "groupdel", name).CombinedOutput(); err != nil {
			return fmt.Errorf("groupdel %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// userStep deletes the service user when rdctl made it: rdctl's sysusers.d
// entry (with rdctl's header) names it, and the account carries rdctl's
// comment. Otherwise there is no step and a note says why. The working
// directory and its files stay, owned by the user's old ids.
func (u *uninstall) userStep(ctx context.Context) plan.Step {
	name := SpecFromRecord(u.o.Record).User
	if !sysusersNames(u.o.Root, name) {
		u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteUserNotOurs, User: name,
			Err: fmt.Errorf("%s has no sysusers.d entry written by rdctl", SysusersPath)})
		return nil
	}
	ours := func() (bool, error) {
		comment, ok, err := u.o.Accounts.Comment(name)
		switch {
		case err != nil || !ok:
			return false, err
		case comment != UserComment:
			u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteUserNotOurs, User: name,
				Err: fmt.Errorf("its comment is %q, not rdctl's %q", comment, UserComment)})
			return false, nil
		}
		return true, nil
	}
	return &plan.Func{Verb: "delete the system user", Object: name, Check: ours,
		Do: func() (bool, error) {
			if ok, err := ours(); !ok || err != nil {
				return false, err
			}
			if err := u.o.Accounts.Delete(ctx, name); err != nil {
				return false, err
			}
			u.res.DeletedUser = name
			return true, nil
		}}
}

// sysusersNames reports whether rdctl's sysusers.d entry under root is
// rdctl's (its header) and makes the user name.
func sysusersNames(root, name string) bool {
	data, ok := readHeaded(root, SysusersPath)
	if !ok {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "u" && f[1] == name {
			return true
		}
	}
	return false
}

// binaryStep removes one binary rdctl installed, only while its sha256 is
// the one the record holds: a binary replaced since (an upgrade by hand, a
// package) stays, with a note.
func (u *uninstall) binaryStep(b deploy.InstalledBinary) plan.Step {
	p := Under(u.o.Root, b.Path)
	matches := func() (bool, error) {
		sum, err := fileSHA256(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil && !errors.Is(err, errNotRegular):
			return false, err
		case err != nil || sum != b.SHA256:
			u.res.Notes = append(u.res.Notes, UninstallNote{Kind: NoteBinaryChanged, Path: p})
			return false, nil
		}
		return true, nil
	}
	return &plan.Func{Verb: "remove", Object: p, Check: matches,
		Do: func() (bool, error) {
			if ok, err := matches(); !ok || err != nil {
				return false, err
			}
			if err := removeFile(p); err != nil {
				return false, err
			}
			u.res.Removed = append(u.res.Removed, p)
			return true, nil
		}}
}

var errNotRegular = errors.New("not a regular file")

// fileSHA256 hashes a regular file, never through a symlink (a symlink or
// anything but a regular file is errNotRegular).
func fileSHA256(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return "", errNotRegular
		}
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return "", err
	} else if !st.Mode().IsRegular() {
		return "", errNotRegular
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
