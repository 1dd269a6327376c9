package keys

import "unicode/utf8"

// Verdict is what the real hbbs (1.1.16, measured) does at start with
// the id_ed25519 in its working directory. rdctl's own reading is stricter
// in one place, the halves' agreement, and this type is how callers tell a
// key hbbs refuses (it exits) from one it takes and then enforces nothing
// with, which looks like a working server.
type Verdict string

const (
	// VerdictAbsent: there is no id_ed25519; hbbs generates a pair.
	VerdictAbsent Verdict = "absent"
	// VerdictLoads: hbbs loads the key and enforces it.
	VerdictLoads Verdict = "loads"
	// VerdictFatal: hbbs prints "Fatal error: malformed private key in
	// id_ed25519." (on stdout) and exits 1.
	VerdictFatal Verdict = "fatal"
	// VerdictUnenforced: hbbs starts but enforces no key at all: the
	// halves disagree, the content is not UTF-8, or id_ed25519 is a
	// directory.
	VerdictUnenforced Verdict = "unenforced"
	// VerdictUnknown: rdctl cannot tell, because it does not follow a
	// symlink at id_ed25519, could not read the file, or the file is larger
	// than rdctl reads.
	VerdictUnknown Verdict = "unknown"
)

// Enforced reports whether a server with this verdict rejects clients that
// present another key (VerdictAbsent counts: hbbs generates and enforces a
// new pair, just not the one clients were given).
func (v Verdict) Enforced() bool { return v == VerdictLoads || v == VerdictAbsent }

// SecretVerdict says what hbbs does with data as the contents of a regular
// file id_ed25519. hbbs reads the file as UTF-8 text first, so content that
// is not UTF-8 makes it go on without a key before any decoding; then it
// decodes as [ParseSecret] does; a 64-byte secret whose public half is not
// the one its seed derives loads, but leaves nothing enforced.
func SecretVerdict(data []byte) Verdict {
	if !utf8.Valid(data) {
		return VerdictUnenforced
	}
	p, err := ParseSecret(data)
	if err != nil {
		return VerdictFatal
	}
	if p.Validate() != nil {
		return VerdictUnenforced
	}
	return VerdictLoads
}

// Consequence says in words what hbbs does with such a key file, for a
// message about an id_ed25519 rdctl cannot use; "" for a key hbbs enforces.
func (v Verdict) Consequence() string {
	switch v {
	case VerdictFatal:
		return `hbbs exits on it ("Fatal error: malformed private key in id_ed25519.", on its stdout)`
	case VerdictUnenforced:
		return "hbbs starts with it but enforces no key at all: every client gets through"
	case VerdictUnknown:
		return "what hbbs makes of it cannot be told from here"
	}
	return ""
}
