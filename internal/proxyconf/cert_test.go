package proxyconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
)

// writeCert writes a self-signed certificate for name, valid until
// notAfter, and its key.
func writeCert(t *testing.T, dir, name string, notAfter time.Time) (cert, key string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cert, key
}

func TestCheckCertFiles(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	cert, key := writeCert(t, dir, "rd.example.com", now.Add(24*time.Hour))
	keyBytes, _ := os.ReadFile(key)
	w, err := CheckCertFiles(cert, key, "rd.example.com", now)
	if err != nil || len(w) != 0 {
		t.Fatalf("good pair: %v %v", w, err)
	}
	w, err = CheckCertFiles(cert, key, "other.example.com", now)
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "not for other.example.com") {
		t.Errorf("other name: %v %v", w, err)
	}
	w, err = CheckCertFiles(cert, key, "rd.example.com", now.Add(72*time.Hour))
	if err != nil || len(w) != 1 || !strings.Contains(w[0], "expired") {
		t.Errorf("expired: %v %v", w, err)
	}
	fail := func(name, c, k, field string) {
		t.Helper()
		w, err := CheckCertFiles(c, k, "rd.example.com", now)
		var ie *deploy.InputError
		if !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: %v, want an InputError for %s", name, err, field)
		}
		// the key file's bytes are in no message
		for _, s := range append(w, errString(err)) {
			if strings.Contains(s, strings.TrimSpace(string(keyBytes))) || strings.Contains(s, "PRIVATE KEY") {
				t.Errorf("%s: the key file's content in %q", name, s)
			}
		}
	}
	fail("missing certificate", filepath.Join(dir, "nope.pem"), key, "--cert")
	fail("the key given as certificate", key, key, "--cert")
	fail("a directory as certificate", dir, key, "--cert")
	fail("missing key", cert, filepath.Join(dir, "nope.pem"), "--cert-key")
	fail("a directory as key", cert, dir, "--cert-key")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
	fail("a certificate that does not parse", garbage, key, "--cert")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
