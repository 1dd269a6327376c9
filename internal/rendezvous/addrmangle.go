package rendezvous

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// EncodeAddr returns the AddrMangle encoding hbb_common uses for socket
// addresses in PunchHoleResponse.socket_addr, RelayResponse.socket_addr and
// friends.
//
// IPv4 (a 4-byte netip.Addr) is encoded with the time component tm = 0:
// v = u32le(octets) << 49 | port, written as v's 16 little-endian bytes with
// trailing zero bytes trimmed. Every other address, including IPv4-mapped
// IPv6 (as Rust's SocketAddr::V6 would be), is 16 address bytes followed by
// the port as u16 little-endian: 18 bytes. Call Unmap first to get the IPv4
// form for a mapped address. The zone is dropped.
func EncodeAddr(ap netip.AddrPort) []byte {
	addr := ap.Addr()
	if addr.Is4() {
		return encodeAddr4(addr.As4(), ap.Port(), 0)
	}
	a16 := addr.As16()
	b := make([]byte, 18)
	copy(b, a16[:])
	binary.LittleEndian.PutUint16(b[16:], ap.Port())
	return b
}

// encodeAddr4 builds the IPv4 form with a time component tm:
// v = (ip+tm) << 49 | tm << 17 | (port + tm&0xFFFF), computed in 128 bits.
// hbbs mixes the current time in; tm = 0 gives the plain form.
func encodeAddr4(octets [4]byte, port uint16, tm uint32) []byte {
	ip := uint64(binary.LittleEndian.Uint32(octets[:])) + uint64(tm) // < 2^33
	// ip<<49 spans bits 49..81: split into the low and high 64-bit halves.
	lo := ip<<49 | uint64(tm)<<17 | (uint64(port) + uint64(tm&0xFFFF))
	hi := ip >> 15
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], lo)
	binary.LittleEndian.PutUint64(buf[8:], hi)
	n := len(buf)
	for n > 0 && buf[n-1] == 0 {
		n--
	}
	return append([]byte{}, buf[:n]...)
}

// ErrAddrLen is returned by DecodeAddr for encodings of 17 or more than 18
// bytes (hbb_common decodes those to 0.0.0.0:0).
var ErrAddrLen = errors.New("rendezvous: AddrMangle encoding is neither ≤16 nor 18 bytes")

// DecodeAddr reverses EncodeAddr. Up to 16 bytes are the IPv4 form, read as a
// little-endian 128-bit v (missing high bytes are zero) with
// tm = (v >> 17) & 0xFFFFFFFF, ip = (v >> 49) − tm and
// port = (v & 0xFFFFFF) − (tm & 0xFFFF), all wrapping, so both the tm = 0
// form and a time-mangled one decode. An empty slice is 0.0.0.0:0.
// 18 bytes are the IPv6 form; IPv4-mapped addresses are returned as such.
func DecodeAddr(b []byte) (netip.AddrPort, error) {
	switch {
	case len(b) == 18:
		var a16 [16]byte
		copy(a16[:], b)
		return netip.AddrPortFrom(netip.AddrFrom16(a16), binary.LittleEndian.Uint16(b[16:])), nil
	case len(b) > 16:
		return netip.AddrPort{}, fmt.Errorf("%w: %d bytes", ErrAddrLen, len(b))
	}
	var buf [16]byte
	copy(buf[:], b)
	lo := binary.LittleEndian.Uint64(buf[:8])
	hi := binary.LittleEndian.Uint64(buf[8:])
	tm := (lo >> 17) & 0xFFFFFFFF
	ipHigh := lo>>49 | hi<<15 // low 64 bits of v >> 49; only 32 are used
	ip := uint32(ipHigh - tm)
	port := uint16((lo & 0xFFFFFF) - (tm & 0xFFFF))
	var octets [4]byte
	binary.LittleEndian.PutUint32(octets[:], ip)
	return netip.AddrPortFrom(netip.AddrFrom4(octets), port), nil
}

// SignIDPK returns what hbbs puts in PunchHoleResponse.PK and
// RelayResponse.PK: the libsodium combined-mode signature of IdPk{id, pk},
// i.e. the 64-byte Ed25519 signature followed by the signed message.
func SignIDPK(sk ed25519.PrivateKey, id string, pk []byte) []byte {
	msg := (&IDPK{ID: id, PK: pk}).Marshal()
	return append(ed25519.Sign(sk, msg), msg...)
}

// ErrBadSignature is returned by VerifyIDPK when signed is not a valid
// combined-mode signature by the given public key.
var ErrBadSignature = errors.New("rendezvous: IdPk signature does not verify")

// VerifyIDPK checks a combined-mode signed IdPk against the server's public
// key and returns the decoded IdPk. It does not compare the id; callers that
// know the peer id must (the RustDesk client requires id == peer id).
func VerifyIDPK(pub ed25519.PublicKey, signed []byte) (*IDPK, error) {
	if len(pub) != ed25519.PublicKeySize || len(signed) < ed25519.SignatureSize {
		return nil, ErrBadSignature
	}
	msg := signed[ed25519.SignatureSize:]
	if !ed25519.Verify(pub, msg, signed[:ed25519.SignatureSize]) {
		return nil, ErrBadSignature
	}
	var m IDPK
	if err := m.Unmarshal(msg); err != nil {
		return nil, err
	}
	return &m, nil
}
