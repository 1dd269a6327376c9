package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
)

// exportFormatAll is the --format value that lays out a provisioning tree.
const exportFormatAll = "all"

// exportFileOptions is how every exported file is written: 0644, owned by
// whoever runs rdctl. The files hold only public values and are meant to be
// copied onto media and into images.
var exportFileOptions = safefs.FileOptions{Mode: 0o644, UID: safefs.KeepOwner, GID: safefs.KeepOwner}

// renderClientConf encodes one format and decodes it again
// (clientconf.Render). It is a variable only so that a test can make it
// fail with a *clientconf.MismatchError and see that nothing is written.
var renderClientConf = clientconf.Render

const exportHelp = `Writes what RustDesk clients need to use this server: the ID server, the relay,
the API server and the server's public key, which rdctl derives from the secret
key in the working directory exactly as hbbs does (the secret itself never goes
into any output). Every output is encoded, decoded again by rdctl's own decoder
and compared before anything is printed or written; a difference is a bug in
rdctl and fails the command (exit 1).

Formats (--format, default toml):
  toml               RustDesk2.toml: the [options] table the client reads
  server.conf        the same, under a header saying where RustDesk reads it
  string             the config string, for "Import server config" and
                     rustdesk --config (printed bare, plus a newline)
  exe-name           installer name rustdesk-host=H,key=K,.exe; refused (exit 2)
                     when a value cannot be in a Windows file name: a key with
                     '/', a port, an API URL
  exe-name-licensed  installer name rustdesk-licensed-<string>.exe; always works
  json               host, relay, api, key and fingerprint
  ps1                PowerShell imaging script: stops the RustDesk service,
                     writes RustDesk2.toml into the service profile and the
                     Default user profile, starts the service again
  qr                 PNG QR code of config=<string> for the mobile app
                     (binary: needs --out FILE)
  all                a provisioning tree in --out DIR (below)

Output goes to stdout (--out -, the default). --out FILE writes one format
atomically, mode 0644; a symlink, directory or device there is refused.
--format all --out DIR writes, each file atomically:
  windows/rustdesk/RustDesk2.toml     for the service profile (see README.txt)
  windows/rustdesk/server.conf        the same, for bundles that expect it
  windows/rustdesk/install-config.ps1 the imaging script
  linux/RustDesk2.toml, macos/RustDesk2.toml
  config-string.txt, installer-name.txt, config-qr.png
  README.txt                          where each file goes
Running it again with the same configuration rewrites nothing and says
"unchanged"; --dry-run lists what --out would write and writes nothing
(output to stdout changes nothing and is printed as usual).

Values come from the deployment record (under --root) and can be overridden
with --id-host, --relay and --api (--relay '' or --api '' leaves one out).
The key is the live one, or with --staged the next one that
"rdctl rotate --stage" prepared, so media can be built before
"rdctl rotate --commit". Without a deployment record give --key and --id-host.
Export only reads the server's files: it takes no lock and needs no root.

Clients are given the shortest equivalent values: default ports are left out
(21116 on the ID server, 21117 on the relay), and a relay that is the ID
server's own host on 21117 is left out entirely, because the client derives
exactly that relay from an ID server on 21116. This keeps the exe-name form
possible (':' cannot be in a Windows file name).

JSON (--json): host, relay, api, key, fingerprint, staged, dry_run, changed,
and files[] (path, format, changed) for what --out wrote. Without --out,
--json prints only this document.

Examples:
  rdctl export
  rdctl export --format string
  rdctl --root ./image export --format all --out ./media
  rdctl export --format qr --out rustdesk-qr.png
  rdctl rotate --stage && rdctl export --staged --format all --out /media/usb
  rdctl export --key AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= --id-host rd.example.com --format exe-name`

func exportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "export",
		Usage:       "write the client configuration in every form RustDesk clients take",
		Description: exportHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "output `FORMAT`: toml, server.conf, string, exe-name, exe-name-licensed, json, ps1, qr or all", Value: string(clientconf.FormatTOML)},
			&cli.StringFlag{Name: "out", Usage: "write to `PATH`: a file, a directory for --format all, or - for stdout (default)"},
			&cli.StringFlag{Name: "key", Usage: "the server's public `KEY` (44 characters of base64), instead of the one in the working directory"},
			&cli.StringFlag{Name: "id-host", Usage: "ID server `HOST[:PORT]` (default: the deployment record's)"},
			&cli.StringFlag{Name: "relay", Usage: "relay `HOST[:PORT]` (default: the deployment record's; '' for none)"},
			&cli.StringFlag{Name: "api", Usage: "API server `URL`, http:// or https:// (default: the deployment record's; '' for none)"},
			&cli.BoolFlag{Name: "staged", Usage: "export the next key staged by rdctl rotate --stage"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runExport(e, cmd) },
	}
}

