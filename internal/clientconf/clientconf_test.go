package clientconf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Config-string vectors: upstreamVector is the client's own
// (rustdesk's src/custom_server.rs, test_filename_license_string); A, B and
// C were computed outside rdctl with the client's encoding and checked
// against that upstream test.
const (
	refKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31

	upstreamVector = "0nI900VsFHZVBVdIlncwpHS4V0bOZ0dtVldrpVO4JHdCp0YV5WdzUGZzdnYRVjI6ISeltmIsISMuEjLx4SMiojI0N3boJye"
	vectorAString  = "0nI9gDaIR2d4dUYrJ0RYllUGVVToVkUBhHRPBTQEx0bRNUSjdmQGF1dBNURBFkI6ISeltmIsISbvNmLlxGctFGel5CZy9yL6MHc0RHaiojIpBXYiwiI3ETMxIjOt92YuUGbw1WY4VmLkJnI6ISehxWZyJCLi02bj5SZsBXbhhXZuQmciojI0N3boJye"
	vectorBString  = "0nI9gDaIR2d4dUYrJ0RYllUGVVToVkUBhHRPBTQEx0bRNUSjdmQGF1dBNURBFkI6ISeltmIsIiI6ISawFmIsIiI6ISehxWZyJCLi02bj5SZsBXbhhXZuQmciojI0N3boJye"
	vectorCString  = "9JSP4gGSkdHeHF2aCdEWZJlRV1EaFJVQ4R0TwEERM9WUDl0YnJkRRdXQDVUQBJiOikXZrJCLiIiOikGchJCLiIiOikXYsVmciwiIwEjLzETMuAjLzAjMiojI0N3boJye"
	// The sample string of RustDesk's client docs (doc.rustdesk.com,
	// content/client/_index.en.md): 81 characters, not valid base64.
	docsMalformed = "9JSPSvJzNrBDasJjNSdXOVVBlERDlleoNWZzIHcOJiOikXZr8mcw5yazVGZ0NXdy5CdyciojI0N3boJye"
)

var (
	upstreamServer = Server{Host: "1.1.1.1", Key: "5Qbwsde3unUcJBtrx9ZkvUmwFNoExHzpryHuPUdqlWM="}
	vectorA        = Server{Host: "rd.example.com", Relay: "rd.example.com:21117", API: "https://rd.example.com", Key: refKey}
	vectorB        = Server{Host: "rd.example.com", Key: refKey}
	vectorC        = Server{Host: "203.0.113.10", Key: refKey}
)

func TestReferenceVectorsEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Server
		want string
	}{
		{"A", vectorA, vectorAString},
		{"B", vectorB, vectorBString},
		{"C", vectorC, vectorCString},
	} {
		got, err := EncodeString(tc.s)
		if err != nil {
			t.Fatalf("vector %s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("vector %s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestReferenceVectorsDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Server
	}{
		{"upstream", upstreamVector, upstreamServer},
		{"A", vectorAString, vectorA},
		{"B", vectorBString, vectorB},
		{"C", vectorCString, vectorC},
	} {
		for _, dec := range []struct {
			name string
			fn   func(string) (Server, error)
		}{{"DecodeString", DecodeString}, {"DecodeStringCLI", DecodeStringCLI}} {
			got, err := dec.fn(tc.in)
			if err != nil {
				t.Errorf("%s(vector %s): %v", dec.name, tc.name, err)
				continue
			}
			if got != tc.want {
				t.Errorf("%s(vector %s) = %+v, want %+v", dec.name, tc.name, got, tc.want)
			}
		}
	}
	if err := upstreamServer.Validate(); err != nil {
		t.Errorf("upstream vector does not validate: %v", err)
	}
}

func TestDocsMalformedSampleRejected(t *testing.T) {
	if len(docsMalformed) != 81 {
		t.Fatalf("sample has %d characters, the docs' sample has 81", len(docsMalformed))
	}
	for _, fn := range []func(string) (Server, error){DecodeString, DecodeStringCLI} {
		if s, err := fn(docsMalformed); !errors.Is(err, ErrBadString) {
			t.Errorf("malformed sample decoded to %+v, %v", s, err)
		}
	}
	if s, err := ParseExeName("rustdesk-licensed-" + docsMalformed + ".exe"); !errors.Is(err, ErrNoConfigInName) {
		t.Errorf("malformed sample in a file name parsed to %+v, %v", s, err)
	}
}

// TestDecodeStringPasted covers what users paste (what the GUI's import
// accepts): GUI exports with padding, pre-1.3.3 standard-alphabet exports,
// plain JSON, whitespace.
func TestDecodeStringPasted(t *testing.T) {
	// GUI export of vector A: padded, so a leading '=' after reversal.
	guiA := "=" + vectorAString
	// A standard-alphabet string: find a server whose URL-safe form has '-'
	// or '_' and translate it, as a pre-1.3.3 client would have written it.
	var std string
	var stdServer Server
	for i := 0; i < 1000 && std == ""; i++ {
		// '?' as the third byte of a base64 triple encodes as '_'.
		s := Server{Host: "h" + strings.Repeat("x", i%5) + ".example", API: "https://a.example/" + strings.Repeat("p", i/5) + "?q", Key: refKey}
		cs, err := EncodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(cs, "-_") {
			std, stdServer = strings.NewReplacer("-", "+", "_", "/").Replace(cs), s
		}
	}
	if std == "" {
		t.Fatal("found no string with '-' or '_' to translate")
	}
	for _, tc := range []struct {
		name, in string
		want     Server
	}{
		{"gui padded =", guiA, vectorA},
		{"gui padded with newline", " \n" + guiA + "\r\n", vectorA},
		{"canonical with spaces", "\t" + vectorBString + " ", vectorB},
		{"standard alphabet", std, stdServer},
		{"plain json", `{"host":"rd.example.com","relay":"","api":"","key":"` + refKey + `"}`, vectorB},
		{"plain json, unknown and missing fields", ` {"key":"` + refKey + `","x":1,"host":"rd.example.com"} `, vectorB},
	} {
		got, err := DecodeString(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// --config is stricter (URL_SAFE_NO_PAD): padding, '+' '/', JSON and
	// whitespace fail.
	for name, in := range map[string]string{
		"gui padded":        guiA,
		"standard alphabet": std,
		"plain json":        `{"host":"rd.example.com"}`,
		"trailing newline":  vectorBString + "\n",
		"inner newline":     vectorBString[:20] + "\n" + vectorBString[20:],
	} {
		if _, err := DecodeStringCLI(in); !errors.Is(err, ErrBadString) {
			t.Errorf("DecodeStringCLI accepted %s: %v", name, err)
		}
	}
}

func TestDecodeStringRejects(t *testing.T) {
	enc := func(json string) string { return reverse(stringEncoding.EncodeToString([]byte(json))) }
	for name, in := range map[string]string{
		"empty":            "",
		"blank":            "  \t",
		"three =":          "===" + vectorBString,
		"wrong padding":    "==" + vectorAString,
		"inner space":      vectorBString[:10] + " " + vectorBString[10:],
		"not base64":       "0nI9*Jye",
		"trailing =":       vectorBString + "=",
		"json array":       enc(`["rd.example.com"]`),
		"json string":      enc(`"rd.example.com"`),
		"number host":      enc(`{"host":1}`),
		"null host":        enc(`{"host":null}`),
		"duplicate host":   enc(`{"host":"a","host":"b"}`),
		"trailing garbage": enc(`{"host":"a"}x`),
		"invalid utf8":     enc("{\"host\":\"\xff\"}"),
		"broken json":      `{"host":`,
	} {
		if s, err := DecodeString(in); !errors.Is(err, ErrBadString) {
			t.Errorf("%s: decoded %+v, %v", name, s, err)
		}
	}
	// Field names are case-sensitive, as in serde: HOST is an unknown field.
	s, err := DecodeString(enc(`{"HOST":"a","host":"b"}`))
	if err != nil || s.Host != "b" {
		t.Errorf("case-sensitive fields: %+v, %v", s, err)
	}
}

func TestValidate(t *testing.T) {
	good := []Server{
		vectorA, vectorB, vectorC, upstreamServer,
		{Host: "rd.example.com:21116", Relay: "203.0.113.10:21117", Key: refKey},
		{Host: "[2001:db8::1]", Relay: "[2001:db8::2]:21117", Key: refKey},
		{Host: "my_host.local.", API: "http://10.0.0.1:21114/base?x=1&y=2", Key: refKey},
	}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", s, err)
		}
	}
	bad := map[string]Server{
		"no host":            {Key: refKey},
		"no key":             {Host: "a.example"},
		"space in host":      {Host: "a .example", Key: refKey},
		"tab in relay":       {Host: "a.example", Relay: "b.example\t", Key: refKey},
		"newline in api":     {Host: "a.example", API: "https://a.example\n", Key: refKey},
		"quote in host":      {Host: "a'.example", Key: refKey},
		"dquote in api":      {Host: "a.example", API: `https://a.example/"`, Key: refKey},
		"backtick in api":    {Host: "a.example", API: "https://a.example/`x", Key: refKey},
		"backslash in api":   {Host: "a.example", API: `https://a.example\x`, Key: refKey},
		"non-ascii host":     {Host: "bücher.example", Key: refKey},
		"smart quote api":    {Host: "a.example", API: "https://a.example/\u2019", Key: refKey},
		"control char":       {Host: "a\x01.example", Key: refKey},
		"DEL":                {Host: "a\x7f.example", Key: refKey},
		"port 0":             {Host: "a.example:0", Key: refKey},
		"port 65536":         {Host: "a.example:65536", Key: refKey},
		"port with letters":  {Host: "a.example:21x", Key: refKey},
		"empty port":         {Host: "a.example:", Key: refKey},
		"bare ipv6":          {Host: "2001:db8::1", Key: refKey},
		"bad bracket":        {Host: "[2001:db8::1", Key: refKey},
		"bracketed ipv4":     {Host: "[10.0.0.1]", Key: refKey},
		"label dash":         {Host: "-a.example", Key: refKey},
		"empty label":        {Host: "a..example", Key: refKey},
		"comma in host":      {Host: "a,b.example", Key: refKey},
		"url as host":        {Host: "https://a.example", Key: refKey},
		"api without scheme": {Host: "a.example", API: "a.example", Key: refKey},
		"api ftp":            {Host: "a.example", API: "ftp://a.example", Key: refKey},
		"api no host":        {Host: "a.example", API: "https://", Key: refKey},
		"key unpadded":       {Host: "a.example", Key: strings.TrimSuffix(refKey, "=")},
		"key url-safe":       {Host: "a.example", Key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-="},
		"key 33 bytes":       {Host: "a.example", Key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"},
		"key 16 bytes":       {Host: "a.example", Key: "Zm9vYmFyLiwyCg=="},
		"key trailing bits":  {Host: "a.example", Key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="},
		"key with space":     {Host: "a.example", Key: " " + refKey[1:]},
		"key with newline":   {Host: "a.example", Key: refKey[:43] + "\n"},
	}
	for name, s := range bad {
		err := s.Validate()
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate(%+v) = %v, want a *ValidationError", name, s, err)
		}
		// Every encoder refuses what Validate refuses.
		for _, f := range Formats {
			if _, err := Render(f, s, Options{}); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Render(%s) = %v, want ErrInvalid", name, f, err)
			}
		}
	}
}

func TestTOML(t *testing.T) {
	got, err := EncodeTOML(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	want := "[options]\n" +
		"custom-rendezvous-server = 'rd.example.com'\n" +
		"relay-server = 'rd.example.com:21117'\n" +
		"api-server = 'https://rd.example.com'\n" +
		"key = '" + refKey + "'\n"
	if string(got) != want {
		t.Errorf("EncodeTOML(A):\n%s\nwant:\n%s", got, want)
	}
	got, err = EncodeTOML(vectorB)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "relay-server") || strings.Contains(string(got), "api-server") {
		t.Errorf("unset relay/api written:\n%s", got)
	}
	// A file as the client writes it: runtime state, other options, basic
	// strings; and a key outside [options], which the client ignores
	// like any unknown top-level key (rustdesk issue #15665).
	client := `rendezvous_server = 'other.example:21116'
nat_type = 1
serial = 0
key = 'ignored-top-level'

[options]
allow-remote-config-modification = 'Y'
custom-rendezvous-server = "rd.example.com"
key = '` + refKey + `'
`
	s, err := DecodeTOML([]byte(client))
	if err != nil {
		t.Fatal(err)
	}
	if s != vectorB {
		t.Errorf("DecodeTOML(client file) = %+v, want %+v", s, vectorB)
	}
	for name, in := range map[string]string{
		"not toml":         "[options\n",
		"non-string value": "[options]\nkey = 1\n",
	} {
		if s, err := DecodeTOML([]byte(in)); err == nil {
			t.Errorf("%s: decoded %+v", name, s)
		}
	}
}

func TestServerConf(t *testing.T) {
	got, err := EncodeServerConf(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	text := string(got)
	toml, _ := EncodeTOML(vectorA)
	if !strings.HasSuffix(text, string(toml)) {
		t.Errorf("server.conf does not end with the RustDesk2.toml content:\n%s", text)
	}
	for _, want := range []string{
		"never reads a file called server.conf",
		`C:\Windows\ServiceProfiles\LocalService\AppData\Roaming\RustDesk\config\RustDesk2.toml`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("server.conf header lacks %q", want)
		}
	}
	header := strings.TrimSuffix(text, string(toml))
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Errorf("header line %q is not a TOML comment", line)
		}
	}
	for i := range len(text) {
		if text[i] >= 0x80 {
			t.Fatalf("server.conf is not ASCII at offset %d", i)
		}
	}
}

