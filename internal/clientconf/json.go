package clientconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Options carries inputs that some formats need besides the [Server].
// The zero value is valid.
type Options struct {
	// Fingerprint is the public key's fingerprint as computed by the keys
	// package. It is copied verbatim into the JSON export (and nowhere else);
	// "" writes an empty "fingerprint". It must be printable ASCII.
	Fingerprint string
}

func (o Options) validate() error {
	for i := 0; i < len(o.Fingerprint); i++ {
		if c := o.Fingerprint[i]; c < 0x20 || c > 0x7e {
			return &ValidationError{"fingerprint", o.Fingerprint, "must be printable ASCII"}
		}
	}
	return nil
}

// JSONExport is the JSON export document. Every field is always present;
// unset relay and api are "". Field names are a contract for scripts: more
// may be added, none renamed.
type JSONExport struct {
	Host        string `json:"host"`
	Relay       string `json:"relay"`
	API         string `json:"api"`
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
	// AllowWebSocket: the client option allow-websocket = 'Y'; left out
	// when false.
	AllowWebSocket bool `json:"allow_websocket,omitempty"`
}

// EncodeJSON returns the JSON export: an indented object with host, relay,
// api, key and fingerprint, in that order, followed by a newline.
func EncodeJSON(s Server, o Options) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(JSONExport{s.Host, s.Relay, s.API, s.Key, o.Fingerprint, s.AllowWebSocket}); err != nil {
		return nil, fmt.Errorf("encode JSON export: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeJSON reads a JSON export back. Unknown fields are rejected, so a
// typo in a hand-edited file is not silently ignored. It does not validate
// the result.
func DecodeJSON(data []byte) (JSONExport, error) {
	var e JSONExport
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return JSONExport{}, fmt.Errorf("decode JSON export: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return JSONExport{}, fmt.Errorf("decode JSON export: trailing data after the object")
	}
	return e, nil
}

// Server returns the server settings of the export.
func (e JSONExport) Server() Server {
	return Server{Host: e.Host, Relay: e.Relay, API: e.API, Key: e.Key, AllowWebSocket: e.AllowWebSocket}
}