// exportSource is what an export is made of: validated, normalised values
// and where the key came from. It holds the public key only.
type exportSource struct {
	server      clientconf.Server
	fingerprint string
	staged      bool
}

// exportFile is one file of the output. Format is the clientconf format it
// holds, "" for installer-name.txt (one or two names) and README.txt.
type exportFile struct {
	Path    string `json:"path"` // as printed: --out FILE, or --out DIR joined with rel
	Format  string `json:"format,omitempty"`
	Changed bool   `json:"changed"`
	rel     string // slash-separated path under --out DIR (--format all only)
	data    []byte
}

// exportJSON is the --json document. The first five fields are those of the
// json format; more may be added, none renamed.
type exportJSON struct {
	clientconf.JSONExport
	Staged  bool         `json:"staged"`
	DryRun  bool         `json:"dry_run"`
	Changed bool         `json:"changed"`
	Files   []exportFile `json:"files"`
}

func runExport(e *env, cmd *cli.Command) error {
	if cmd.Args().Len() > 0 {
		return withHints(usageErrorf("unexpected argument %q", cmd.Args().First()), "write to a file or directory with --out PATH")
	}
	format := cmd.String("format")
	if err := checkExportFormat(format); err != nil {
		return err
	}
	out := cmd.String("out")
	toStdout := out == "" || out == "-"
	switch {
	case format == exportFormatAll && toStdout:
		return withHints(usageErrorf("--format all writes a directory tree and needs --out DIR"), "rdctl export --format all --out DIR")
	case format == string(clientconf.FormatQR) && toStdout:
		return withHints(usageErrorf("--format qr is a PNG image and needs --out FILE"), "rdctl export --format qr --out rustdesk-qr.png")
	case e.json && out == "-":
		return usageErrorf("--json and --out - would both print on stdout; give --out PATH, or leave --out out to print only the JSON document")
	case cmd.Bool("staged") && cmd.IsSet("key"):
		return usageErrorf("--staged exports the staged key from the working directory; it cannot be combined with --key")
	}
	if !toStdout {
		if err := checkExportTarget(out, format == exportFormatAll); err != nil {
			return err
		}
	}
	src, err := e.exportSource(cmd)
	if err != nil {
		return err
	}
	// Everything is rendered (and so checked) before anything is written.
	var files []exportFile
	if format == exportFormatAll {
		if files, err = e.exportTree(out, src); err != nil {
			return err
		}
	} else {
		data, err := renderExport(clientconf.Format(format), src)
		if err != nil {
			return err
		}
		if exportIsLine(clientconf.Format(format)) {
			data = append(data, '\n')
		}
		files = []exportFile{{Path: out, Format: format, data: data}}
	}
	report := exportJSON{Staged: src.staged, DryRun: e.dryRun, Files: []exportFile{}}
	jsonDoc, err := renderExport(clientconf.FormatJSON, src)
	if err != nil {
		return err
	}
	if report.JSONExport, err = clientconf.DecodeJSON(jsonDoc); err != nil {
		return exportRenderError(err)
	}

	switch {
	case toStdout && e.json:
		// The format was rendered and checked; the JSON document replaces it.
		return writeJSON(e.stdout, report)
	case toStdout:
		if _, err := e.stdout.Write(files[0].data); err != nil {
			return err
		}
		if src.staged {
			e.hintf("this is the staged key; switch the server to it when clients have it: rdctl rotate --commit")
		}
		return nil
	case format == exportFormatAll:
		err = writeExportTree(out, files, e.dryRun)
	default:
		err = writeExportFile(&files[0], e.dryRun)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		report.Changed = report.Changed || f.Changed
	}
	report.Files = files
	if e.json {
		return writeJSON(e.stdout, report)
	}
	e.printExportResult(out, format == exportFormatAll, files, src)
	return nil
}

