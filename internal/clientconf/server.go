// Package clientconf encodes and decodes every form in which a RustDesk client
// receives its server settings: RustDesk2.toml, the provisioning bundle's
// server.conf, the "Export server config" string, the Windows installer file
// names, a JSON document, a PowerShell imaging script and a QR code.
//
// Everything here works from public values only — host names, URLs and the
// server's public key. No function takes, reads or returns a secret key, so no
// output can contain one.
//
// The formats and the client's parsing rules are those of the RustDesk
// client's source (rustdesk/rustdesk and hbb_common); comments name the
// client function a rule comes from. Decoders follow the client's own rules,
// including what it tolerates, so a value that decodes here is a value the
// client accepts; encoders validate first and only ever emit the canonical
// form. [Render] encodes and decodes again before returning, so a caller that
// writes what Render returns never writes something rdctl itself could not
// read back (the QR code's text is checked so; the image is proven by the
// tests, see [Verify]).
package clientconf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Server is the client-side view of a RustDesk server: the four values a
// client needs. The zero value is not valid; Host and Key are required.
//
// Decoders return what they find without validating it (the file-name parser
// must report `api=abc` as "abc", as the client would); call [Server.Validate]
// before trusting a decoded value. Encoders validate before encoding.
type Server struct {
	// Host is the ID server (hbbs) as host[:port]; without a port the client
	// uses 21116. Required.
	Host string
	// Relay is the relay server (hbbr) as host[:port], or "" to let the client
	// derive it from Host (port 21117).
	Relay string
	// API is the API server URL (http:// or https://), or "" for none. Only
	// RustDesk Server Pro has one.
	API string
	// Key is the server's Ed25519 public key: standard base64 with padding of
	// the 32 key bytes, 44 characters ending in "=", exactly as hbbs writes
	// id_ed25519.pub. hbbs compares it byte for byte, so no other spelling
	// (URL-safe alphabet, no padding, whitespace) is accepted. Required: an
	// empty key makes the client send the public rustdesk.com key (its
	// get_key).
	Key string
	// AllowWebSocket is the client option allow-websocket = 'Y' (client
	// 1.4.0+): every connection to hbbs and hbbr goes over WebSocket, as
	// wss://HOST/ws/id and /ws/relay when Host is a name and API starts
	// with https. Only RustDesk2.toml carries it (and the formats built on
	// it: server.conf, the PowerShell script, the JSON export); the config
	// string, the installer names and the QR code cannot (see
	// [CarriesWebSocket]).
	AllowWebSocket bool
}

// CarriesWebSocket reports whether format f can carry allow-websocket. The
// config string (and so --config, the QR code and the licensed installer
// name) holds only host, relay, api and key; the host= installer name only
// those four keys too.
func CarriesWebSocket(f Format) bool {
	switch f {
	case FormatTOML, FormatServerConf, FormatPS1, FormatJSON:
		return true
	}
	return false
}

// ErrInvalid is matched (errors.Is) by every [ValidationError].
var ErrInvalid = errors.New("invalid client configuration")

