package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestEncodeAddrVectors checks hand-computed encodings.
//
// 127.0.0.1:21116: u32le(7f 00 00 01) = 0x0100007f; shifted left by 49 it is
// 0x020000fe shifted by 48, i.e. bytes 6..9 = fe 00 00 02; the port 0x527c
// fills bytes 0..1. Trailing zero bytes are trimmed: 10 bytes.
func TestEncodeAddrVectors(t *testing.T) {
	cases := []struct {
		addr string
		want string
	}{
		{"127.0.0.1:21116", "7c 52 00 00 00 00 fe 00 00 02"},
		{"0.0.0.0:0", ""},
		{"0.0.0.0:1", "01"},
		{"255.255.255.255:65535", "ff ff 00 00 00 00 fe ff ff ff 01"},
		{"[::1]:21116", "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 7c 52"},
		{"[::ffff:127.0.0.1]:80", "00 00 00 00 00 00 00 00 00 00 ff ff 7f 00 00 01 50 00"},
	}
	for _, c := range cases {
		ap := netip.MustParseAddrPort(c.addr)
		got := EncodeAddr(ap)
		if !bytes.Equal(got, unhex(t, c.want)) {
			t.Errorf("EncodeAddr(%s) = % x, want %s", c.addr, got, c.want)
		}
		back, err := DecodeAddr(got)
		if err != nil || back != ap {
			t.Errorf("DecodeAddr(% x) = %v, %v; want %v", got, back, err, ap)
		}
	}
}

func TestDecodeAddrTimeMangled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		var o [4]byte
		for i := range o {
			o[i] = byte(r.IntN(256))
		}
		port := uint16(r.IntN(65536))
		tm := r.Uint32()
		got, err := DecodeAddr(encodeAddr4(o, port, tm))
		want := netip.AddrPortFrom(netip.AddrFrom4(o), port)
		if err != nil || got != want {
			t.Fatalf("tm=%d %v: got %v, %v", tm, want, got, err)
		}
	}
}

func TestDecodeAddrBadLength(t *testing.T) {
	for _, n := range []int{17, 19, 64} {
		if _, err := DecodeAddr(make([]byte, n)); !errors.Is(err, ErrAddrLen) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

func TestSignVerifyIDPK(t *testing.T) {
	pub, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	peerPK := bytes.Repeat([]byte{9}, 32)
	signed := SignIDPK(sk, "123456789", peerPK)
	if len(signed) != 64+len((&IDPK{ID: "123456789", PK: peerPK}).Marshal()) {
		t.Fatalf("combined mode is signature + message, got %d bytes", len(signed))
	}
	m, err := VerifyIDPK(pub, signed)
	if err != nil || m.ID != "123456789" || !bytes.Equal(m.PK, peerPK) {
		t.Fatalf("verify: %#v %v", m, err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if _, err := VerifyIDPK(other, signed); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	signed[70] ^= 1
	if _, err := VerifyIDPK(pub, signed); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := VerifyIDPK(pub, signed[:10]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("short: %v", err)
	}
}