// checkExportFormat rejects a --format that is neither a clientconf format
// nor "all".
func checkExportFormat(format string) error {
	names := []string{}
	for _, f := range clientconf.Formats {
		if format == string(f) {
			return nil
		}
		names = append(names, string(f))
	}
	if format == exportFormatAll {
		return nil
	}
	return withHints(usageErrorf("unknown --format %q", format),
		"use one of: "+strings.Join(append(names, exportFormatAll), ", "))
}

// exportIsLine reports whether a format is a single line without its own
// line break, which the caller adds when printing or writing it.
func exportIsLine(f clientconf.Format) bool {
	return f == clientconf.FormatString || f == clientconf.FormatExeName || f == clientconf.FormatExeNameLicensed
}

// checkExportTarget refuses an --out that rdctl would not replace: a
// symlink, or anything but a regular file (a directory for --format all).
// A missing path is fine; for a single file its directory must exist.
func checkExportTarget(out string, dir bool) error {
	fi, err := os.Lstat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !dir {
			if pfi, err := os.Stat(filepath.Dir(out)); err != nil || !pfi.IsDir() {
				return withHints(usageErrorf("--out %q: the directory %q does not exist", out, filepath.Dir(out)), "create it first, or write elsewhere")
			}
		}
		return nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return withHints(usageErrorf("--out %q is a symbolic link; rdctl never writes through one", out), "give the path it points to")
	case dir && !fi.IsDir():
		return usageErrorf("--out %q is not a directory; --format all lays out a tree in a directory", out)
	case !dir && fi.IsDir():
		return withHints(usageErrorf("--out %q is a directory; one format is written to a file", out),
			fmt.Sprintf("give a file name, or lay out every format there: rdctl export --format all --out %s", out))
	case !dir && !fi.Mode().IsRegular():
		return usageErrorf("--out %q is not a regular file; use --out - for stdout", out)
	}
	return nil
}

// exportSource validates the flags, then fills in the rest from the
// deployment record and the working directory's key.
func (e *env) exportSource(cmd *cli.Command) (exportSource, error) {
	// Flags first: a bad value is exit 2 whatever the record says.
	var (
		id, relay   *deploy.HostPort
		api, key    *string
		fingerprint string
		err         error
	)
	if cmd.IsSet("id-host") {
		hp, err := deploy.ParseHostPort("--id-host", cmd.String("id-host"))
		if err != nil {
			return exportSource{}, err
		}
		id = &hp
	}
	if cmd.IsSet("relay") {
		relay = &deploy.HostPort{}
		if v := cmd.String("relay"); v != "" {
			if *relay, err = deploy.ParseHostPort("--relay", v); err != nil {
				return exportSource{}, err
			}
		}
	}
	if cmd.IsSet("api") {
		v, err := parseExportAPI("--api", cmd.String("api"))
		if err != nil {
			return exportSource{}, err
		}
		api = &v
	}
	if cmd.IsSet("key") {
		k, pub, err := keys.ParsePublicArg("--key", cmd.String("key"))
		if err != nil {
			return exportSource{}, err
		}
		key, fingerprint = &k, keys.Fingerprint(pub)
	}
	staged := cmd.Bool("staged")

	rec, err := e.loadRecord()
	if errors.Is(err, deploy.ErrNoRecord) && key != nil && id != nil {
		rec, err = nil, nil // everything the export needs was given
	} else if errors.Is(err, deploy.ErrNoRecord) && !staged {
		return exportSource{}, withHints(usageErrorf("no deployment record at %s: give --key KEY and --id-host HOST[:PORT]", e.recordPath()),
			"or export from an installed server: rdctl --root DIR export, rdctl --config FILE export",
			"record an existing server with: rdctl adopt")
	}
	if err != nil {
		return exportSource{}, err
	}
	if rec != nil {
		rid, rrelay, rapi, err := e.recordEndpoints(rec)
		if err != nil {
			return exportSource{}, err
		}
		if id == nil {
			id = &rid
		}
		if relay == nil {
			relay = &rrelay
		}
		if api == nil {
			api = &rapi
		}
		if key == nil {
			k, fp, err := e.exportKey(e.under(rec.WorkingDir), staged)
			if err != nil {
				return exportSource{}, err
			}
			key, fingerprint = &k, fp
		}
	}
	if relay == nil {
		relay = &deploy.HostPort{}
	}
	if api == nil {
		api = new(string)
	}
	host, relayOut := clientEndpoints(*id, *relay)
	if relay.Host != "" && relayOut == "" {
		e.debugf("relay %s left out: clients derive it from the ID server %s", clientHostPort(*relay), host)
	}
	s := clientconf.Server{Host: host, Relay: relayOut, API: *api, Key: *key}
	if err := s.Validate(); err != nil {
		return exportSource{}, exportRenderError(err)
	}
	return exportSource{server: s, fingerprint: fingerprint, staged: staged}, nil
}

