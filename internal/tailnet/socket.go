package tailnet

import (
	"io/fs"
)

// defaultSocket returns the LocalAPI socket tailscaled listens on when it
// is started without --socket, on Linux, as fsys (the root file system)
// shows it. The paths are tailscaled's defaults (tailscale.com's
// paths.DefaultTailscaledSocket): the NAS packages and gokrazy keep the
// socket inside their own trees, everything else under /var/run.
// tailscaled's fallback for a system without /var/run is a bare
// "tailscaled.sock" in its working directory; rdctl returns that too, and
// the "not running" error then names --tailscale-socket.
func defaultSocket(fsys fs.FS) string {
	isDir := func(name string) bool {
		fi, err := fs.Stat(fsys, name)
		return err == nil && fi.IsDir()
	}
	exists := func(name string) bool {
		_, err := fs.Stat(fsys, name)
		return err == nil
	}
	switch {
	case isDir("usr/syno"):
		// Synology's package: DSM 7 under var, DSM 6 (out of support)
		// under etc. tailscaled tells them apart by the DSM version;
		// the socket that exists says the same.
		if exists("var/packages/Tailscale/etc/tailscaled.sock") {
			return "/var/packages/Tailscale/etc/tailscaled.sock"
		}
		return "/var/packages/Tailscale/var/tailscaled.sock"
	case exists("etc/config/uLinux.conf"): // QNAP
		return "/tmp/tailscale/tailscaled.sock"
	case isDir("gokrazy"):
		return "/perm/tailscaled/tailscaled.sock"
	case isDir("var/run"):
		return "/var/run/tailscale/tailscaled.sock"
	}
	return "tailscaled.sock"
}
