package systemd

import (
	"context"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/rdctl/rdctl/internal/keys"
)

// ServiceUser is the plan step of a live install that creates the system
// user hbbs and hbbr run as: with systemd-sysusers from the sysusers.d
// entry an earlier step of the same plan wrote (so the user is the one the
// image path would make at boot), or with useradd where systemd-sysusers is
// absent. Steps after it own the working directory and the key files to the
// user, so it hands them the ids through OnOwner once they are known.
type ServiceUser struct {
	Ctx  context.Context
	Name string
	Home string
	// OnOwner receives the user's ids: in Pending when the user exists
	// already, in Apply once it is made.
	OnOwner func(keys.Owner)
}

func (s *ServiceUser) Action() string { return "create the system user" }
func (s *ServiceUser) Target() string { return s.Name }

// Pending reports whether the user is missing. Until Apply makes it, later
// steps see an owner no file has, so a dry run reports them as changes.
func (s *ServiceUser) Pending() (bool, error) {
	o, err := LookupOwner(s.Name)
	if err != nil {
		s.OnOwner(keys.Owner{UID: -2, GID: -2})
		return true, nil
	}
	s.OnOwner(o)
	return false, nil
}

func (s *ServiceUser) Apply() (bool, error) {
	if o, err := LookupOwner(s.Name); err == nil {
		s.OnOwner(o)
		return false, nil
	}
	var cmd *exec.Cmd
	if _, err := exec.LookPath("systemd-sysusers"); err == nil {
		cmd = exec.CommandContext(s.Ctx, "systemd-sysusers", SysusersPath)
	} else {
		cmd = exec.CommandContext(s.Ctx, "useradd", "--system", "--user-group", "--home-dir", s.Home,
			"--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "RustDesk server (rdctl)", s.Name)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("creating user %s: %v: %s", s.Name, err, strings.TrimSpace(string(out)))
	}
	o, err := LookupOwner(s.Name)
	if err != nil {
		return false, fmt.Errorf("user %s was created but cannot be looked up: %w", s.Name, err)
	}
	s.OnOwner(o)
	return true, nil
}

// LookupOwner returns a user's uid and primary gid.
func LookupOwner(name string) (keys.Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return keys.Owner{}, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return keys.Owner{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return keys.Owner{}, err
	}
	return keys.Owner{UID: uid, GID: gid}, nil
}
