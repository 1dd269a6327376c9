package clientconf

import (
	"errors"
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRFileName is the name the provisioning tree gives the QR code.
const QRFileName = "config-qr.png"

// qrPayloadPrefix is what the mobile client's scanner looks for (§2.1).
const qrPayloadPrefix = "config="

// qrModulePixels is the width of one QR module in the PNG: 8 px gives a
// code phones read from a printed page or a screen, and whole pixels per
// module let ReadQR sample the image exactly.
const qrModulePixels = 8

// ErrBadQR is matched (errors.Is) by every error of [ReadQR] and [DecodeQR].
var ErrBadQR = errors.New("not a QR code rdctl can read")

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

// DecodeQR reads a QR code PNG with [ReadQR], requires the "config=" prefix
// and decodes the rest with [DecodeString], as the mobile app does. It does
// not validate the result.
func DecodeQR(png []byte) (Server, error) {
	text, err := ReadQR(png)
	if err != nil {
		return Server{}, err
	}
	cs, ok := strings.CutPrefix(text, qrPayloadPrefix)
	if !ok {
		return Server{}, fmt.Errorf("%w: the text does not start with %q", ErrBadQR, qrPayloadPrefix)
	}
	return DecodeString(cs)
}