// ValidationError reports the first field of a [Server] that [Server.Validate]
// rejected. The values it quotes are public (host names, URLs, public keys).
type ValidationError struct {
	Field  string // "host", "relay", "api" or "key"
	Value  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Validate checks every field and returns a *ValidationError for the first bad
// one. The rules are stricter than the client's because every value ends up in
// a TOML literal string, a JSON string, a Windows file name and a PowerShell
// single-quoted literal:
//
//   - all fields: printable ASCII only — no whitespace, no control characters,
//     no quotes of any kind (' " `), no backslash, nothing non-ASCII (use
//     punycode for international names);
//   - Host (required) and Relay (optional): a DNS name or IPv4 address, or an
//     IPv6 address in brackets, with an optional :port in 1..65535;
//   - API (optional): an absolute http:// or https:// URL with a host;
//   - Key (required): 44 characters of padded standard base64 that decode to
//     exactly 32 bytes, in canonical form (unused bits zero).
func (s Server) Validate() error {
	if s.Host == "" {
		return &ValidationError{"host", s.Host, "the ID server is required"}
	}
	if err := checkEndpoint("host", s.Host); err != nil {
		return err
	}
	if s.Relay != "" {
		if err := checkEndpoint("relay", s.Relay); err != nil {
			return err
		}
	}
	if s.API != "" {
		if err := checkAPI(s.API); err != nil {
			return err
		}
	}
	return checkKey(s.Key)
}

// checkChars enforces the character set shared by all fields; see Validate.
func checkChars(field, v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 0x80:
			return &ValidationError{field, v, "non-ASCII characters are not allowed (use punycode)"}
		case c <= ' ' || c == 0x7f:
			return &ValidationError{field, v, "whitespace and control characters are not allowed"}
		case c == '\'' || c == '"' || c == '`':
			return &ValidationError{field, v, "quotes are not allowed"}
		case c == '\\':
			return &ValidationError{field, v, "backslashes are not allowed"}
		}
	}
	return nil
}

// checkEndpoint validates a host[:port] value.
func checkEndpoint(field, v string) error {
	if err := checkChars(field, v); err != nil {
		return err
	}
	host, port := v, ""
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return &ValidationError{field, v, "unterminated [IPv6] address"}
		}
		host = v[1:end]
		rest := v[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return &ValidationError{field, v, "unexpected text after ]"}
			}
			port = rest[1:]
			if port == "" {
				return &ValidationError{field, v, "empty port"}
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return &ValidationError{field, v, "not an IPv6 address in brackets"}
		}
	} else {
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i+1:]
			if port == "" {
				return &ValidationError{field, v, "empty port"}
			}
		}
		if strings.Contains(host, ":") {
			return &ValidationError{field, v, "IPv6 addresses must be written in brackets, e.g. [2001:db8::1]:21116"}
		}
		if err := checkHostName(host); err != "" {
			return &ValidationError{field, v, err}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return &ValidationError{field, v, "the port must be a number in 1..65535"}
		}
	}
	return nil
}

// checkHostName accepts DNS names (letters, digits, '-', '_' and '.', labels
// of 1..63 characters, 253 in all) and dotted IPv4 addresses; it returns a
// reason or "".
func checkHostName(h string) string {
	if h == "" {
		return "empty host name"
	}
	if len(h) > 253 {
		return "host name longer than 253 characters"
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" {
			return "empty label in host name"
		}
		if len(label) > 63 {
			return "host name label longer than 63 characters"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "host name labels cannot start or end with '-'"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("character %q is not allowed in a host name", c)
			}
		}
	}
	return ""
}

func checkAPI(v string) error {
	if err := checkChars("api", v); err != nil {
		return err
	}
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return &ValidationError{"api", v, "must start with http:// or https://"}
	}
	u, err := url.Parse(v)
	if err != nil {
		return &ValidationError{"api", v, "not a URL: " + err.Error()}
	}
	if u.Host == "" || u.Hostname() == "" {
		return &ValidationError{"api", v, "the URL has no host"}
	}
	return nil
}

// keyEncoding is how hbbs writes id_ed25519.pub and how the client decodes
// the configured key (get_rs_pk); Strict rejects non-canonical trailing bits.
var keyEncoding = base64.StdEncoding.Strict()

func checkKey(v string) error {
	if v == "" {
		return &ValidationError{"key", v, "the public key is required (an empty key makes clients send the public rustdesk.com key)"}
	}
	if err := checkChars("key", v); err != nil {
		return err
	}
	if len(v) != 44 {
		return &ValidationError{"key", v, fmt.Sprintf("%d characters, want 44 (standard base64 of 32 bytes, with padding)", len(v))}
	}
	b, err := keyEncoding.DecodeString(v)
	if err != nil {
		return &ValidationError{"key", v, "not standard padded base64: " + err.Error()}
	}
	if len(b) != 32 {
		return &ValidationError{"key", v, fmt.Sprintf("decodes to %d bytes, want 32", len(b))}
	}
	return nil
}
