// Package deploy holds what rdctl knows about one RustDesk server
// deployment: the typed, validated values users give it, the deployment
// record (/etc/rdctl/rdctl.toml) and the [Runtime] seam between rotation
// and the service backends.
//
// Every value a user types is parsed here into a typed value before anything
// is planned; renderers (units, compose files, TOML) only ever see values
// that passed. Rejected values produce an [*InputError], which rdctl reports
// with exit code 2 and nothing written.
package deploy

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/rdctl/rdctl/internal/textsafe"
)

// InputError reports a rejected user-supplied value.
type InputError struct {
	Field  string // the flag or setting, e.g. "--relay"
	Value  string // the value as given; the message shows it only when it cannot be key material
	Reason string // never holds the value itself
}

// Error names the field and the reason. It shows the value only when it
// cannot be (part of) a key (see [textsafe.Echo]): a secret pasted into the
// wrong flag or record field must not reach a terminal or a log, and no
// truncation makes a key safe to show.
func (e *InputError) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", e.Field, textsafe.Echo(e.Value), e.Reason)
}

// forbidden is what no value rdctl renders into a unit, compose file or
// shell-facing text may contain: whitespace and control characters, quotes,
// shell and comment metacharacters, and YAML's flow and tag indicators.
// Types that need one of these (':' and '[' ']' for host:port) allow it
// explicitly.
const forbidden = " \t\r\n\v\f\"'`$;#\\{}[],&*!|>%@?<=~^()"

func checkChars(field, value, allow string) error {
	if value == "" {
		return &InputError{Field: field, Value: value, Reason: "must not be empty"}
	}
	for _, r := range value {
		switch {
		case r < 0x20 || r == 0x7f:
			return &InputError{Field: field, Value: value, Reason: "contains a control character (newline, tab, …)"}
		case r > 0x7e:
			return &InputError{Field: field, Value: value, Reason: "contains a non-ASCII character (use punycode for names)"}
		case strings.ContainsRune(forbidden, r) && !strings.ContainsRune(allow, r):
			if r == ' ' {
				return &InputError{Field: field, Value: value, Reason: "contains a space"}
			}
			return &InputError{Field: field, Value: value, Reason: fmt.Sprintf("contains %q, which is not allowed here", r)}
		}
	}
	return nil
}

// Host is a DNS name (RFC 1123, at most 253 characters, labels of 1–63
// letters, digits and inner hyphens) or an IP address literal. IPv6 is held
// without brackets.
type Host string

var labelRE = lazyRegexp(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// ParseHost validates a bare host name or IP literal (no port).
func ParseHost(field, s string) (Host, error) {
	if err := checkChars(field, s, ":"); err != nil {
		return "", err
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return "", &InputError{Field: field, Value: s, Reason: "IPv6 zones are not supported"}
		}
		return Host(ip.String()), nil
	}
	if strings.Contains(s, ":") {
		return "", &InputError{Field: field, Value: s, Reason: "not a host name or IP address"}
	}
	name := strings.TrimSuffix(s, ".")
	if len(name) > 253 {
		return "", &InputError{Field: field, Value: s, Reason: "longer than 253 characters"}
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !labelRE().MatchString(l) {
			return "", &InputError{Field: field, Value: s, Reason: "not a valid host name (RFC 1123: letters, digits, inner hyphens, labels of 1–63)"}
		}
		if keyLikeLabel(l) {
			return "", &InputError{Field: field, Value: s, Reason: "looks like key material, not a host name"}
		}
	}
	// A name of digits and dots only would be read as a (bad) IPv4 address.
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return "", &InputError{Field: field, Value: s, Reason: "looks like an IPv4 address but is not one"}
	}
	return Host(name), nil
}

// keyLikeLabel reports whether a host name label is more likely an encoded
// key than a name: 32 characters or more mixing upper- and lower-case
// letters. DNS names are case-insensitive and written in one case; any 32
// characters of a base64 key lack one of the cases with odds of about one
// in 10^7, and its encodings are all longer than 32.
func keyLikeLabel(l string) bool {
	return len(l) >= 32 && strings.ToLower(l) != l && strings.ToUpper(l) != l
}

// IsIP reports whether h is an IP literal.
func (h Host) IsIP() bool { _, err := netip.ParseAddr(string(h)); return err == nil }

