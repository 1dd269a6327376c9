package clientconf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrBadString is matched (errors.Is) by every error of [DecodeString] and
// [DecodeStringCLI].
var ErrBadString = errors.New("not a RustDesk server config string")

// stringEncoding is what `rustdesk --config` decodes with (URL_SAFE_NO_PAD,
// in get_custom_server_from_config_string): URL-safe alphabet, no padding,
// canonical trailing bits.
var stringEncoding = base64.RawURLEncoding.Strict()

// stringFields is the JSON inside a config string. The field order is the
// order of the GUI encoder (ServerConfig.encode) and is part of the
// byte-exact output. The fields are Server's first four, in Server's order:
// EncodeString converts one into the other, so a change to them fails to
// compile rather than drop a field. Server.AllowWebSocket has no place in
// the string (the client's CustomServer has none).
type stringFields struct {
	Host  string `json:"host"`
	Relay string `json:"relay"`
	API   string `json:"api"`
	Key   string `json:"key"`
}

// EncodeString returns the canonical config string:
// reverse(base64.RawURLEncoding(compact JSON {"host","relay","api","key"})).
// Empty relay and api are written as "". This form is accepted by the GUI's
// "Import server config", by `rustdesk --config` and inside installer file
// names; GUI exports differ only by leading '=' padding, which --config
// rejects. It always ends in "Jye" and never contains "--".
func EncodeString(s Server) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	j, err := compactJSON(stringFields{s.Host, s.Relay, s.API, s.Key})
	if err != nil {
		return "", err
	}
	return reverse(stringEncoding.EncodeToString(j)), nil
}

// compactJSON marshals v without HTML escaping (the GUI's jsonEncode does not
// escape <, > or &) and without a trailing newline.
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeStringCLI decodes s exactly as `rustdesk --config` and the installer
// file-name parser do (get_custom_server_from_config_string): reverse, base64
// with the URL-safe alphabet and no padding, then a JSON object. Unknown
// fields are ignored and missing ones are "". Anything else is rejected:
// padding, '+' or '/', whitespace anywhere, plain JSON, a non-string or
// duplicated field. (RustDesk's extra fallback, strings signed with
// RustDesk's own licence key, cannot occur for a self-hosted server and is
// not implemented.) It does not validate the result.
func DecodeStringCLI(s string) (Server, error) {
	if s == "" {
		return Server{}, fmt.Errorf("%w: empty", ErrBadString)
	}
	// Go's base64 decoder silently skips \r and \n; RustDesk's does not.
	if strings.ContainsAny(s, "\r\n") {
		return Server{}, fmt.Errorf("%w: contains a line break", ErrBadString)
	}
	b, err := stringEncoding.DecodeString(reverse(s))
	if err != nil {
		return Server{}, fmt.Errorf("%w: reversed text is not unpadded URL-safe base64: %v", ErrBadString, err)
	}
	return decodeFields(b)
}

// DecodeString decodes a config string the way a person may paste it, and
// accepts everything the GUI's import accepts (ServerConfig.decode):
// surrounding whitespace; plain JSON (text starting with '{'); the canonical
// form; GUI exports with leading '=' or '==' padding; the pre-1.3.3 standard
// alphabet ('+' and '/'), padded or not. Whitespace inside the string is
// rejected. The payload must be a JSON object as in [DecodeStringCLI]. It
// does not validate the result.
func DecodeString(s string) (Server, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		return decodeFields([]byte(s))
	}
	if s == "" {
		return Server{}, fmt.Errorf("%w: empty", ErrBadString)
	}
	pad := len(s) - len(strings.TrimLeft(s, "="))
	body := s[pad:]
	if pad > 2 {
		return Server{}, fmt.Errorf("%w: %d leading '=' (at most 2 are padding)", ErrBadString, pad)
	}
	if pad > 0 && (len(body)+pad)%4 != 0 {
		return Server{}, fmt.Errorf("%w: wrong amount of '=' padding", ErrBadString)
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; !isBase64Char(c) {
			return Server{}, fmt.Errorf("%w: character %q at offset %d is not base64", ErrBadString, c, pad+i)
		}
	}
	norm := strings.NewReplacer("+", "-", "/", "_").Replace(reverse(body))
	b, err := stringEncoding.DecodeString(norm)
	if err != nil {
		return Server{}, fmt.Errorf("%w: not base64: %v", ErrBadString, err)
	}
	return decodeFields(b)
}

// isBase64Char reports whether c belongs to either base64 alphabet, padding
// excluded.
func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '+' || c == '/'
}

// decodeFields parses the JSON payload like RustDesk's serde_json decoding of
// CustomServer: one JSON object, valid UTF-8, keys matched case-sensitively,
// unknown keys ignored, each known key at most once and a string if present.
func decodeFields(b []byte) (Server, error) {
	if !utf8.Valid(b) {
		return Server{}, fmt.Errorf("%w: payload is not UTF-8", ErrBadString)
	}
	if !json.Valid(b) {
		return Server{}, fmt.Errorf("%w: payload is not JSON", ErrBadString)
	}
	// Token-level decoding: encoding/json's struct decoding matches keys
	// case-insensitively and lets a later duplicate win, both unlike serde.
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Server{}, fmt.Errorf("%w: payload is not a JSON object", ErrBadString)
	}
	var s Server
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return Server{}, fmt.Errorf("%w: %v", ErrBadString, err)
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Server{}, fmt.Errorf("%w: %v", ErrBadString, err)
		}
		var dst *string
		switch name {
		case "host":
			dst = &s.Host
		case "relay":
			dst = &s.Relay
		case "api":
			dst = &s.API
		case "key":
			dst = &s.Key
		default:
			continue
		}
		if seen[name] {
			return Server{}, fmt.Errorf("%w: duplicate field %q", ErrBadString, name)
		}
		seen[name] = true
		if len(raw) == 0 || raw[0] != '"' {
			return Server{}, fmt.Errorf("%w: field %q is not a string", ErrBadString, name)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return Server{}, fmt.Errorf("%w: field %q: %v", ErrBadString, name, err)
		}
	}
	return s, nil
}

// reverse reverses s by characters, as the client does.
func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
