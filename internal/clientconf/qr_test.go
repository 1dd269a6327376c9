package clientconf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	qrcode "github.com/skip2/go-qrcode"
)

// zxingRead decodes a PNG with an independent QR decoder (gozxing).
func zxingRead(t *testing.T, pngData []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		t.Fatalf("png: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("gozxing bitmap: %v", err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatalf("gozxing decode: %v", err)
	}
	return res.GetText()
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
		if got := zxingRead(t, pngData); got != want {
			t.Errorf("gozxing read %q, want %q", got, want)
		}
		cs, _ := EncodeString(s)
		if want != "config="+cs {
			t.Errorf("payload %q is not config=<string>", want)
		}
		got, err := DecodeQR(pngData)
		if err != nil || got != s {
			t.Errorf("DecodeQR = %+v, %v; want %+v", got, err, s)
		}
	}
}

// TestQRTablesMatchGozxing compares the reader's tables with gozxing's.
func TestQRTablesMatchGozxing(t *testing.T) {
	levels := []decoder.ErrorCorrectionLevel{
		decoder.ErrorCorrectionLevel_L, decoder.ErrorCorrectionLevel_M,
		decoder.ErrorCorrectionLevel_Q, decoder.ErrorCorrectionLevel_H,
	}
	for v := 1; v <= 40; v++ {
		zv, err := decoder.Version_GetVersionForNumber(v)
		if err != nil {
			t.Fatal(err)
		}
		for l, zl := range levels {
			eb := zv.GetECBlocksForLevel(zl)
			if got := qrECTable[v][l]; got.ecPerBlock != eb.GetECCodewordsPerBlock() || got.blocks != eb.GetNumBlocks() {
				t.Errorf("version %d level %s: %+v, gozxing has %d EC codewords in %d blocks",
					v, qrLevelNames[l], got, eb.GetECCodewordsPerBlock(), eb.GetNumBlocks())
			}
		}
		if got, want := qrAlignmentCenters(v), zv.GetAlignmentPatternCenters(); !equalInts(got, want) {
			t.Errorf("version %d alignment centres %v, want %v", v, got, want)
		}
		isFunc, _ := qrFunctionPattern(v)
		data := 0
		for _, row := range isFunc {
			for _, f := range row {
				if !f {
					data++
				}
			}
		}
		if data/8 != zv.GetTotalCodewords() {
			t.Errorf("version %d: %d data modules = %d codewords, want %d", v, data, data/8, zv.GetTotalCodewords())
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadQRAllVersions reads symbols of every version and of every level
// that go-qrcode draws (not every pair: go-qrcode is slow at large sizes), with texts that exercise numeric, alphanumeric and byte
// segments.
func TestReadQRAllVersions(t *testing.T) {
	levels := []qrcode.RecoveryLevel{qrcode.Low, qrcode.Medium, qrcode.High, qrcode.Highest}
	texts := []string{"0123456789012345678901234", "HELLO WORLD 12345 $%*+-./:", "bytes\x00\xff and config=0123456789ABCDEF"}
	for v := 1; v <= 40; v++ {
		for li, level := range levels {
			// Every version once, at a level that rotates with it; every
			// level at the versions where the layout or field widths change.
			switch v {
			case 1, 2, 7, 9, 10, 26, 27, 40:
			default:
				if li != v%4 {
					continue
				}
			}
			// The longest prefix of the text that fits this version.
			text := texts[(v+li)%len(texts)]
			var q *qrcode.QRCode
			var err error
			for ; text != ""; text = text[:len(text)-1] {
				if q, err = qrcode.NewWithForcedVersion(text, v, level); err == nil {
					break
				}
			}
			if q == nil {
				t.Fatalf("version %d: %v", v, err)
			}
			pngData, err := q.PNG(-1 - v%3) // 1..3 px a module
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadQR(pngData)
			if err != nil {
				t.Errorf("version %d level %s: %v", v, qrLevelNames[li], err)
				continue
			}
			if got != text {
				t.Errorf("version %d level %s: read %q, want %q", v, qrLevelNames[li], got, text)
			}
		}
	}
}

// TestReadQRRejects damages a good PNG in ways a reader must notice.
func TestReadQRRejects(t *testing.T) {
	good, err := EncodeQR(vectorA)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	n := b.Dx()/qrModulePixels - 8 // symbol size in modules
	mutate := func(fn func(m *image.Gray)) []byte {
		m := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				m.Set(x, y, img.At(x, y))
			}
		}
		fn(m)
		var buf bytes.Buffer
		if err := png.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	flipModule := func(m *image.Gray, r, c int) {
		for y := 0; y < qrModulePixels; y++ {
			for x := 0; x < qrModulePixels; x++ {
				px, py := (4+c)*qrModulePixels+x, (4+r)*qrModulePixels+y
				m.SetGray(px, py, color.Gray{Y: 255 - m.GrayAt(px, py).Y})
			}
		}
	}
	// Sanity: the copy itself reads.
	if got, err := ReadQR(mutate(func(*image.Gray) {})); err != nil || !strings.HasPrefix(got, "config=") {
		t.Fatalf("unmodified copy: %q, %v", got, err)
	}
	for name, data := range map[string][]byte{
		"not png":        []byte("not a png"),
		"truncated":      good[:len(good)/2],
		"blank":          mutate(func(m *image.Gray) { fillGray(m, 255) }),
		"data module":    mutate(func(m *image.Gray) { flipModule(m, n-1, n-1) }),
		"format info":    mutate(func(m *image.Gray) { flipModule(m, 8, 0) }),
		"timing pattern": mutate(func(m *image.Gray) { flipModule(m, 6, 9) }),
		"stray pixel":    mutate(func(m *image.Gray) { m.SetGray(1, 1, color.Gray{}) }),
		"half module": mutate(func(m *image.Gray) {
			m.SetGray(4*qrModulePixels+3, 12*qrModulePixels, color.Gray{Y: 255 - m.GrayAt(4*qrModulePixels+3, 12*qrModulePixels).Y})
		}),
		"huge dimensions": hugePNGHeader(),
	} {
		if got, err := ReadQR(data); !errors.Is(err, ErrBadQR) {
			t.Errorf("%s: read %q, %v", name, got, err)
		}
	}
	// A QR code without the config= prefix is not a client config.
	q, _ := qrcode.New(vectorAString, qrcode.Medium)
	plain, _ := q.PNG(-4)
	if _, err := DecodeQR(plain); !errors.Is(err, ErrBadQR) {
		t.Errorf("DecodeQR without prefix: %v", err)
	}
}

func fillGray(m *image.Gray, y uint8) {
	for i := range m.Pix {
		m.Pix[i] = y
	}
}

// hugePNGHeader is a PNG whose header claims 100000x100000 pixels.
func hugePNGHeader() []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// IHDR: type at 12..16, data at 16..29 starting with width and height
	// (big-endian), CRC over type and data at 29..33.
	copy(b[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != 100000 {
		panic(fmt.Sprintf("hugePNGHeader: %+v, %v", cfg, err))
	}
	return b
}
