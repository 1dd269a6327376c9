package clientconf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRFileName is the name the provisioning tree gives the QR code.
const QRFileName = "config-qr.png"

// qrPayloadPrefix is what the mobile client's scanner looks for
// (showServerSettingFromQr in its scan_page.dart).
const qrPayloadPrefix = "config="

// qrModulePixels is the width of one QR module in the PNG: 8 px gives a
// code phones read from a printed page or a screen.
const qrModulePixels = 8

// ErrBadQR is matched (errors.Is) by every error of [DecodeQRText].
var ErrBadQR = errors.New("not a RustDesk QR code text")

// QRPayload returns the text of the QR code for mobile clients:
// "config=" + [EncodeString].
func QRPayload(s Server) (string, error) {
	cs, err := EncodeString(s)
	if err != nil {
		return "", err
	}
	return qrPayloadPrefix + cs, nil
}

// EncodeQR returns a PNG of a QR code holding [QRPayload]: error correction
// level M, 8 pixels per module, black on white with the standard 4-module
// quiet zone. Scanning it in the RustDesk mobile app fills in the ID, relay
// and API servers and the key.
func EncodeQR(s Server) ([]byte, error) {
	payload, err := QRPayload(s)
	if err != nil {
		return nil, err
	}
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	// A negative size is a module width in pixels for go-qrcode.
	png, err := q.PNG(-qrModulePixels)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return png, nil
}

// DecodeQRText decodes the text a scanner read from a QR code as the mobile
// app does: it requires the "config=" prefix and decodes the rest with
// [DecodeString]. It does not validate the result. rdctl itself reads no
// images (see [Verify]).
func DecodeQRText(text string) (Server, error) {
	cs, ok := strings.CutPrefix(text, qrPayloadPrefix)
	if !ok {
		return Server{}, fmt.Errorf("%w: the text does not start with %q", ErrBadQR, qrPayloadPrefix)
	}
	return DecodeString(cs)
}

// verifyQR is [Verify] for FormatQR. rdctl ships no QR reader (a scanner
// is a large dependency for reading back its own output), so it cannot read
// the symbol back; what it proves at run time is that the symbol's text is
// right (the config-string checks) and that out is exactly the symbol
// EncodeQR draws for that text. That the symbol scans is proven by the
// tests, which read EncodeQR's output at every QR version a config can need
// with an independent decoder (gozxing). It returns a *MismatchError.
func verifyQR(s Server, out []byte) error {
	payload, err := QRPayload(s)
	if err != nil {
		return &MismatchError{Format: FormatQR, Want: s, Detail: err.Error()}
	}
	if err := Verify(FormatString, s, Options{}, []byte(strings.TrimPrefix(payload, qrPayloadPrefix))); err != nil {
		var me *MismatchError
		if errors.As(err, &me) {
			return &MismatchError{Format: FormatQR, Want: s, Got: me.Got, Detail: "the QR text: " + me.Detail}
		}
		return &MismatchError{Format: FormatQR, Want: s, Detail: err.Error()}
	}
	want, err := EncodeQR(s)
	if err != nil {
		return &MismatchError{Format: FormatQR, Want: s, Detail: err.Error()}
	}
	if !bytes.Equal(out, want) {
		return &MismatchError{Format: FormatQR, Want: s, Detail: fmt.Sprintf("the PNG is not the QR code of %q", payload)}
	}
	return nil
}