// recordEndpoints reads the ID server, relay and API clients are given
// from the deployment record.
func (e *env) recordEndpoints(rec *deploy.Record) (id, relay deploy.HostPort, api string, err error) {
	if id, err = deploy.ParseHostPort("id_host", rec.IDHost); err != nil {
		return id, relay, "", &deploy.RecordError{Path: e.recordPath(), Err: err}
	}
	if rec.Relay != "" {
		if relay, err = deploy.ParseHostPort("relay", rec.Relay); err != nil {
			return id, relay, "", &deploy.RecordError{Path: e.recordPath(), Err: err}
		}
	}
	if rec.API != "" {
		if api, err = parseExportAPI("api", rec.API); err != nil {
			return id, relay, "", &deploy.RecordError{Path: e.recordPath(), Err: err}
		}
	}
	return id, relay, api, nil
}

// exportRecordTree writes the provisioning tree (--format all) for the
// record's live or staged key into dir: what rotate --export does.
func (e *env) exportRecordTree(rec *deploy.Record, dir string, staged bool) ([]exportFile, error) {
	if err := checkExportTarget(dir, true); err != nil {
		return nil, err
	}
	id, relay, api, err := e.recordEndpoints(rec)
	if err != nil {
		return nil, err
	}
	key, fp, err := e.exportKey(e.under(rec.WorkingDir), staged)
	if err != nil {
		return nil, err
	}
	host, relayOut := clientEndpoints(id, relay)
	src := exportSource{server: clientconf.Server{Host: host, Relay: relayOut, API: api, Key: key}, fingerprint: fp, staged: staged}
	if err := src.server.Validate(); err != nil {
		return nil, exportRenderError(err)
	}
	files, err := e.exportTree(dir, src)
	if err != nil {
		return nil, err
	}
	return files, writeExportTree(dir, files, e.dryRun)
}

// exportKey returns the public key and fingerprint of the live (or staged)
// pair in the working directory wd. The secret is read to derive the public
// half, as hbbs does, and goes no further.
func (e *env) exportKey(wd string, staged bool) (key, fingerprint string, err error) {
	// With a rotation journal the live key is about to change (or change
	// back): exporting now could put the wrong key on every client.
	if _, err := os.Lstat(filepath.Join(wd, rotate.JournalFile)); err == nil {
		return "", "", withHints(fmt.Errorf("an interrupted rotation is pending in %s, so which key will be live is not settled", wd),
			"finish or roll it back first: rdctl rotate --resume")
	}
	if staged {
		p, err := rotate.Staged(wd)
		if err != nil {
			return "", "", err
		}
		if p.IsZero() {
			return "", "", withHints(fmt.Errorf("no staged key in %s", filepath.Join(wd, "staged")),
				"stage the next key first: rdctl rotate --stage", "or export the live key: leave out --staged")
		}
		return p.PublicBase64(), p.Fingerprint(), nil
	}
	st, err := inspectDir(wd)
	if err != nil {
		return "", "", withHints(err, "or give the public key: rdctl export --key KEY")
	}
	if !st.Valid {
		msg := fmt.Sprintf("no %s in %q", keys.SecretFile, wd)
		if st.SecretErr != nil {
			msg = fmt.Sprintf("the key in %q cannot be exported: %v", wd, st.SecretErr)
		}
		return "", "", withHints(errors.New(msg), "rdctl key verify --dir "+wd)
	}
	if st.PubPresent && !st.PubMatches {
		e.warnf("%s does not agree with %s; exporting the key hbbs serves, derived from the secret", keys.PublicFile, keys.SecretFile)
	}
	return st.Pair.PublicBase64(), st.Pair.Fingerprint(), nil
}

