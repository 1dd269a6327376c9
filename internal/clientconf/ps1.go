package clientconf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/template"

	"github.com/rdctl/rdctl/templates"
)

// Windows locations the imaging script writes RustDesk2.toml to.
const (
	// WindowsServiceConfigDir is where the installed client's service reads
	// its settings: the LocalSystem profile, which the client rewrites to
	// ServiceProfiles\LocalService. This copy is authoritative: the UI reads
	// and writes options through the service.
	WindowsServiceConfigDir = `C:\Windows\ServiceProfiles\LocalService\AppData\Roaming\RustDesk\config`
	// WindowsDefaultUserConfigDir is the Default profile's copy, from which
	// new users' profiles are created; on an installed client it is a mirror.
	WindowsDefaultUserConfigDir = `C:\Users\Default\AppData\Roaming\RustDesk\config`
	// WindowsServiceName is the name of the service the client installs.
	WindowsServiceName = "RustDesk"
)

// ps1Data is what the install-config.ps1 template sees.
type ps1Data struct {
	ServiceName string
	FileName    string
	Dirs        []string
	TOML        string // a RustDesk2.toml without its final newline
}

// ps1Template is parsed once, on first use (not at every rdctl start); a
// broken template is a build-time bug.
var ps1Template = sync.OnceValue(func() *template.Template {
	return template.Must(template.New(templates.InstallConfigPS1).
		Funcs(template.FuncMap{"psq": psSingleQuoted, "here": psHereBody}).
		ParseFS(templates.FS, templates.InstallConfigPS1))
})

var errUnsafePS = errors.New("value cannot be embedded in PowerShell safely")

// psSingleQuoted returns v as a PowerShell single-quoted literal. Inside one,
// only a single quote (which PowerShell also recognises in the forms
// U+2018..U+201B) ends the literal; nothing expands. Validated values cannot
// contain any of these, but this is the last line of defence, so it checks:
// printable ASCII without ' only.
func psSingleQuoted(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '\'' {
			return "", fmt.Errorf("%w: %q", errUnsafePS, v)
		}
	}
	return "'" + v + "'", nil
}

// psHereBody returns text for the body of a single-quoted here-string
// (@'...'@). Nothing in the body expands; it ends only at a line that starts
// with '@. The body must be printable ASCII lines, none starting (after
// blanks) with a quote, and must not end in a newline (the template supplies the line break
// before the terminator).
func psHereBody(v string) (string, error) {
	if strings.HasSuffix(v, "\n") {
		return "", fmt.Errorf("%w: here-string body ends with a newline", errUnsafePS)
	}
	for _, line := range strings.Split(v, "\n") {
		// Leading blanks too: newer PowerShell versions accept an indented
		// terminator.
		if t := strings.TrimLeft(line, " \t"); strings.HasPrefix(t, "'") || strings.HasPrefix(t, `"`) {
			return "", fmt.Errorf("%w: here-string line %q starts with a quote", errUnsafePS, line)
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 || c > 0x7e {
				return "", fmt.Errorf("%w: here-string line %q has a non-printable character", errUnsafePS, line)
			}
		}
	}
	return v, nil
}

// PS1FileName is the name the provisioning tree gives the imaging script.
const PS1FileName = "install-config.ps1"

// EncodePS1 renders the PowerShell imaging script: it stops the RustDesk
// service if it is running, writes the RustDesk2.toml of [EncodeTOML] (UTF-8
// without BOM, atomically, creating the directories) into
// [WindowsServiceConfigDir] and [WindowsDefaultUserConfigDir], reads each file
// back, and starts the service again if it had been running. It never writes
// RustDesk.toml. The script is ASCII with LF line endings.
func EncodePS1(s Server) ([]byte, error) {
	t, err := EncodeTOML(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = ps1Template().Execute(&buf, ps1Data{
		ServiceName: WindowsServiceName,
		FileName:    TOMLFileName,
		Dirs:        []string{WindowsServiceConfigDir, WindowsDefaultUserConfigDir},
		TOML:        strings.TrimSuffix(string(t), "\n"),
	})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", PS1FileName, err)
	}
	return buf.Bytes(), nil
}

// Markers of the settings here-string in the script.
const (
	ps1TOMLStart = "$Toml = @'\n"
	ps1TOMLEnd   = "\n'@"
)

// DecodePS1 extracts the RustDesk2.toml embedded in an imaging script made by
// EncodePS1 and decodes it with [DecodeTOML]. CRLF line endings (a script
// that passed through a Windows editor) are accepted. It also checks the
// script's invariants: ASCII only, never names RustDesk.toml, and targets
// both [WindowsServiceConfigDir] and [WindowsDefaultUserConfigDir].
func DecodePS1(script []byte) (Server, error) {
	text := strings.ReplaceAll(string(script), "\r\n", "\n")
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			return Server{}, fmt.Errorf("decode %s: non-ASCII byte at offset %d", PS1FileName, i)
		}
	}
	if strings.Contains(strings.ToLower(text), "rustdesk.toml") {
		return Server{}, fmt.Errorf("decode %s: the script mentions RustDesk.toml, which must never be written", PS1FileName)
	}
	for _, d := range []string{WindowsServiceConfigDir, WindowsDefaultUserConfigDir} {
		if !strings.Contains(text, "'"+d+"'") {
			return Server{}, fmt.Errorf("decode %s: the script does not target %s", PS1FileName, d)
		}
	}
	start := strings.Index(text, ps1TOMLStart)
	if start < 0 {
		return Server{}, fmt.Errorf("decode %s: no settings here-string", PS1FileName)
	}
	body := text[start+len(ps1TOMLStart):]
	end := strings.Index(body, ps1TOMLEnd)
	if end < 0 {
		return Server{}, fmt.Errorf("decode %s: unterminated settings here-string", PS1FileName)
	}
	return DecodeTOML([]byte(body[:end+1]))
}
