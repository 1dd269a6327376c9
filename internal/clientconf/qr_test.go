package clientconf

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	qrcode "github.com/skip2/go-qrcode"
)

// zxingDecode decodes a PNG with an independent QR decoder (gozxing). rdctl
// ships no QR reader, so this is what proves its QR codes scan.
func zxingDecode(pngData []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return "", err
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// zxingRead is zxingDecode failing the test on error.
func zxingRead(t testing.TB, pngData []byte) string {
	t.Helper()
	text, err := zxingDecode(pngData)
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return text
}

// decodeOutput is Decode for every format, the QR code read with gozxing as
// a phone would.
func decodeOutput(t testing.TB, f Format, out []byte) (Server, Options, error) {
	t.Helper()
	if f == FormatQR {
		s, err := DecodeQRText(zxingRead(t, out))
		return s, Options{}, err
	}
	return Decode(f, out)
}

// TestQRDecodesWithGozxing decodes EncodeQR's PNG with gozxing and compares
// the text with config=<string>.
func TestQRDecodesWithGozxing(t *testing.T) {
	for _, s := range []Server{vectorA, vectorB, vectorC, upstreamServer} {
		pngData, err := Render(FormatQR, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := QRPayload(s)
		text := zxingRead(t, pngData)
		if text != want {
			t.Errorf("gozxing read %q, want %q", text, want)
		}
		cs, _ := EncodeString(s)
		if want != "config="+cs {
			t.Errorf("payload %q is not config=<string>", want)
		}
		got, err := DecodeQRText(text)
		if err != nil || got != s {
			t.Errorf("DecodeQRText = %+v, %v; want %+v", got, err, s)
		}
	}
}

// TestQRScansAtEveryVersion renders QR codes of ever longer configs (a
// longer API URL) until they no longer fit, and reads one at every QR
// version on the way with gozxing. The symbol's layout (size, alignment
// patterns, version information, block structure) depends only on the
// version, so this stands in for the read-back Render no longer does.
func TestQRScansAtEveryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and scans about 40 large QR codes")
	}
	seen := map[int]bool{}
	first, last := 0, 0
	// The payload grows by 4/3 bytes per URL character; at level M the byte
	// capacity grows by at least 12 bytes from one version to the next, so
	// steps of 6 characters (8 bytes) land in every version.
	for n := 0; ; n += 6 {
		s := vectorA
		s.API = "https://rd.example.com/" + strings.Repeat("p", n)
		payload, err := QRPayload(s)
		if err != nil {
			t.Fatal(err)
		}
		q, err := qrcode.New(payload, qrcode.Medium)
		if err != nil {
			// Too long for any version: Render must refuse it too.
			if _, rerr := Render(FormatQR, s, Options{}); rerr == nil {
				t.Fatalf("Render accepted a %d-byte payload go-qrcode refuses (%v)", len(payload), err)
			}
			break
		}
		v := q.VersionNumber
		if seen[v] {
			continue
		}
		seen[v] = true
		if first == 0 {
			first = v
		}
		last = v
		// EncodeQR, not Render: Render returns exactly these bytes (Verify
		// compares them), at twice the cost.
		out, err := EncodeQR(s)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if got := zxingRead(t, out); got != payload {
			t.Errorf("version %d: gozxing read %q, want %q", v, got, payload)
		}
	}
	for v := first; v <= last; v++ {
		if !seen[v] {
			t.Errorf("version %d never rendered (versions %d..%d)", v, first, last)
		}
	}
	if last != 40 {
		t.Errorf("largest version %d, want 40", last)
	}
}

// TestQRVerifyRejects damages a good PNG: Verify must notice what it can
// without reading images.
func TestQRVerifyRejects(t *testing.T) {
	good, err := EncodeQR(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	m := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			m.Set(x, y, img.At(x, y))
		}
	}
	m.SetGray(1, 1, color.Gray{}) // a stray pixel in the quiet zone
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := Verify(FormatQR, vectorA, Options{}, good); err != nil {
		t.Fatalf("the good PNG: %v", err)
	}
	for name, data := range map[string][]byte{
		"not png":     []byte("not a png"),
		"truncated":   good[:len(good)/2],
		"stray pixel": buf.Bytes(),
	} {
		var me *MismatchError
		if err := Verify(FormatQR, vectorA, Options{}, data); !errors.As(err, &me) || me.Format != FormatQR {
			t.Errorf("%s: Verify = %v, want a *MismatchError", name, err)
		}
	}
	if _, _, err := Decode(FormatQR, good); !errors.Is(err, ErrNoDecoder) {
		t.Errorf("Decode(qr) = %v, want ErrNoDecoder", err)
	}
	// A QR code without the config= prefix is not a client config.
	if _, err := DecodeQRText(vectorAString); !errors.Is(err, ErrBadQR) {
		t.Errorf("DecodeQRText without prefix: %v", err)
	}
}