// parseExportAPI validates an API server URL: http:// or https://, a host
// name or IP (with an optional port), no credentials, query or fragment, and
// none of the characters that could not be embedded in every output format.
// A trailing '/' is dropped, as the client's own import does.
func parseExportAPI(field, s string) (string, error) {
	bad := func(reason string) error { return &deploy.InputError{Field: field, Value: s, Reason: reason} }
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
	if _, err := deploy.ParseHostPort(field, u.Host); err != nil {
		return "", err
	}
	return strings.TrimRight(s, "/"), nil
}

// clientEndpoints returns the ID server and the relay as clients are given
// them, in their shortest equivalent form:
//   - the default port is left out: 21116 on the ID server, 21117 on the
//     relay (the client adds them itself);
//   - a relay that is the ID server's own host on 21117 is left out
//     entirely, but only when the ID server is on 21116: the client then
//     derives exactly host:21117 itself.
//
// IPv6 addresses are bracketed, as every client format requires. Shorter
// values keep the host= installer name possible, since ':' cannot be in a
// Windows file name. A zero relay (Host "") means none.
func clientEndpoints(id, relay deploy.HostPort) (host, relayOut string) {
	if id.Port == deploy.RendezvousPort {
		id.Port = 0
	}
	host = clientHostPort(id)
	if relay.Host == "" {
		return host, ""
	}
	if relay.Port == deploy.RelayPort {
		relay.Port = 0
	}
	if id.Port == 0 && relay.Port == 0 && strings.EqualFold(string(relay.Host), string(id.Host)) {
		return host, ""
	}
	return host, clientHostPort(relay)
}

// clientHostPort formats hp as host, host:port, [v6] or [v6]:port.
func clientHostPort(hp deploy.HostPort) string {
	h := string(hp.Host)
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if hp.Port != 0 {
		h += ":" + strconv.Itoa(int(hp.Port))
	}
	return h
}

// renderExport renders one format through clientconf.Render, which decodes
// it again and compares, and maps its errors to rdctl's exit codes.
func renderExport(f clientconf.Format, src exportSource) ([]byte, error) {
	data, err := renderClientConf(f, src.server, clientconf.Options{Fingerprint: src.fingerprint})
	if err != nil {
		return nil, exportRenderError(err)
	}
	return data, nil
}

// exportRenderError maps clientconf's errors: values that cannot be
// expressed are bad input (exit 2); a round-trip mismatch is a bug (exit 1).
func exportRenderError(err error) error {
	var (
		fileName *clientconf.FileNameError
		invalid  *clientconf.ValidationError
		mismatch *clientconf.MismatchError
	)
	switch {
	case errors.As(err, &fileName):
		return withHints(usageErrorf("%v", err),
			"the licensed installer name carries any configuration: rdctl export --format exe-name-licensed")
	case errors.As(err, &invalid):
		return usageErrorf("cannot export: %v", err)
	case errors.As(err, &mismatch):
		return fmt.Errorf("internal error: %w; nothing was written, please report this with the command you ran", err)
	}
	return err
}