// Port is a TCP/UDP port, 1–65535.
type Port uint16

// ParsePort validates a port number.
func ParsePort(field, s string) (Port, error) {
	if err := checkChars(field, s, ""); err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '0' {
		return 0, &InputError{Field: field, Value: s, Reason: "not a port number (1–65535)"}
	}
	return Port(n), nil
}

// HostPort is a host with an optional port (0 = the service's default).
type HostPort struct {
	Host Host
	Port Port
}

// ParseHostPort accepts "host", "host:port", "IPv4:port", "[IPv6]:port",
// "[IPv6]" and a bare IPv6 literal.
func ParseHostPort(field, s string) (HostPort, error) {
	if err := checkChars(field, s, ":[]"); err != nil {
		return HostPort{}, err
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return HostPort{}, &InputError{Field: field, Value: s, Reason: "missing ']'"}
		}
		ip, err := netip.ParseAddr(s[1:end])
		if err != nil || !ip.Is6() {
			return HostPort{}, &InputError{Field: field, Value: s, Reason: "brackets must hold an IPv6 address"}
		}
		hp := HostPort{Host: Host(ip.String())}
		rest := s[end+1:]
		if rest == "" {
			return hp, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return HostPort{}, &InputError{Field: field, Value: s, Reason: "unexpected text after ']'"}
		}
		p, err := ParsePort(field, rest[1:])
		if err != nil {
			return HostPort{}, err
		}
		hp.Port = p
		return hp, nil
	}
	if strings.Count(s, ":") > 1 { // bare IPv6 literal
		h, err := ParseHost(field, s)
		return HostPort{Host: h}, err
	}
	host, port, hasPort := strings.Cut(s, ":")
	if strings.ContainsAny(s, "[]") {
		return HostPort{}, &InputError{Field: field, Value: s, Reason: "brackets are only for IPv6 addresses"}
	}
	h, err := ParseHost(field, host)
	if err != nil {
		return HostPort{}, err
	}
	hp := HostPort{Host: h}
	if hasPort {
		p, err := ParsePort(field, port)
		if err != nil {
			return HostPort{}, err
		}
		hp.Port = p
	}
	return hp, nil
}

// String formats hp as "host", "host:port" or "[v6]:port".
func (hp HostPort) String() string {
	if hp.Port == 0 {
		return string(hp.Host)
	}
	h := string(hp.Host)
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(hp.Port))
}

// WithDefaultPort returns hp with port p if it has none.
func (hp HostPort) WithDefaultPort(p Port) HostPort {
	if hp.Port == 0 {
		hp.Port = p
	}
	return hp
}

// ParseBindAddr validates an address for hbbs/hbbr's -b flag: an IP literal.
func ParseBindAddr(field, s string) (netip.Addr, error) {
	if err := checkChars(field, s, ":"); err != nil {
		return netip.Addr{}, err
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, &InputError{Field: field, Value: s, Reason: "not an IP address (hbbs/hbbr bind to an address, not a name)"}
	}
	return ip, nil
}

// AbsPath is a clean absolute path with no characters that need quoting.
type AbsPath string

// ParseAbsPath validates an absolute path.
func ParseAbsPath(field, s string) (AbsPath, error) {
	if err := checkChars(field, s, "@=,"); err != nil {
		return "", err
	}
	if !path.IsAbs(s) {
		return "", &InputError{Field: field, Value: s, Reason: "must be an absolute path"}
	}
	if c := path.Clean(s); c != s && c+"/" != s {
		return "", &InputError{Field: field, Value: s, Reason: fmt.Sprintf("not a clean path (did you mean %s?)", textsafe.Echo(c))}
	}
	return AbsPath(path.Clean(s)), nil
}

// ImageRef is a container image reference: [registry[:port]/]path[:tag][@sha256:digest].
type ImageRef string

