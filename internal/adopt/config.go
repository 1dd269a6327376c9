package adopt

import (
	"encoding/base64"
	"strings"

	"github.com/rdctl/rdctl/internal/keys"
)

// normKey is how hbbs names a setting once read: upper case, '_' as '-'
// (rustdesk-server src/common.rs init_args; 1.1.16 reads only the dashed
// name, HEAD also the others, so rdctl accepts every spelling).
func normKey(k string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(k), "_", "-"))
}

// envVars is a set of settings by normalised name. It may hold a secret key
// (KEY=…): it never leaves this package, only its classification does.
type envVars map[string]string

// parseEnvFile parses a .env (dotenv) or systemd EnvironmentFile: one
// NAME=VALUE a line, '#' comments, an optional "export " prefix, values
// optionally in single or double quotes; an unquoted value ends at " #".
// Lines that are not assignments are skipped, as both readers do.
func parseEnvFile(data []byte) envVars {
	out := envVars{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		out[normKey(k)] = unquoteEnvValue(strings.TrimSpace(v))
	}
	return out
}

func unquoteEnvValue(v string) string {
	if len(v) >= 1 && (v[0] == '"' || v[0] == '\'') {
		if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
			return v[1 : 1+end]
		}
		return v[1:]
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// parseEnvironment parses the words of systemd Environment= values, each
// "NAME=VALUE" (quoted as a whole when it holds spaces).
func parseEnvironment(values []string) envVars {
	out := envVars{}
	for _, v := range values {
		words, err := splitWords(v)
		if err != nil {
			continue // systemd ignores the assignment too
		}
		for _, w := range words {
			if k, val, ok := strings.Cut(w, "="); ok && k != "" {
				out[normKey(k)] = val
			}
		}
	}
	return out
}

// KeyKind says what a -k/KEY value makes hbbs or hbbr do
// (rustdesk-server get_server_sk, §1 of the reference).
type KeyKind string

const (
	// KeyNone: nothing given; hbbr then checks no key.
	KeyNone KeyKind = "none"
	// KeyDefault: nothing given to hbbs, which defaults to "-" since
	// 1.1.11: load or create id_ed25519 and enforce it.
	KeyDefault KeyKind = "default"
	// KeyEmpty: an empty value (KEY=): no key is enforced.
	KeyEmpty KeyKind = "empty"
	// KeyFile: "-" or "_": id_ed25519 in the working directory is loaded
	// (or generated) and enforced.
	KeyFile KeyKind = "file"
	// KeySecret: a base64 secret key given directly; the files are not read.
	KeySecret KeyKind = "secret"
	// KeyPublic: a base64 public key: enforced as a string, but hbbs then
	// signs nothing.
	KeyPublic KeyKind = "public"
	// KeyLiteral: any other string, enforced as is.
	KeyLiteral KeyKind = "literal"
)

// classifyKey says what value v for -k/KEY is; it never keeps v.
func classifyKey(v string) KeyKind {
	switch v {
	case "":
		return KeyEmpty
	case "-", "_":
		return KeyFile
	}
	if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
		switch len(raw) {
		case 64:
			return KeySecret
		case keys.PublicSize:
			return KeyPublic
		}
	}
	return KeyLiteral
}

// Enforced reports whether a server with this key kind rejects clients
// that present another key.
func (k KeyKind) Enforced() bool { return k != KeyNone && k != KeyEmpty }

// UsesFile reports whether the key served comes from id_ed25519 in the
// working directory, which is what rotate replaces.
func (k KeyKind) UsesFile() bool { return k == KeyFile || k == KeyDefault }