// exportTree renders the provisioning tree of --format all. README.txt is
// last so that, written in this order, its presence means the rest is there.
func (e *env) exportTree(out string, src exportSource) ([]exportFile, error) {
	render := func(f clientconf.Format) ([]byte, error) { return renderExport(f, src) }
	toml, err := render(clientconf.FormatTOML)
	if err != nil {
		return nil, err
	}
	conf, err := render(clientconf.FormatServerConf)
	if err != nil {
		return nil, err
	}
	ps1, err := render(clientconf.FormatPS1)
	if err != nil {
		return nil, err
	}
	str, err := render(clientconf.FormatString)
	if err != nil {
		return nil, err
	}
	licensed, err := render(clientconf.FormatExeNameLicensed)
	if err != nil {
		return nil, err
	}
	qr, err := render(clientconf.FormatQR)
	if err != nil {
		return nil, err
	}
	// The host= name is readable and survives a " (1)" rename; when the
	// values cannot be in it, the licensed name is the only one.
	names := string(licensed) + "\n"
	hostForm := ""
	// Rendered directly: its FileNameError is expected here, not an error.
	if n, err := renderClientConf(clientconf.FormatExeName, src.server, clientconf.Options{}); err == nil {
		names = string(n) + "\n" + names
	} else if errors.As(err, new(*clientconf.FileNameError)) {
		hostForm = err.Error()
		e.debugf("installer-name.txt holds the licensed name only: %s", hostForm)
	} else {
		return nil, exportRenderError(err)
	}
	type entry struct {
		rel    string
		format clientconf.Format
		data   []byte
	}
	win := func(name string) string { return path.Join("windows/rustdesk", name) }
	entries := []entry{
		{win(clientconf.TOMLFileName), clientconf.FormatTOML, toml},
		{win(clientconf.ServerConfFileName), clientconf.FormatServerConf, conf},
		{win(clientconf.PS1FileName), clientconf.FormatPS1, ps1},
		{path.Join("linux", clientconf.TOMLFileName), clientconf.FormatTOML, toml},
		{path.Join("macos", clientconf.TOMLFileName), clientconf.FormatTOML, toml},
		{"config-string.txt", clientconf.FormatString, append(str, '\n')},
		{"installer-name.txt", "", []byte(names)},
		{clientconf.QRFileName, clientconf.FormatQR, qr},
		{"README.txt", "", exportReadme(src, hostForm)},
	}
	files := make([]exportFile, len(entries))
	for i, en := range entries {
		files[i] = exportFile{Path: filepath.Join(out, filepath.FromSlash(en.rel)), Format: string(en.format), rel: en.rel, data: en.data}
	}
	return files, nil
}

