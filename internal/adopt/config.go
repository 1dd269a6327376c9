package adopt

import (
	"encoding/base64"
	"strings"

	"github.com/rdctl/rdctl/internal/keys"
)

// normKey is how hbbs 1.1.16 names a setting it reads from its .env (and
// --config, and flags): upper case, '_' as '-' (its arg_name). It reads the
// process environment by that dashed name only, and hbbr reads both its
// environment and its .env by the exact name (as measured): so "key=" in
// hbbr's .env, and Environment=key= or RELAY_SERVERS= for either, set
// nothing.
func normKey(k string) string {
	return strings.ToUpper(strings.ReplaceAll(k, "_", "-"))
}

// envVar is one assignment, its name as written, and where it was read
// (for messages: "Environment= in UNIT", a file's path).
type envVar struct{ Name, Value, Where string }

// envVars are assignments in the order read, names as written. They may
// hold a secret key (KEY=…): they never leave this package, only their
// classification does.
type envVars []envVar

// exact returns the value the last assignment of exactly name sets, as a
// process environment and hbbr's .env are read.
func (e envVars) exact(name string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i].Name == name {
			return e[i].Value, true
		}
	}
	return "", false
}

// normalised returns the value of the last assignment whose name hbbs
// normalises to name, as hbbs reads its .env.
func (e envVars) normalised(name string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if normKey(e[i].Name) == name {
			return e[i].Value, true
		}
	}
	return "", false
}

// parseEnvFile parses a .env (dotenv) or systemd EnvironmentFile: one
// NAME=VALUE a line, '#' comments, an optional "export " prefix, values
// optionally in single or double quotes; an unquoted value ends at " #".
// Lines that are not assignments are skipped, as both readers do. Names are
// kept as written: which spellings count depends on the reader.
func parseEnvFile(data []byte) envVars {
	var out envVars
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			continue
		}
		out = append(out, envVar{Name: k, Value: unquoteEnvValue(strings.TrimSpace(v))})
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
	var out envVars
	for _, v := range values {
		words, err := splitWords(v)
		if err != nil {
			continue // systemd ignores the assignment too
		}
		for _, w := range words {
			if k, val, ok := strings.Cut(w, "="); ok && k != "" {
				out = append(out, envVar{Name: k, Value: val})
			}
		}
	}
	return out
}

// from sets where every assignment of e was read.
func (e envVars) from(where string) envVars {
	for i := range e {
		e[i].Where = where
	}
	return e
}

// holdsSecret reports whether any assignment whose name could mean KEY to
// either server holds a secret key: readable by others, it is exposed
// whether or not the server reads that spelling.
func (e envVars) holdsSecret() bool {
	for _, v := range e {
		if normKey(v.Name) == "KEY" && classifyKey(v.Value) == KeySecret {
			return true
		}
	}
	return false
}

// KeyKind says what a -k/KEY value makes hbbs or hbbr do
// (rustdesk-server's get_server_sk in hbbs and in hbbr).
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
	// A secret decodes as hbbs decodes id_ed25519, padding optional
	// (measured on 1.1.16), but the value is taken as given, not trimmed.
	if strings.TrimSpace(v) == v {
		if _, err := keys.ParseSecret([]byte(v)); err == nil {
			return KeySecret
		}
	}
	if raw, err := base64.StdEncoding.DecodeString(v); err == nil && len(raw) == keys.PublicSize {
		return KeyPublic
	}
	return KeyLiteral
}

// Enforced reports whether a server with this key kind rejects clients
// that present another key.
func (k KeyKind) Enforced() bool { return k != KeyNone && k != KeyEmpty }

// UsesFile reports whether the key served comes from id_ed25519 in the
// working directory, which is what rotate replaces.
func (k KeyKind) UsesFile() bool { return k == KeyFile || k == KeyDefault }