// TestExeNameVectors runs every file-name vector of the client's own test
// (test_filename_license_string in rustdesk's src/custom_server.rs).
func TestExeNameVectors(t *testing.T) {
	e := upstreamVector
	for _, tc := range []struct {
		name string
		want Server
	}{
		{"rustdesk-host=server.example.net.exe", Server{Host: "server.example.net"}},
		{"rustdesk-host=server.example.net,api=abc,key=Zm9vYmFyLiwyCg==.exe",
			Server{Host: "server.example.net", API: "abc", Key: "Zm9vYmFyLiwyCg=="}},
		{"rustdesk-Host=server.example.net,Key=Zm9vYmFyLiwyCg==,RELAY=server.example.net.exe",
			Server{Host: "server.example.net", Key: "Zm9vYmFyLiwyCg==", Relay: "server.example.net"}},
		{"rustdesk-licensed-" + e + ".exe", upstreamServer},
		{"rustdesk-licensed-" + e + "(1).exe", upstreamServer},
		{"rustdesk-licensed-" + e + " (1).exe", upstreamServer},
		{"rustdesk-licensed-" + e + " (1) (2).exe", upstreamServer},
		{"rustdesk--" + e + "(1).exe", upstreamServer},
		{"rustdesk-licensed-" + e + "--abc.exe", upstreamServer},
		{"rustdesk-licensed---" + e + "--.exe", upstreamServer},
		{"rustdesk-licensed--" + e + "--.exe", upstreamServer},
		{"rustdesk--" + e + "--.exe", upstreamServer},
		// Extension stripping is case-insensitive and handles .exe.exe.
		{"rustdesk-licensed-" + e + ".EXE", upstreamServer},
		{"rustdesk-licensed-" + e + ".exe.exe", upstreamServer},
		{"rustdesk-host=a.example,key=" + refKey + ",.Exe.EXE", Server{Host: "a.example", Key: refKey}},
		// The computed vectors: a rename garbles the key without the
		// trailing comma and is harmless with it.
		{"rustdesk-host=rd.example.com,key=" + refKey + " (1).exe", Server{Host: "rd.example.com", Key: refKey + " (1)"}},
		{"rustdesk-host=rd.example.com,key=" + refKey + ", (1).exe", Server{Host: "rd.example.com", Key: refKey}},
		// A later token wins; unknown tokens are ignored; values keep case.
		{"x-HOST=A.example,foo=bar,host=B.Example,Api=http://x,.exe", Server{Host: "B.Example", API: "http://x"}},
		// Text before the first host= is ignored.
		{"key=zzz,rustdesk-host=a.example,.exe", Server{Host: "a.example"}},
	} {
		got, err := ParseExeName(tc.name)
		if err != nil {
			t.Errorf("ParseExeName(%q): %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseExeName(%q) = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{
		"rustdesk.exe",
		"rustdesk",
		"",
		"rustdesk-licensed-.exe",
		"rustdesk-licensed-=" + vectorAString + ".exe", // GUI padding: --config rules reject it
	} {
		if s, err := ParseExeName(name); !errors.Is(err, ErrNoConfigInName) {
			t.Errorf("ParseExeName(%q) = %+v, %v; want ErrNoConfigInName", name, s, err)
		}
	}
}

func TestExeNameEncode(t *testing.T) {
	s := Server{Host: "rd.example.com", Relay: "relay.example.com", Key: refKey}
	got, err := ExeName(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "rustdesk-host=rd.example.com,key=" + refKey + ",relay=relay.example.com,.exe"; got != want {
		t.Errorf("ExeName = %q, want %q", got, want)
	}
	nameB, err := ExeName(vectorB)
	if err != nil || nameB != "rustdesk-host=rd.example.com,key="+refKey+",.exe" {
		t.Errorf("ExeName(B) = %q, %v", nameB, err)
	}
	// Windows appends " (1)" to a second download; the trailing comma keeps
	// the key intact.
	renamed := strings.TrimSuffix(nameB, ".exe") + " (1).exe"
	if back, err := ParseExeName(renamed); err != nil || back != vectorB {
		t.Errorf("renamed %q parsed to %+v, %v", renamed, back, err)
	}
	lic, err := LicensedExeName(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	if want := "rustdesk-licensed-" + vectorAString + ".exe"; lic != want {
		t.Errorf("LicensedExeName(A) = %q, want %q", lic, want)
	}
	for _, renamed := range []string{
		strings.TrimSuffix(lic, ".exe") + " (1).exe",
		strings.TrimSuffix(lic, ".exe") + "(2).exe",
	} {
		if back, err := ParseExeName(renamed); err != nil || back != vectorA {
			t.Errorf("renamed %q parsed to %+v, %v", renamed, back, err)
		}
	}

	slashKey := Server{Host: "rd.example.com", Key: "AAECAwQFBg/ICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	if err := slashKey.Validate(); err != nil {
		t.Fatalf("test key invalid: %v", err)
	}
	_, err = ExeName(slashKey)
	var fe *FileNameError
	if !errors.As(err, &fe) || fe.Field != "key" || !errors.Is(err, ErrNotInFileName) {
		t.Errorf("ExeName(key with /) = %v, want a *FileNameError for the key", err)
	}
	// The licensed form carries such a key.
	if lic, err := Render(FormatExeNameLicensed, slashKey, Options{}); err != nil {
		t.Errorf("licensed name with a / key: %v", err)
	} else if strings.Contains(string(lic), "/") {
		t.Errorf("licensed name %q contains /", lic)
	}
	for name, s := range map[string]Server{
		"host with port": {Host: "rd.example.com:21116", Key: refKey},
		"relay port":     vectorA,
		"api url":        {Host: "rd.example.com", API: "https://rd.example.com", Key: refKey},
		"quick support":  {Host: "my-qs-server.example", Key: refKey},
		"too long":       {Host: strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60), Key: refKey},
	} {
		if _, err := ExeName(s); !errors.Is(err, ErrNotInFileName) {
			t.Errorf("%s: ExeName = %v, want ErrNotInFileName", name, err)
		}
	}
}

func TestJSON(t *testing.T) {
	got, err := EncodeJSON(vectorB, Options{Fingerprint: "fp:01"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "host": "rd.example.com",
  "relay": "",
  "api": "",
  "key": "` + refKey + `",
  "fingerprint": "fp:01"
}
`
	if string(got) != want {
		t.Errorf("EncodeJSON:\n%s\nwant:\n%s", got, want)
	}
	e, err := DecodeJSON(got)
	if err != nil || e.Server() != vectorB || e.Fingerprint != "fp:01" {
		t.Errorf("DecodeJSON = %+v, %v", e, err)
	}
	for name, in := range map[string]string{
		"unknown field": `{"host":"a","hots":"b"}`,
		"trailing":      `{"host":"a"} {}`,
		"not json":      `host=a`,
	} {
		if e, err := DecodeJSON([]byte(in)); err == nil {
			t.Errorf("%s: decoded %+v", name, e)
		}
	}
	if _, err := EncodeJSON(vectorB, Options{Fingerprint: "a\nb"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("fingerprint with a newline: %v", err)
	}
}

func TestPS1(t *testing.T) {
	script, err := EncodePS1(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	text := string(script)
	toml, _ := EncodeTOML(vectorA)
	for _, want := range []string{
		"$ServiceName = 'RustDesk'\n",
		"$FileName = 'RustDesk2.toml'\n",
		`'C:\Windows\ServiceProfiles\LocalService\AppData\Roaming\RustDesk\config'`,
		`'C:\Users\Default\AppData\Roaming\RustDesk\config'`,
		"$Toml = @'\n" + string(toml) + "'@ + [char]10\n",
		"Stop-Service -Name $ServiceName",
		"Start-Service -Name $ServiceName",
		"New-Item -ItemType Directory -Force",
		"New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(text), "rustdesk.toml") {
		t.Error("script mentions RustDesk.toml")
	}
	// The service is stopped before the first write and started after the
	// last, in a finally block.
	stop, write, start := strings.Index(text, "Stop-Service"), strings.Index(text, "WriteAllText"), strings.Index(text, "Start-Service")
	if !(stop < write && write < start) || !strings.Contains(text[write:start], "} finally {") {
		t.Errorf("wrong order: stop %d, write %d, start %d", stop, write, start)
	}
	for i := range len(text) {
		if c := text[i]; c >= 0x80 || c < 0x20 && c != '\n' {
			t.Fatalf("script has byte %#x at %d", c, i)
		}
	}
	s, err := DecodePS1(script)
	if err != nil || s != vectorA {
		t.Errorf("DecodePS1 = %+v, %v", s, err)
	}
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	if s, err := DecodePS1([]byte(crlf)); err != nil || s != vectorA {
		t.Errorf("DecodePS1(CRLF) = %+v, %v", s, err)
	}
	if _, err := DecodePS1([]byte(strings.Replace(text, "RustDesk2.toml", "RustDesk.toml", 1))); err == nil {
		t.Error("DecodePS1 accepted a script that names RustDesk.toml")
	}
	if _, err := DecodePS1([]byte(strings.Replace(text, `C:\Users\Default`, `C:\Users\Public`, -1))); err == nil {
		t.Error("DecodePS1 accepted a script without the Default profile")
	}
}

// TestPSQuoting checks the last line of defence directly, with values
// Validate would never let through.
func TestPSQuoting(t *testing.T) {
	if q, err := psSingleQuoted(`C:\x y$z"`); err != nil || q != `'C:\x y$z"'` {
		t.Errorf("psSingleQuoted = %q, %v", q, err)
	}
	for _, v := range []string{"a'b", "a\u2019b", "a\nb", "a\x00b"} {
		if q, err := psSingleQuoted(v); !errors.Is(err, errUnsafePS) {
			t.Errorf("psSingleQuoted(%q) = %q, %v", v, q, err)
		}
	}
	for _, v := range []string{"a\n'@", "a\n  '@ x", "a\n\"@", "a\n", "caf\u00e9", "a\tb"} {
		if q, err := psHereBody(v); !errors.Is(err, errUnsafePS) {
			t.Errorf("psHereBody(%q) = %q, %v", v, q, err)
		}
	}
}

// TestRenderRoundTrip renders every format for a spread of servers: every
// output must decode to its input (Render checks) and the decoders must
// agree with each other.
func TestRenderRoundTrip(t *testing.T) {
	servers := []Server{
		vectorA, vectorB, vectorC, upstreamServer,
		{Host: "rd.example.com", Relay: "relay.example.com", Key: refKey},
		{Host: "[2001:db8::1]:21116", Relay: "[2001:db8::2]", API: "https://api.example.com:8443/a?b=c&d=<e>", Key: refKey},
		{Host: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61), Key: refKey},
	}
	for _, s := range servers {
		for _, f := range Formats {
			out, err := Render(f, s, Options{Fingerprint: "fp"})
			if errors.Is(err, ErrNotInFileName) && (f == FormatExeName || f == FormatExeNameLicensed) {
				continue // refused by design; covered by TestExeNameEncode
			}
			if err != nil {
				t.Errorf("Render(%s, %+v): %v", f, s, err)
				continue
			}
			got, _, err := decodeOutput(t, f, out)
			if err != nil || got != s {
				t.Errorf("Decode(%s) = %+v, %v; want %+v", f, got, err, s)
			}
		}
	}
}

// TestVerifyCatchesMismatch shows Verify fails when output and input differ,
// for every format.
func TestVerifyCatchesMismatch(t *testing.T) {
	other := vectorB
	other.Host = "other.example.com"
	for _, f := range Formats {
		out, err := Render(f, other, Options{Fingerprint: "fp"})
		if err != nil {
			t.Fatalf("Render(%s): %v", f, err)
		}
		err = Verify(f, vectorB, Options{Fingerprint: "fp"}, out)
		var me *MismatchError
		if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) || me.Format != f {
			t.Errorf("Verify(%s) with another server's output = %v, want a *MismatchError", f, err)
		}
	}
	// Corrupted outputs fail too.
	out, _ := Render(FormatJSON, vectorB, Options{Fingerprint: "fp"})
	if err := Verify(FormatJSON, vectorB, Options{Fingerprint: "other"}, out); !errors.Is(err, ErrMismatch) {
		t.Errorf("fingerprint mismatch not caught: %v", err)
	}
	ps1, _ := Render(FormatPS1, vectorB, Options{})
	broken := strings.Replace(string(ps1), "$Toml = @'\n[options]\n", "$Toml = @'\n[options]\n# edited\n", 1)
	if err := Verify(FormatPS1, vectorB, Options{}, []byte(broken)); !errors.Is(err, ErrMismatch) {
		t.Errorf("edited script not caught: %v", err)
	}
	padded := "=" + vectorAString
	if err := Verify(FormatString, vectorA, Options{}, []byte(padded)); !errors.Is(err, ErrMismatch) {
		t.Errorf("padded string not caught: %v", err)
	}
	if _, _, err := Decode("yaml", nil); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Decode(yaml): %v", err)
	}
	if _, err := Encode("yaml", vectorB, Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Encode(yaml): %v", err)
	}
}

