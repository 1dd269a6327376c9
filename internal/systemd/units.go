// Package systemd renders rdctl's hardened hbbs/hbbr units with go-systemd's
// unit package, builds the install plan for an image tree or a live host,
// and (live) controls the units over D-Bus.
package systemd

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Tailnet address ranges: Tailscale's CGNAT IPv4 range and its ULA IPv6 prefix.
const (
	TailnetIPv4 = "100.64.0.0/10"
	TailnetIPv6 = "fd7a:115c:a1e0::/48"
)

// UnitSpec is what the units are rendered from. All fields come from a
// validated [deploy.Record].
type UnitSpec struct {
	// Relay is passed to hbbs as -r host:port.
	Relay string
	// Bind, if set, is passed to both as -b (hbbs/hbbr 1.1.17+).
	Bind string
	// TailnetOnly adds an IP allow list of localhost and the tailnet ranges.
	TailnetOnly bool
	// WorkingDir holds the keys; default /var/lib/rustdesk.
	WorkingDir string
	// BinDir holds hbbs and hbbr; default /usr/local/bin.
	BinDir string
	// User runs both services; default rustdesk.
	User string
	// HBBRUnit is hbbr's unit name, which hbbs is ordered after.
	HBBRUnit string
}

// SpecFromRecord derives the unit spec from a record.
func SpecFromRecord(r *deploy.Record) UnitSpec {
	s := UnitSpec{Relay: r.Relay, Bind: r.Bind, TailnetOnly: r.TailnetOnly, WorkingDir: r.WorkingDir,
		BinDir: r.BinDir, User: r.ServiceUser, HBBRUnit: r.HBBRUnit}
	if s.WorkingDir == "" {
		s.WorkingDir = deploy.DefaultWorkingDir
	}
	if s.BinDir == "" {
		s.BinDir = deploy.DefaultBinDir
	}
	if s.User == "" {
		s.User = deploy.DefaultServiceUser
	}
	if s.HBBRUnit == "" {
		s.HBBRUnit = deploy.DefaultHBBRUnit
	}
	return s
}

const header = "# Written by rdctl; rdctl install rewrites it. Changes here are reported by rdctl doctor.\n"

// HBBS renders the hbbs unit.
func HBBS(s UnitSpec) []byte {
	args := []string{path.Join(s.BinDir, "hbbs"), "-r", s.Relay, "-k", "_"}
	if s.Bind != "" {
		args = append(args, "-b", s.Bind)
	}
	return render("RustDesk ID/rendezvous server (hbbs)", args, s, []*unit.UnitOption{
		// hbbr loads the same key; the order only keeps logs tidy, the key
		// is on disk before either starts.
		unit.NewUnitOption("Unit", "After", "network-online.target "+s.HBBRUnit),
	})
}

// HBBR renders the hbbr unit. It runs with -k _ in the same working
// directory, so it enforces the same key as hbbs instead of relaying for
// anyone (hbbr's default is no key check).
func HBBR(s UnitSpec) []byte {
	args := []string{path.Join(s.BinDir, "hbbr"), "-k", "_"}
	if s.Bind != "" {
		args = append(args, "-b", s.Bind)
	}
	return render("RustDesk relay server (hbbr)", args, s, []*unit.UnitOption{
		unit.NewUnitOption("Unit", "After", "network-online.target"),
	})
}