// exportReadme is the tree's README.txt: what the files are and where each
// goes (reference/rustdesk-client-config.md §1.1, §4, §5). ASCII, so any
// Windows code page shows it.
func exportReadme(src exportSource, hostFormProblem string) []byte {
	s := src.server
	relay := s.Relay
	if relay == "" {
		relay = "derived by the client from the ID server (port 21117)"
	}
	api := s.API
	if api == "" {
		api = "none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `RustDesk client configuration, generated by rdctl export.

ID server:    %s
Relay server: %s
API server:   %s
Key:          %s
Fingerprint:  %s
`, s.Host, relay, api, s.Key, src.fingerprint)
	if src.staged {
		b.WriteString("\nThis is the server's NEXT key, staged by rdctl rotate --stage. Clients with it\n" +
			"see \"Key mismatch\" until the server switches: rdctl rotate --commit.\n")
	}
	b.WriteString(`
Every file carries the same settings. The client reads RustDesk2.toml only when
it starts and rewrites it on every settings change, so stop the client (the
RustDesk service) before putting the file in place and start it afterwards.

windows/rustdesk/RustDesk2.toml
    Installed client: the service's copy is the one that counts:
      C:\Windows\ServiceProfiles\LocalService\AppData\Roaming\RustDesk\config\RustDesk2.toml
    New users' profiles are copied from the Default profile:
      C:\Users\Default\AppData\Roaming\RustDesk\config\RustDesk2.toml
    Portable or per-user copy: %AppData%\RustDesk\config\RustDesk2.toml

windows/rustdesk/install-config.ps1
    Does the above for an installed client or an image being built: stops the
    RustDesk service, writes both Windows copies, starts the service again.
    Run it elevated (Administrator or SYSTEM):
      powershell.exe -NoProfile -ExecutionPolicy Bypass -File install-config.ps1

windows/rustdesk/server.conf
    The same settings under the name provisioning bundles expect. RustDesk
    never reads a file of this name: install it as RustDesk2.toml (above).

linux/RustDesk2.toml
    Both copies, then restart the client (systemctl restart rustdesk):
      /root/.config/rustdesk/RustDesk2.toml
      ~/.config/rustdesk/RustDesk2.toml   (for each user)

macos/RustDesk2.toml
    Both copies, then restart the client:
      ~/Library/Preferences/com.carriez.RustDesk/RustDesk2.toml
      /var/root/Library/Preferences/com.carriez.RustDesk/RustDesk2.toml

config-string.txt
    The config string. Paste it into the client's network settings with
    "Import server config", or on an installed client run, elevated:
      rustdesk --config <string>
    --config prints nothing even when it fails; check with: rustdesk --option key

installer-name.txt
    Rename the Windows installer (rustdesk-<version>.exe) to the name on the
    first line and the settings travel with it. The last line is the
    "licensed" name, which carries any configuration. Installing from either
    persists the ID server, key and API server but not a relay: when the
    relay above is explicit, also apply config-string.txt.
`)
	if hostFormProblem != "" {
		fmt.Fprintf(&b, "    Only the licensed name is given: %s.\n", hostFormProblem)
	}
	b.WriteString(`
config-qr.png
    A QR code of config=<string>: scan it with the RustDesk mobile app to fill
    in the ID, relay and API servers and the key.

Never put RustDesk.toml (the device ID and key pair) into an image: every clone
would share one ID. Only RustDesk2.toml is needed.
`)
	return []byte(b.String())
}

// writeExportFile writes (or, dry, checks) one format to --out FILE.
func writeExportFile(f *exportFile, dryRun bool) error {
	if dryRun {
		d, err := safefs.OpenDir(filepath.Dir(f.Path))
		if err != nil {
			return err
		}
		defer d.Close()
		same, err := d.Unchanged(filepath.Base(f.Path), f.data, exportFileOptions)
		f.Changed = !same
		return err
	}
	changed, err := safefs.WriteFile(f.Path, f.data, exportFileOptions)
	f.Changed = changed
	return err
}

// writeExportTree writes (or, dry, checks) the tree under dir, creating the
// directories 0755. Each file is replaced atomically and only if it differs.
func writeExportTree(dir string, files []exportFile, dryRun bool) error {
	dirs := map[string]*safefs.Dir{}
	defer func() {
		for _, d := range dirs {
			if d != nil {
				d.Close()
			}
		}
	}()
	// open returns the directory rel (slash-separated, "." for dir), or nil
	// on a dry run when it does not exist yet.
	var open func(rel string) (*safefs.Dir, error)
	open = func(rel string) (*safefs.Dir, error) {
		if d, ok := dirs[rel]; ok {
			return d, nil
		}
		var d *safefs.Dir
		var err error
		if rel == "." {
			if dryRun {
				d, err = safefs.OpenDir(dir)
			} else {
				d, err = safefs.MkdirAll(dir, 0o755)
			}
		} else {
			var parent *safefs.Dir
			if parent, err = open(path.Dir(rel)); err != nil || parent == nil {
				return nil, err
			}
			if dryRun {
				d, err = parent.Sub(path.Base(rel))
			} else {
				d, _, err = parent.MkdirSub(path.Base(rel), 0o755)
			}
		}
		if dryRun && errors.Is(err, fs.ErrNotExist) {
			dirs[rel] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		dirs[rel] = d
		return d, nil
	}
	for i := range files {
		f := &files[i]
		d, err := open(path.Dir(f.rel))
		if err != nil {
			return err
		}
		switch {
		case dryRun && d == nil:
			f.Changed = true
		case dryRun:
			same, err := d.Unchanged(path.Base(f.rel), f.data, exportFileOptions)
			if err != nil {
				return err
			}
			f.Changed = !same
		default:
			if f.Changed, err = d.WriteFile(path.Base(f.rel), f.data, exportFileOptions); err != nil {
				return err
			}
		}
	}
	return nil
}

// printExportResult says what --out wrote (or would write).
func (e *env) printExportResult(out string, tree bool, files []exportFile, src exportSource) {
	n := 0
	for _, f := range files {
		switch {
		case f.Changed && e.dryRun:
			e.printf("would write %s\n", f.Path)
		case f.Changed:
			e.printf("wrote %s\n", f.Path)
		case e.verbose:
			e.printf("unchanged %s\n", f.Path)
		}
		if f.Changed {
			n++
		}
	}
	switch {
	case e.dryRun:
		e.printf("dry run: %d of %d files would change; nothing was written\n", n, len(files))
	case n == 0:
		e.printf("unchanged: %s already holds this configuration\n", out)
	case tree:
		e.printf("exported the client configuration to %s\n", out)
	}
	e.printf("id server:   %s\n", src.server.Host)
	if src.server.Relay != "" {
		e.printf("relay:       %s\n", src.server.Relay)
	}
	if src.server.API != "" {
		e.printf("api server:  %s\n", src.server.API)
	}
	e.printf("public key:  %s\nfingerprint: %s\n", src.server.Key, src.fingerprint)
	if src.staged {
		e.hintf("this is the staged key; switch the server to it when clients have it: rdctl rotate --commit")
	}
}
