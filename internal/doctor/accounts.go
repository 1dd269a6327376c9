package doctor

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rdctl/rdctl/internal/keys"
)

// Accounts resolves users and groups: the live system's through os/user
// (NSS where the build has cgo), or an image tree's own /etc/passwd and
// /etc/group under Root, never the build host's.
type Accounts struct {
	// Root is the image tree; "" means the live system.
	Root string
}

// passwdEntry is one line of /etc/passwd or /etc/group that matters here.
type passwdEntry struct {
	name     string
	id, gid  int
	home     string
	hasGroup bool
}

// parsePasswd parses /etc/passwd (name:pw:uid:gid:gecos:home:shell) or,
// with group set, /etc/group (name:pw:gid:members). Malformed lines are
// skipped, as getpwent skips them.
func parsePasswd(data []byte, group bool) []passwdEntry {
	var out []passwdEntry
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if group {
			if len(f) < 3 {
				continue
			}
			gid, err := strconv.Atoi(f[2])
			if err != nil || gid < 0 || f[0] == "" {
				continue
			}
			out = append(out, passwdEntry{name: f[0], id: gid, gid: gid})
			continue
		}
		if len(f) < 7 {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 || f[0] == "" {
			continue
		}
		out = append(out, passwdEntry{name: f[0], id: uid, gid: gid, home: f[5], hasGroup: true})
	}
	return out
}

func (a Accounts) file(name string) []passwdEntry {
	data, err := os.ReadFile(filepath.Join(a.Root, "etc", name))
	if err != nil || len(data) > 16<<20 {
		return nil
	}
	return parsePasswd(data, name == "group")
}

// LookupUser returns the uid and primary gid of the user name. "root" is
// always 0:0.
func (a Accounts) LookupUser(name string) (keys.Owner, bool) {
	if name == "root" {
		return keys.Owner{UID: 0, GID: 0}, true
	}
	if a.Root == "" {
		u, err := user.Lookup(name)
		if err != nil {
			return keys.Owner{}, false
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		return keys.Owner{UID: uid, GID: gid}, err1 == nil && err2 == nil
	}
	for _, e := range a.file("passwd") {
		if e.name == name {
			return keys.Owner{UID: e.id, GID: e.gid}, true
		}
	}
	return keys.Owner{}, false
}

// UserName names uid, or returns "" when it has no name.
func (a Accounts) UserName(uid int) string {
	if a.Root == "" {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			return u.Username
		}
		return ""
	}
	for _, e := range a.file("passwd") {
		if e.id == uid {
			return e.name
		}
	}
	if uid == 0 {
		return "root"
	}
	return ""
}

// GroupName names gid, or returns "" when it has no name.
func (a Accounts) GroupName(gid int) string {
	if a.Root == "" {
		if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
			return g.Name
		}
		return ""
	}
	for _, e := range a.file("group") {
		if e.id == gid {
			return e.name
		}
	}
	if gid == 0 {
		return "root"
	}
	return ""
}
