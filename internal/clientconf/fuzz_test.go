package clientconf

import (
	"testing"
)

// Seeds run under plain `go test`; `go test -fuzz=FuzzX` explores further.

func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{
		upstreamVector, vectorAString, vectorBString, vectorCString, docsMalformed,
		"=" + vectorAString, "==" + vectorBString, " " + vectorCString + "\n",
		`{"host":"rd.example.com","key":"` + refKey + `"}`, "", "=", "{", "e30", "03e",
		"0nI9gDaIR2d4dUYrJ0RYllUGVVToVkUBhHRPBTQEx0bRNUSjdmQGF1dBNURBFkI6ISeltmIsIiI6ISawFmIsIiI6ISehxWZyJCLi02bj5SZsBXbhhXZuQmciojI0N3boJy+",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := DecodeString(in)
		cli, cliErr := DecodeStringCLI(in)
		// Everything --config accepts, the paste decoder accepts alike.
		if cliErr == nil && (err != nil || s != cli) {
			t.Fatalf("DecodeStringCLI(%q) = %+v but DecodeString = %+v, %v", in, cli, s, err)
		}
		if err != nil || s.Validate() != nil {
			return
		}
		// A valid decoded value re-encodes canonically and decodes back.
		cs, err := EncodeString(s)
		if err != nil {
			t.Fatalf("EncodeString(%+v): %v", s, err)
		}
		if back, err := DecodeStringCLI(cs); err != nil || back != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, back, err)
		}
	})
}

func FuzzParseExeName(f *testing.F) {
	e := upstreamVector
	for _, s := range []string{
		"rustdesk-host=server.example.net.exe",
		"rustdesk-host=server.example.net,api=abc,key=Zm9vYmFyLiwyCg==.exe",
		"rustdesk-Host=server.example.net,Key=Zm9vYmFyLiwyCg==,RELAY=server.example.net.exe",
		"rustdesk-licensed-" + e + ".exe", "rustdesk-licensed-" + e + "(1).exe",
		"rustdesk-licensed-" + e + " (1) (2).exe", "rustdesk--" + e + "(1).exe",
		"rustdesk-licensed-" + e + "--abc.exe", "rustdesk-licensed---" + e + "--.exe",
		"rustdesk.exe", "rustdesk-host=rd.example.com,key=" + refKey + ", (1).exe",
		"HOST=.EXE.EXE", "--(--(", "-licensed-licensed---",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s, err := ParseExeName(name)
		if err != nil || s.Validate() != nil {
			return
		}
		// Whatever valid value a name carries, rdctl's own names for it
		// parse back to the same value.
		if n, err := ExeName(s); err == nil {
			if back, err := ParseExeName(n); err != nil || back != s {
				t.Fatalf("ExeName(%+v) = %q parses to %+v, %v", s, n, back, err)
			}
		}
		if n, err := LicensedExeName(s); err == nil {
			if back, err := ParseExeName(n); err != nil || back != s {
				t.Fatalf("LicensedExeName(%+v) = %q parses to %+v, %v", s, n, back, err)
			}
		}
	})
}

func FuzzDecodeTOML(f *testing.F) {
	for _, s := range []Server{vectorA, vectorB} {
		b, _ := EncodeTOML(s)
		f.Add(b)
		c, _ := EncodeServerConf(s)
		f.Add(c)
	}
	f.Add([]byte("nat_type = 1\n[options]\nkey = \"x\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := DecodeTOML(in)
		if err != nil || s.Validate() != nil {
			return
		}
		b, err := EncodeTOML(s)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := DecodeTOML(b); err != nil || back != s {
			t.Fatalf("round trip of %+v: %+v, %v", s, back, err)
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	b, _ := EncodeJSON(vectorA, Options{Fingerprint: "fp"})
	f.Add(b)
	f.Add([]byte(`{"host":"a","fingerprint":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := DecodeJSON(in)
		if err != nil || e.Server().Validate() != nil {
			return
		}
		o := Options{Fingerprint: e.Fingerprint}
		if o.validate() != nil {
			return
		}
		if _, err := Render(FormatJSON, e.Server(), o); err != nil {
			t.Fatalf("re-render of %+v: %v", e, err)
		}
	})
}

func FuzzDecodePS1(f *testing.F) {
	b, _ := EncodePS1(vectorA)
	f.Add(b)
	f.Add([]byte("$Toml = @'\n[options]\n'@"))
	f.Fuzz(func(t *testing.T, in []byte) {
		DecodePS1(in) // must not panic
	})
}

// FuzzQRScans renders the QR code of configs with arbitrary API URL paths
// and reads it back with gozxing: the guarantee Render cannot give at run
// time without a QR reader.
func FuzzQRScans(f *testing.F) {
	f.Add("")
	f.Add("a?b=c&d=<e>")
	f.Fuzz(func(t *testing.T, path string) {
		s := vectorA
		s.API = "https://rd.example.com/" + path
		out, err := Render(FormatQR, s, Options{})
		if err != nil {
			return // invalid URL or too long for a QR code
		}
		want, _ := QRPayload(s)
		if got := zxingRead(t, out); got != want {
			t.Fatalf("gozxing read %q, want %q", got, want)
		}
	})
}