// allow-websocket: written as 'Y' only where the format can carry it, read
// back as the client's option2bool reads an allow-* option (only "Y").
func TestAllowWebSocket(t *testing.T) {
	s := Server{Host: "rd.example.com", API: "https://rd.example.com", Key: refKey, AllowWebSocket: true}
	for _, f := range Formats {
		out, err := Render(f, s, Options{})
		if f == FormatExeName && errors.As(err, new(*FileNameError)) {
			continue // an API URL cannot be in the host= name
		}
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		has := bytes.Contains(out, []byte("allow-websocket = 'Y'")) || bytes.Contains(out, []byte(`"allow_websocket": true`))
		if has != CarriesWebSocket(f) {
			t.Errorf("%s: carries allow-websocket %v, CarriesWebSocket %v", f, has, CarriesWebSocket(f))
		}
		if f == FormatQR {
			continue
		}
		got, _, err := Decode(f, out)
		if err != nil || got.AllowWebSocket != CarriesWebSocket(f) {
			t.Errorf("%s: decoded %+v %v", f, got, err)
		}
	}
	off, _ := Render(FormatTOML, Server{Host: "rd.example.com", Key: refKey}, Options{})
	if bytes.Contains(off, []byte("allow-websocket")) {
		t.Errorf("allow-websocket written when off:\n%s", off)
	}
	for v, want := range map[string]bool{"Y": true, "y": false, "N": false, "yes": false, "": false} {
		got, err := DecodeTOML([]byte("[options]\ncustom-rendezvous-server = 'rd.example.com'\nallow-websocket = '" + v + "'\n"))
		if err != nil || got.AllowWebSocket != want {
			t.Errorf("allow-websocket = %q: %v %v, want %v", v, got.AllowWebSocket, err, want)
		}
	}
}