func render(desc string, args []string, s UnitSpec, after []*unit.UnitOption) []byte {
	opt := unit.NewUnitOption
	opts := []*unit.UnitOption{opt("Unit", "Description", desc)}
	opts = append(opts, after...)
	opts = append(opts,
		opt("Unit", "Wants", "network-online.target"),

		opt("Service", "Type", "simple"),
		opt("Service", "User", s.User),
		opt("Service", "Group", s.User),
		opt("Service", "WorkingDirectory", s.WorkingDir),
		// hbbs (>= 1.1.13) writes a client-style config under $HOME; keep it
		// in the state directory instead of a home it cannot write.
		opt("Service", "Environment", "HOME="+s.WorkingDir),
	)
	if rel, ok := strings.CutPrefix(s.WorkingDir, "/var/lib/"); ok && !strings.Contains(rel, "/") {
		// systemd creates the directory, owns it to User= and makes it
		// writable under ProtectSystem=strict.
		opts = append(opts, opt("Service", "StateDirectory", rel), opt("Service", "StateDirectoryMode", "0700"))
	} else {
		opts = append(opts, opt("Service", "ReadWritePaths", s.WorkingDir))
	}
	opts = append(opts,
		opt("Service", "ExecStart", strings.Join(args, " ")),
		opt("Service", "Restart", "on-failure"),
		opt("Service", "RestartSec", "5s"),
		opt("Service", "LimitNOFILE", "1000000"),
	)
	// Hardening: systemd-analyze security scores this 1.1 (1.0 with the
	// tailnet allow list). What remains needs the network.
	opts = append(opts, hardening()...)
	if s.TailnetOnly {
		opts = append(opts,
			opt("Service", "IPAddressDeny", "any"),
			opt("Service", "IPAddressAllow", fmt.Sprintf("localhost %s %s", TailnetIPv4, TailnetIPv6)),
		)
	}
	opts = append(opts, opt("Install", "WantedBy", "multi-user.target"))
	b, _ := io.ReadAll(unit.Serialize(opts))
	return append([]byte(header), b...)
}

// SysusersConf is the systemd-sysusers entry that creates the service user
// (a system user with no login shell, home in the working directory).
func SysusersConf(user, workingDir string) []byte {
	return []byte(fmt.Sprintf("# Written by rdctl: the user hbbs and hbbr run as.\nu %s - \"RustDesk server (rdctl)\" %s -\n", user, workingDir))
}

// hardening is the sandbox every unit rdctl writes shares (the servers'
// and the exporter's): no privileges, a read-only system, private
// namespaces, the system-service call set. Each unit adds what it needs
// to write or read after it.
func hardening() []*unit.UnitOption {
	opt := unit.NewUnitOption
	return []*unit.UnitOption{
		opt("Service", "NoNewPrivileges", "yes"),
		opt("Service", "CapabilityBoundingSet", ""),
		opt("Service", "AmbientCapabilities", ""),
		opt("Service", "ProtectSystem", "strict"),
		opt("Service", "ProtectHome", "yes"),
		opt("Service", "PrivateTmp", "yes"),
		opt("Service", "PrivateDevices", "yes"),
		opt("Service", "PrivateUsers", "yes"),
		opt("Service", "PrivateMounts", "yes"),
		opt("Service", "ProtectKernelTunables", "yes"),
		opt("Service", "ProtectKernelModules", "yes"),
		opt("Service", "ProtectKernelLogs", "yes"),
		opt("Service", "ProtectControlGroups", "yes"),
		opt("Service", "ProtectClock", "yes"),
		opt("Service", "ProtectHostname", "yes"),
		opt("Service", "ProtectProc", "invisible"),
		opt("Service", "ProcSubset", "pid"),
		opt("Service", "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
		opt("Service", "RestrictNamespaces", "yes"),
		opt("Service", "RestrictRealtime", "yes"),
		opt("Service", "RestrictSUIDSGID", "yes"),
		opt("Service", "LockPersonality", "yes"),
		opt("Service", "MemoryDenyWriteExecute", "yes"),
		opt("Service", "RemoveIPC", "yes"),
		opt("Service", "KeyringMode", "private"),
		opt("Service", "DevicePolicy", "closed"),
		opt("Service", "SystemCallArchitectures", "native"),
		opt("Service", "SystemCallFilter", "@system-service"),
		opt("Service", "SystemCallFilter", "~@privileged @resources"),
		// A blocked call fails with EPERM instead of killing the process.
		opt("Service", "SystemCallErrorNumber", "EPERM"),
		opt("Service", "UMask", "0077"),
	}
}
