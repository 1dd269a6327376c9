package clientconf

import (
	"bytes"
	"errors"
	"fmt"
)

// Format names one output format. The names are the values of
// `rdctl export --format`.
type Format string

// The formats. Text formats other than the files (string, exe names) carry
// no trailing newline; the caller adds one when it prints or writes them.
const (
	FormatTOML            Format = "toml"              // RustDesk2.toml
	FormatServerConf      Format = "server.conf"       // RustDesk2.toml under an explanatory header
	FormatString          Format = "string"            // the config string
	FormatExeName         Format = "exe-name"          // rustdesk-host=H,key=K,relay=R,api=A,.exe
	FormatExeNameLicensed Format = "exe-name-licensed" // rustdesk-licensed-<string>.exe
	FormatJSON            Format = "json"              // JSONExport
	FormatPS1             Format = "ps1"               // PowerShell imaging script
	FormatQR              Format = "qr"                // PNG of config=<string>
)

// Formats lists every format, in the order `export --format all` should
// produce them.
var Formats = []Format{
	FormatTOML, FormatServerConf, FormatString, FormatExeName,
	FormatExeNameLicensed, FormatJSON, FormatPS1, FormatQR,
}

// ErrUnknownFormat is returned for a Format not in [Formats].
var ErrUnknownFormat = errors.New("unknown client config format")

// ErrNoDecoder is returned by [Decode] for FormatQR: rdctl draws QR codes
// but reads no images. [DecodeQRText] decodes the text a scanner read.
var ErrNoDecoder = errors.New("rdctl has no decoder for this format")

// Encode returns s in format f. It validates s (and o) first. Options are
// used by FormatJSON only.
func Encode(f Format, s Server, o Options) ([]byte, error) {
	switch f {
	case FormatTOML:
		return EncodeTOML(s)
	case FormatServerConf:
		return EncodeServerConf(s)
	case FormatString:
		cs, err := EncodeString(s)
		return []byte(cs), err
	case FormatExeName:
		n, err := ExeName(s)
		return []byte(n), err
	case FormatExeNameLicensed:
		n, err := LicensedExeName(s)
		return []byte(n), err
	case FormatJSON:
		return EncodeJSON(s, o)
	case FormatPS1:
		return EncodePS1(s)
	case FormatQR:
		return EncodeQR(s)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownFormat, f)
}

// Decode reads data in format f with this package's decoder for it; for
// FormatQR there is none ([ErrNoDecoder]). It does not validate the result. For FormatJSON the fingerprint is returned in o.
// String and exe-name data are taken as they are (no trimming): DecodeString
// itself tolerates surrounding whitespace, the file-name parser does not.
func Decode(f Format, data []byte) (s Server, o Options, err error) {
	switch f {
	case FormatTOML:
		s, err = DecodeTOML(data)
	case FormatServerConf:
		s, err = DecodeServerConf(data)
	case FormatString:
		s, err = DecodeString(string(data))
	case FormatExeName, FormatExeNameLicensed:
		s, err = ParseExeName(string(data))
	case FormatJSON:
		var e JSONExport
		e, err = DecodeJSON(data)
		s, o = e.Server(), Options{Fingerprint: e.Fingerprint}
	case FormatPS1:
		s, err = DecodePS1(data)
	case FormatQR:
		err = fmt.Errorf("%w: %s (decode the scanned text with DecodeQRText)", ErrNoDecoder, f)
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownFormat, f)
	}
	return s, o, err
}

// ErrMismatch is matched (errors.Is) by every [MismatchError].
var ErrMismatch = errors.New("encoded client config does not decode to its input")

// MismatchError means an encoder produced output that this package's own
// decoder reads back differently, or not at all. It is always a bug in rdctl;
// the output must not be written.
type MismatchError struct {
	Format Format
	Want   Server
	Got    Server
	Detail string // what differed, or the decoder's error
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s output does not round-trip (a bug in rdctl): %s", e.Format, e.Detail)
}

// Is makes errors.Is(err, ErrMismatch) true for every MismatchError.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Render encodes s in format f and decodes the result again before returning
// it; any difference is a *MismatchError. Callers write what Render returns
// and nothing else. Beyond the format's own decoder it checks:
//
//   - string: `rustdesk --config`'s stricter decoder also accepts it, and
//     re-encoding gives the same bytes (it is canonical);
//   - exe names: the name has the requested form;
//   - json: the fingerprint comes back too;
//   - ps1: the embedded RustDesk2.toml decodes, and is byte-identical to
//     [EncodeTOML]'s output;
//   - qr: there is no decoder; the text, [QRPayload], passes the string
//     checks and the PNG is exactly [EncodeQR]'s symbol of it (see
//     verifyQR: that the symbol scans is proven by the tests).
//
// Errors from encoding (a *ValidationError, a *FileNameError) are returned
// as they are.
func Render(f Format, s Server, o Options) ([]byte, error) {
	out, err := Encode(f, s, o)
	if err != nil {
		return nil, err
	}
	if err := Verify(f, s, o, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Verify checks that out, claimed to be s (and o) in format f, decodes back
// to exactly that; see [Render] for the checks. It returns a *MismatchError.
func Verify(f Format, s Server, o Options, out []byte) error {
	mismatch := func(got Server, format string, args ...any) error {
		return &MismatchError{Format: f, Want: s, Got: got, Detail: fmt.Sprintf(format, args...)}
	}
	if !CarriesWebSocket(f) {
		// the format cannot say it: what it decodes to lacks it
		s.AllowWebSocket = false
	}
	if f == FormatQR {
		return verifyQR(s, out)
	}
	got, gotOpts, err := Decode(f, out)
	if err != nil {
		return mismatch(got, "decode: %v", err)
	}
	if got != s {
		return mismatch(got, "decoded %+v, want %+v", got, s)
	}
	switch f {
	case FormatString:
		cli, err := DecodeStringCLI(string(out))
		if err != nil {
			return mismatch(cli, "rustdesk --config would reject it: %v", err)
		}
		if cli != s {
			return mismatch(cli, "rustdesk --config would read %+v", cli)
		}
		again, err := EncodeString(got)
		if err != nil || again != string(out) {
			return mismatch(got, "not canonical: re-encoding gives %q (%v)", again, err)
		}
	case FormatExeName:
		if !bytes.HasPrefix(out, []byte("rustdesk-host=")) {
			return mismatch(got, "%q is not the host= form", out)
		}
	case FormatExeNameLicensed:
		if !bytes.HasPrefix(out, []byte("rustdesk-licensed-")) {
			return mismatch(got, "%q is not the licensed form", out)
		}
	case FormatJSON:
		if gotOpts != o {
			return mismatch(got, "fingerprint %q, want %q", gotOpts.Fingerprint, o.Fingerprint)
		}
	case FormatPS1:
		t, err := EncodeTOML(s)
		if err != nil {
			return mismatch(got, "%v", err)
		}
		if !containsTOML(out, t) {
			return mismatch(got, "the script does not embed %s byte for byte", TOMLFileName)
		}
	}
	return nil
}

// containsTOML reports whether script embeds toml as the settings
// here-string body (toml's final newline is added by the script).
func containsTOML(script, toml []byte) bool {
	return bytes.Contains(script, append(append([]byte(ps1TOMLStart), toml...), "'@"...))
}
