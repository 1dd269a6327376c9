package clientconf

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotInFileName is matched (errors.Is) by every [FileNameError].
var ErrNotInFileName = errors.New("configuration cannot be expressed as an installer file name")

// FileNameError reports why a [Server] cannot be put into an installer file
// name of the given form. The usual cause is a key containing '/', which
// hbbs avoids when it generates a key but `rustdesk-utils genkeypair` does
// not; the licensed form ([LicensedExeName]) never has that problem.
type FileNameError struct {
	Form   string // "host=" or "licensed"
	Field  string // "host", "relay", "api", "key", or "name" for the whole name
	Reason string
}

func (e *FileNameError) Error() string {
	return fmt.Sprintf("cannot build the %s installer file name: %s %s", e.Form, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrNotInFileName) true for every FileNameError.
func (e *FileNameError) Is(target error) bool { return target == ErrNotInFileName }

// ErrNoConfigInName is returned by [ParseExeName] when the name carries no
// configuration (upstream: "Failed to parse").
var ErrNoConfigInName = errors.New("no server configuration in the file name")

// windowsForbidden are the characters Windows does not allow in a file name
// (besides control characters, which Validate already rejects). ',' is added
// for the host= form, where it separates tokens.
const windowsForbidden = `<>:"/\|?*`

// maxFileName is the longest file name component NTFS allows.
const maxFileName = 255

// ExeName returns the installer file name in the host= form:
//
//	rustdesk-host=H,key=K,relay=R,api=A,.exe
//
// with the relay and api tokens left out when empty. The trailing comma is
// deliberate: a " (1)" that Windows appends to a second download then lands
// in a token the client ignores instead of garbling the key.
//
// It returns a *FileNameError when a value cannot appear in a Windows file
// name or in this form: a key with '/', a host:port or an API URL (':' and
// '/'), or a ',' . It also refuses names the client would treat specially
// (quick-support "-qs-", a trailing "install.exe") and names longer than 255
// characters. Note that installing from such a file persists host, key and
// api only; relay= is honoured by portable runs and --config (the
// client's install_me persists what get_license returns, without relay).
func ExeName(s Server) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	fields := []struct{ name, value string }{
		{"host", s.Host}, {"key", s.Key}, {"relay", s.Relay}, {"api", s.API},
	}
	var b strings.Builder
	b.WriteString("rustdesk-")
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		if i := strings.IndexAny(f.value, windowsForbidden+","); i >= 0 {
			return "", &FileNameError{"host=", f.name, fmt.Sprintf("contains %q, which cannot appear in it", f.value[i])}
		}
		b.WriteString(f.name + "=" + f.value + ",")
	}
	b.WriteString(".exe")
	return b.String(), checkExeName("host=", b.String())
}

// LicensedExeName returns the installer file name in the encoded form:
// "rustdesk-licensed-" + [EncodeString] + ".exe". It carries host, relay, api
// and any key, including keys with '/'.
func LicensedExeName(s Server) (string, error) {
	cs, err := EncodeString(s)
	if err != nil {
		return "", err
	}
	name := "rustdesk-licensed-" + cs + ".exe"
	return name, checkExeName("licensed", name)
}

// checkExeName rejects names that Windows cannot store or that change how the
// client starts (its core_main: "-qs-", "-qs.exe", "_qs.exe" mean quick
// support, a name ending in "install.exe" opens the installer UI).
func checkExeName(form, name string) error {
	lower := strings.ToLower(name)
	switch {
	case len(name) > maxFileName:
		return &FileNameError{form, "name", fmt.Sprintf("would be %d characters long, more than Windows allows (%d)", len(name), maxFileName)}
	case strings.Contains(lower, "-qs-") || strings.HasSuffix(lower, "-qs.exe") || strings.HasSuffix(lower, "_qs.exe"):
		return &FileNameError{form, "name", "would contain -qs-, which starts the client in quick-support mode"}
	case strings.HasSuffix(lower, "install.exe"):
		return &FileNameError{form, "name", "would end in install.exe, which opens the installer UI"}
	}
	return nil
}

// ParseExeName extracts the server configuration from an installer file name
// exactly as the Windows client does (get_custom_server_from_string in
// rustdesk's src/custom_server.rs). name is the file name only.
//
//  1. A trailing ".exe.exe" or ".exe" is removed (case-insensitively).
//  2. If the name contains "host=" (any case), the text from the first
//     "host=" on is split on ','; tokens starting with host=, key=, api= or
//     relay= (any case) set that field to the rest of the token, verbatim and
//     untrimmed, a later token winning; other tokens are ignored.
//  3. Otherwise "-licensed---", "-licensed--" and "-licensed-" are each
//     replaced by "--", the name is split on "--", and each trimmed segment
//     is decoded with [DecodeStringCLI]; a segment containing '(' is also
//     tried part by part, split on '(' and trimmed (for " (1)" renames).
//     The first segment that decodes wins; none gives ErrNoConfigInName.
//
// The result is not validated: "api=abc" yields API "abc", as in the client.
func ParseExeName(name string) (Server, error) {
	base := name
	if l := asciiLower(base); strings.HasSuffix(l, ".exe.exe") {
		base = base[:len(base)-len(".exe.exe")]
	} else if strings.HasSuffix(l, ".exe") {
		base = base[:len(base)-len(".exe")]
	}
	// asciiLower keeps byte offsets identical, so indexes found in the
	// lower-case copy are valid in base.
	lower := asciiLower(base)
	if i := strings.Index(lower, "host="); i >= 0 {
		var s Server
		for _, tok := range strings.Split(base[i:], ",") {
			lt := asciiLower(tok)
			switch {
			case strings.HasPrefix(lt, "host="):
				s.Host = tok[len("host="):]
			case strings.HasPrefix(lt, "key="):
				s.Key = tok[len("key="):]
			case strings.HasPrefix(lt, "api="):
				s.API = tok[len("api="):]
			case strings.HasPrefix(lt, "relay="):
				s.Relay = tok[len("relay="):]
			}
		}
		return s, nil
	}
	norm := strings.ReplaceAll(base, "-licensed---", "--")
	norm = strings.ReplaceAll(norm, "-licensed--", "--")
	norm = strings.ReplaceAll(norm, "-licensed-", "--")
	for _, seg := range strings.Split(norm, "--") {
		seg = strings.TrimSpace(seg)
		if s, err := DecodeStringCLI(seg); err == nil {
			return s, nil
		}
		if strings.Contains(seg, "(") {
			for _, part := range strings.Split(seg, "(") {
				if s, err := DecodeStringCLI(strings.TrimSpace(part)); err == nil {
					return s, nil
				}
			}
		}
	}
	return Server{}, fmt.Errorf("%w: %q", ErrNoConfigInName, name)
}

// asciiLower lower-cases ASCII letters only, leaving every other byte (and so
// every byte offset) unchanged.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