var imageRE = lazyRegexp(`^` +
	`(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?/)?` + // registry
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` + // path
	`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?` + // tag
	`(?:@sha256:[a-f0-9]{64})?$`)

// ParseImageRef validates an image reference.
func ParseImageRef(field, s string) (ImageRef, error) {
	if err := checkChars(field, s, ":@"); err != nil {
		return "", err
	}
	if len(s) > 255 || !imageRE().MatchString(s) {
		return "", &InputError{Field: field, Value: s, Reason: "not an image reference (e.g. rustdesk/rustdesk-server:1.1.16)"}
	}
	return ImageRef(s), nil
}

// Version is a RustDesk server version such as 1.1.16 or 1.1.10-3.
type Version struct {
	Major, Minor, Patch, Rev int
}

var versionRE = lazyRegexp(`^v?([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})(?:-([0-9]{1,4}))?$`)

// ParseVersion validates a version.
func ParseVersion(field, s string) (Version, error) {
	if err := checkChars(field, s, ""); err != nil {
		return Version{}, err
	}
	m := versionRE().FindStringSubmatch(s)
	if m == nil {
		return Version{}, &InputError{Field: field, Value: s, Reason: "not a version (e.g. 1.1.16)"}
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.Rev, _ = strconv.Atoi(m[4])
	}
	return v, nil
}

// Less orders versions.
func (v Version) Less(w Version) bool {
	a := [4]int{v.Major, v.Minor, v.Patch, v.Rev}
	b := [4]int{w.Major, w.Minor, w.Patch, w.Rev}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Rev != 0 {
		s += fmt.Sprintf("-%d", v.Rev)
	}
	return s
}

// UserName is a system user name (Debian's rules: lower case, digits, '-',
// '_', starting with a letter or '_', at most 32).
type UserName string

var userRE = lazyRegexp(`^[a-z_][a-z0-9_-]{0,31}$`)

// ParseUserName validates a user name.
func ParseUserName(field, s string) (UserName, error) {
	if err := checkChars(field, s, ""); err != nil {
		return "", err
	}
	if !userRE().MatchString(s) {
		return "", &InputError{Field: field, Value: s, Reason: "not a valid system user name"}
	}
	return UserName(s), nil
}

// ParseDataDir validates a directory rdctl keeps or reads deployment files
// in (a record's working, binary and compose directories): a clean absolute
// path that is not "/" and not under /proc, /sys or /dev.
func ParseDataDir(field, s string) (AbsPath, error) {
	p, err := ParseAbsPath(field, s)
	if err != nil {
		return "", err
	}
	if p == "/" {
		return "", &InputError{Field: field, Value: s, Reason: "must not be the root directory"}
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if string(p) == sys || strings.HasPrefix(string(p), sys+"/") {
			return "", &InputError{Field: field, Value: s, Reason: "must not be under " + sys}
		}
	}
	return p, nil
}

// unitRE is a systemd service unit name: unit-name characters, an optional
// template instance after '@', and the .service suffix; no '/' and no
// leading '.', '-' or '@'.
var unitRE = lazyRegexp(`^[A-Za-z0-9_:][A-Za-z0-9_:.@-]*\.service$`)

// ParseUnitName validates a systemd service unit name such as hbbs.service
// or rustdesk-hbbs@main.service (at most 255 characters, like systemd's).
func ParseUnitName(field, s string) error {
	if err := checkChars(field, s, "@"); err != nil {
		return err
	}
	if len(s) > 255 || !unitRE().MatchString(s) {
		return &InputError{Field: field, Value: s, Reason: "not a systemd service unit name (e.g. hbbs.service)"}
	}
	return nil
}

// ParseAPI validates an API server URL: http(s), a host[:port], an optional
// path; no user info, query or fragment. It returns the URL without
// trailing slashes.
func ParseAPI(field, s string) (string, error) {
	bad := func(reason string) error { return &InputError{Field: field, Value: s, Reason: reason} }
	for _, r := range s {
		switch {
		case r <= ' ' || r == 0x7f:
			return "", bad("contains a space or control character")
		case r > 0x7e:
			return "", bad("contains a non-ASCII character (use punycode for names)")
		case strings.ContainsRune("\"'`\\", r):
			return "", bad(fmt.Sprintf("contains %q, which is not allowed here", r))
		}
	}
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return "", bad("must start with http:// or https://")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", bad("not a URL")
	}
	switch {
	case u.User != nil:
		return "", bad("must not hold a user name or password")
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return "", bad("must not have a query or fragment")
	case u.Host == "":
		return "", bad("has no host")
	}
	if _, err := ParseHostPort(field, u.Host); err != nil {
		return "", err
	}
	return strings.TrimRight(s, "/"), nil
}

// lazyRegexp compiles a pattern on first use: package-level MustCompile runs
// at every rdctl start, including commands that never validate anything.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}
