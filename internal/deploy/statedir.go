package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"
)

// StateDir is where rdctl keeps its own state: per deployment, the key
// backups, the staged next key and the rotation journal. It is root's and
// 0700, outside hbbs's working directory, which the service user owns (and
// hbbs, which parses network input, runs as that user).
const StateDir = "/var/lib/rdctl"

// StateDirFor is the state directory of the deployment whose working
// directory is workingDir: StateDir/<name>, where name is the working
// directory's path with "/" turned into "-" and anything but letters,
// digits, ".", "_" and "-" into "_" (at most 48 characters), then "-" and
// the first 12 hex digits of the SHA-256 of the cleaned path. Readable, and
// distinct for distinct working directories (--config with several
// deployments), e.g. /var/lib/rdctl/var-lib-rustdesk-<hash>.
func StateDirFor(workingDir string) string {
	clean := path.Clean("/" + workingDir)
	sum := sha256.Sum256([]byte(clean))
	var b strings.Builder
	for _, r := range strings.TrimPrefix(clean, "/") {
		switch {
		case r == '/':
			b.WriteByte('-')
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 48 {
			break
		}
	}
	name := strings.TrimLeft(b.String(), ".-")
	if name == "" {
		name = "root"
	}
	return path.Join(StateDir, name+"-"+hex.EncodeToString(sum[:6]))
}
