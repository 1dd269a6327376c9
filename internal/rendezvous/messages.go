package rendezvous

import (
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Message is one member of the hbb.RendezvousMessage oneof. It is implemented
// by the pointer types of this package only.
type Message interface {
	// Marshal returns the member's own encoding, without the
	// RendezvousMessage wrapper.
	Marshal() []byte
	// Unmarshal replaces the receiver with the decoded b.
	Unmarshal(b []byte) error
	// rendezvousField is the member's field number in RendezvousMessage.
	rendezvousField() protowire.Number
}

// Field numbers of the RendezvousMessage oneof (rendezvous.proto).
const (
	FieldRegisterPeer         = 6
	FieldRegisterPeerResponse = 7
	FieldPunchHoleRequest     = 8
	FieldPunchHoleResponse    = 11
	FieldRequestRelay         = 18
	FieldRelayResponse        = 19
	FieldTestNatRequest       = 20
	FieldTestNatResponse      = 21
	FieldOnlineRequest        = 23
	FieldOnlineResponse       = 24
	FieldKeyExchange          = 25
)

// firstUnionField is the lowest RendezvousMessage oneof member number.
// RendezvousMessage has no fields besides the oneof, so every length-delimited
// field from here up is a member; the ones rdctl does not model (for example
// punch_hole = 9, hc = 26, or members added after 28) come back as *Unknown.
const firstUnionField = 6

// Marshal returns the RendezvousMessage encoding of m: the member as a
// length-delimited field under its oneof number. A nil m encodes as an empty
// RendezvousMessage (no bytes).
func Marshal(m Message) []byte {
	if m == nil {
		return []byte{}
	}
	return appendMessage(nil, m.rendezvousField(), m.Marshal())
}

// Unmarshal decodes a RendezvousMessage and returns its oneof member as one of
// this package's pointer types, *Unknown for a member rdctl does not model, or
// nil when no member is set. Unknown non-member fields are skipped. As in
// protobuf, a repeated member merges into the previous one and a different
// later member replaces it.
func Unmarshal(b []byte) (Message, error) {
	var m Message
	err := parseFields("RendezvousMessage", b, func(f field) error {
		if f.typ != protowire.BytesType || f.num < firstUnionField {
			return nil
		}
		if m == nil || m.rendezvousField() != f.num {
			m = newMember(f.num)
		}
		return mergeInto(m, f.b)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func newMember(num protowire.Number) Message {
	switch num {
	case FieldRegisterPeer:
		return &RegisterPeer{}
	case FieldRegisterPeerResponse:
		return &RegisterPeerResponse{}
	case FieldPunchHoleRequest:
		return &PunchHoleRequest{}
	case FieldPunchHoleResponse:
		return &PunchHoleResponse{}
	case FieldRequestRelay:
		return &RequestRelay{}
	case FieldRelayResponse:
		return &RelayResponse{}
	case FieldTestNatRequest:
		return &TestNatRequest{}
	case FieldTestNatResponse:
		return &TestNatResponse{}
	case FieldOnlineRequest:
		return &OnlineRequest{}
	case FieldOnlineResponse:
		return &OnlineResponse{}
	case FieldKeyExchange:
		return &KeyExchange{}
	}
	return &Unknown{Field: int32(num)}
}

// merger is implemented by every Message: decode b on top of the current
// value, as protobuf merges repeated occurrences of a message field.
type merger interface{ merge(b []byte) error }

func mergeInto(m Message, b []byte) error { return m.(merger).merge(b) }

// AppendMessage appends m framed for TCP (header + RendezvousMessage).
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	return AppendFrame(dst, Marshal(m))
}

// WriteMessage writes m to a TCP stream as one frame.
func WriteMessage(w io.Writer, m Message) error { return WriteFrame(w, Marshal(m)) }

// ReadMessage reads one frame of at most max payload bytes (see ReadFrame)
// and decodes it as a RendezvousMessage.
func ReadMessage(r io.Reader, max int) (Message, error) {
	b, err := ReadFrame(r, max)
	if err != nil {
		return nil, err
	}
	return Unmarshal(b)
}

// Unknown is a RendezvousMessage member rdctl does not model (for example
// punch_hole = 9 or hc = 26). Payload is its raw encoding; re-marshalling
// reproduces it.
type Unknown struct {
	Field   int32
	Payload []byte
}

func (m *Unknown) rendezvousField() protowire.Number { return protowire.Number(m.Field) }
func (m *Unknown) Marshal() []byte                   { return append([]byte{}, m.Payload...) }
func (m *Unknown) Unmarshal(b []byte) error {
	m.Payload = nil
	return m.merge(b)
}
func (m *Unknown) merge(b []byte) error {
	// Kept raw and not parsed: rdctl does not know the member's schema, and
	// a member it ignores must not make the whole message fail.
	m.Payload = append(m.Payload, b...)
	return nil
}

// NatType is hbb.NatType.
type NatType int32

const (
	UnknownNat NatType = 0
	Asymmetric NatType = 1
	Symmetric  NatType = 2
)

func (t NatType) String() string {
	switch t {
	case UnknownNat:
		return "UNKNOWN_NAT"
	case Asymmetric:
		return "ASYMMETRIC"
	case Symmetric:
		return "SYMMETRIC"
	}
	return fmt.Sprintf("NatType(%d)", int32(t))
}

// ConnType is hbb.ConnType.
type ConnType int32

const (
	DefaultConn  ConnType = 0
	FileTransfer ConnType = 1
	PortForward  ConnType = 2
	RDP          ConnType = 3
	ViewCamera   ConnType = 4
	Terminal     ConnType = 5
)

// Failure is hbb.PunchHoleResponse.Failure. Its zero value is IDNotExist,
// which therefore never appears on the wire.
type Failure int32

const (
	IDNotExist      Failure = 0
	Offline         Failure = 2
	LicenseMismatch Failure = 3 // the client's "Key mismatch"
	LicenseOveruse  Failure = 4
)

func (f Failure) String() string {
	switch f {
	case IDNotExist:
		return "ID_NOT_EXIST"
	case Offline:
		return "OFFLINE"
	case LicenseMismatch:
		return "LICENSE_MISMATCH"
	case LicenseOveruse:
		return "LICENSE_OVERUSE"
	}
	return fmt.Sprintf("Failure(%d)", int32(f))
}

// RegisterPeer is hbb.RegisterPeer (UDP heartbeat). Field 1 id, 2 serial.
type RegisterPeer struct {
	ID     string
	Serial int32
}

func (m *RegisterPeer) rendezvousField() protowire.Number { return FieldRegisterPeer }
func (m *RegisterPeer) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, m.ID)
	b = appendInt32(b, 2, m.Serial)
	return b
}
func (m *RegisterPeer) Unmarshal(b []byte) error { *m = RegisterPeer{}; return m.merge(b) }
func (m *RegisterPeer) merge(b []byte) error {
	return parseFields("RegisterPeer", b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&m.ID)
		case 2:
			f.int32(&m.Serial)
		}
		return nil
	})
}

// RegisterPeerResponse is hbb.RegisterPeerResponse. Field 2 request_pk.
type RegisterPeerResponse struct {
	RequestPK bool
}

func (m *RegisterPeerResponse) rendezvousField() protowire.Number { return FieldRegisterPeerResponse }
func (m *RegisterPeerResponse) Marshal() []byte                   { return appendBool(nil, 2, m.RequestPK) }
func (m *RegisterPeerResponse) Unmarshal(b []byte) error {
	*m = RegisterPeerResponse{}
	return m.merge(b)
}
func (m *RegisterPeerResponse) merge(b []byte) error {
	return parseFields("RegisterPeerResponse", b, func(f field) error {
		if f.num == 2 {
			f.bool(&m.RequestPK)
		}
		return nil
	})
}

// PunchHoleRequest is hbb.PunchHoleRequest, sent on TCP 21116 to ask for a
// peer; hbbs checks LicenceKey first.
type PunchHoleRequest struct {
	ID           string   // 1
	NatType      NatType  // 2
	LicenceKey   string   // 3
	ConnType     ConnType // 4
	Token        string   // 5
	Version      string   // 6
	UDPPort      int32    // 7
	ForceRelay   bool     // 8
	UPnPPort     int32    // 9
	SocketAddrV6 []byte   // 10
	SwitchCode   string   // 11
}

func (m *PunchHoleRequest) rendezvousField() protowire.Number { return FieldPunchHoleRequest }
func (m *PunchHoleRequest) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, m.ID)
	b = appendInt32(b, 2, int32(m.NatType))
	b = appendString(b, 3, m.LicenceKey)
	b = appendInt32(b, 4, int32(m.ConnType))
	b = appendString(b, 5, m.Token)
	b = appendString(b, 6, m.Version)
	b = appendInt32(b, 7, m.UDPPort)
	b = appendBool(b, 8, m.ForceRelay)
	b = appendInt32(b, 9, m.UPnPPort)
	b = appendBytes(b, 10, m.SocketAddrV6)
	b = appendString(b, 11, m.SwitchCode)
	return b
}
func (m *PunchHoleRequest) Unmarshal(b []byte) error { *m = PunchHoleRequest{}; return m.merge(b) }
func (m *PunchHoleRequest) merge(b []byte) error {
	return parseFields("PunchHoleRequest", b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&m.ID)
		case 2:
			f.int32((*int32)(&m.NatType))
		case 3:
			return f.str(&m.LicenceKey)
		case 4:
			f.int32((*int32)(&m.ConnType))
		case 5:
			return f.str(&m.Token)
		case 6:
			return f.str(&m.Version)
		case 7:
			f.int32(&m.UDPPort)
		case 8:
			f.bool(&m.ForceRelay)
		case 9:
			f.int32(&m.UPnPPort)
		case 10:
			f.bytes(&m.SocketAddrV6)
		case 11:
			return f.str(&m.SwitchCode)
		}
		return nil
	})
}

// PunchHoleResponse is hbb.PunchHoleResponse. An OSS hbbs answers a probe
// for an unknown id with the empty message (Failure IDNotExist) and a wrong
// licence key with Failure LicenseMismatch.
type PunchHoleResponse struct {
	SocketAddr   []byte  // 1, AddrMangle encoded
	PK           []byte  // 2, signed IdPk (64-byte signature + message)
	Failure      Failure // 3
	RelayServer  string  // 4
	Union        PunchHoleResponseUnion
	OtherFailure string // 7
	Feedback     int32  // 8
	IsUDP        bool   // 9
	UPnPPort     int32  // 10
	SocketAddrV6 []byte // 11
}

// PunchHoleResponseUnion is the oneof of PunchHoleResponse: nil (unset),
// PunchHoleNatType (field 5) or PunchHoleIsLocal (field 6). A set member is
// written even when it holds the zero value.
type PunchHoleResponseUnion interface{ isPunchHoleResponseUnion() }

// PunchHoleNatType is PunchHoleResponse.nat_type (field 5).
type PunchHoleNatType NatType

// PunchHoleIsLocal is PunchHoleResponse.is_local (field 6).
type PunchHoleIsLocal bool

func (PunchHoleNatType) isPunchHoleResponseUnion() {}
func (PunchHoleIsLocal) isPunchHoleResponseUnion() {}

func (m *PunchHoleResponse) rendezvousField() protowire.Number { return FieldPunchHoleResponse }
func (m *PunchHoleResponse) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, m.SocketAddr)
	b = appendBytes(b, 2, m.PK)
	b = appendInt32(b, 3, int32(m.Failure))
	b = appendString(b, 4, m.RelayServer)
	b = appendString(b, 7, m.OtherFailure)
	b = appendInt32(b, 8, m.Feedback)
	b = appendBool(b, 9, m.IsUDP)
	b = appendInt32(b, 10, m.UPnPPort)
	b = appendBytes(b, 11, m.SocketAddrV6)
	// The oneof goes last, as rust-protobuf (hbbs) and protobuf-go write it.
	switch u := m.Union.(type) {
	case PunchHoleNatType:
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(u)))
	case PunchHoleIsLocal:
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(bool(u)))
	}
	return b
}
func (m *PunchHoleResponse) Unmarshal(b []byte) error { *m = PunchHoleResponse{}; return m.merge(b) }
func (m *PunchHoleResponse) merge(b []byte) error {
	return parseFields("PunchHoleResponse", b, func(f field) error {
		switch f.num {
		case 1:
			f.bytes(&m.SocketAddr)
		case 2:
			f.bytes(&m.PK)
		case 3:
			f.int32((*int32)(&m.Failure))
		case 4:
			return f.str(&m.RelayServer)
		case 5:
			if f.typ == protowire.VarintType {
				m.Union = PunchHoleNatType(int32(f.u))
			}
		case 6:
			if f.typ == protowire.VarintType {
				m.Union = PunchHoleIsLocal(f.u != 0)
			}
		case 7:
			return f.str(&m.OtherFailure)
		case 8:
			f.int32(&m.Feedback)
		case 9:
			f.bool(&m.IsUDP)
		case 10:
			f.int32(&m.UPnPPort)
		case 11:
			f.bytes(&m.SocketAddrV6)
		}
		return nil
	})
}

// TestNatRequest is hbb.TestNatRequest. Field 1 serial.
type TestNatRequest struct {
	Serial int32
}

func (m *TestNatRequest) rendezvousField() protowire.Number { return FieldTestNatRequest }
func (m *TestNatRequest) Marshal() []byte                   { return appendInt32(nil, 1, m.Serial) }
func (m *TestNatRequest) Unmarshal(b []byte) error          { *m = TestNatRequest{}; return m.merge(b) }
func (m *TestNatRequest) merge(b []byte) error {
	return parseFields("TestNatRequest", b, func(f field) error {
		if f.num == 1 {
			f.int32(&m.Serial)
		}
		return nil
	})
}

// TestNatResponse is hbb.TestNatResponse: Port is the source port the server
// saw; CU is set only when the server's serial is greater than the request's.
type TestNatResponse struct {
	Port int32         // 1
	CU   *ConfigUpdate // 2
}

func (m *TestNatResponse) rendezvousField() protowire.Number { return FieldTestNatResponse }
func (m *TestNatResponse) Marshal() []byte {
	b := appendInt32(nil, 1, m.Port)
	if m.CU != nil {
		b = appendMessage(b, 2, m.CU.Marshal())
	}
	return b
}
func (m *TestNatResponse) Unmarshal(b []byte) error { *m = TestNatResponse{}; return m.merge(b) }
func (m *TestNatResponse) merge(b []byte) error {
	return parseFields("TestNatResponse", b, func(f field) error {
		switch f.num {
		case 1:
			f.int32(&m.Port)
		case 2:
			if f.typ != protowire.BytesType {
				return nil
			}
			if m.CU == nil {
				m.CU = &ConfigUpdate{}
			}
			return m.CU.merge(f.b)
		}
		return nil
	})
}

// ConfigUpdate is hbb.ConfigUpdate. It is not a RendezvousMessage member
// rdctl sends (configure_update = 14 arrives as *Unknown).
type ConfigUpdate struct {
	Serial            int32    // 1
	RendezvousServers []string // 2
}

// Marshal returns the encoding of m.
func (m *ConfigUpdate) Marshal() []byte {
	b := appendInt32(nil, 1, m.Serial)
	for _, s := range m.RendezvousServers {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// Unmarshal replaces m with the decoded b.
func (m *ConfigUpdate) Unmarshal(b []byte) error { *m = ConfigUpdate{}; return m.merge(b) }
func (m *ConfigUpdate) merge(b []byte) error {
	return parseFields("ConfigUpdate", b, func(f field) error {
		switch f.num {
		case 1:
			f.int32(&m.Serial)
		case 2:
			return f.strs(&m.RendezvousServers)
		}
		return nil
	})
}

// RequestRelay is hbb.RequestRelay. hbbr accepts a connection whose first
// frame is a RequestRelay with the right LicenceKey and a non-empty UUID.
// Fields 9 (control_permissions) and 10 (controlled_context) are not modelled;
// they are skipped when decoding.
type RequestRelay struct {
	ID          string   // 1
	UUID        string   // 2
	SocketAddr  []byte   // 3
	RelayServer string   // 4
	Secure      bool     // 5
	LicenceKey  string   // 6
	ConnType    ConnType // 7
	Token       string   // 8
	SwitchCode  string   // 11
}

func (m *RequestRelay) rendezvousField() protowire.Number { return FieldRequestRelay }
func (m *RequestRelay) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, m.ID)
	b = appendString(b, 2, m.UUID)
	b = appendBytes(b, 3, m.SocketAddr)
	b = appendString(b, 4, m.RelayServer)
	b = appendBool(b, 5, m.Secure)
	b = appendString(b, 6, m.LicenceKey)
	b = appendInt32(b, 7, int32(m.ConnType))
	b = appendString(b, 8, m.Token)
	b = appendString(b, 11, m.SwitchCode)
	return b
}
func (m *RequestRelay) Unmarshal(b []byte) error { *m = RequestRelay{}; return m.merge(b) }
func (m *RequestRelay) merge(b []byte) error {
	return parseFields("RequestRelay", b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&m.ID)
		case 2:
			return f.str(&m.UUID)
		case 3:
			f.bytes(&m.SocketAddr)
		case 4:
			return f.str(&m.RelayServer)
		case 5:
			f.bool(&m.Secure)
		case 6:
			return f.str(&m.LicenceKey)
		case 7:
			f.int32((*int32)(&m.ConnType))
		case 8:
			return f.str(&m.Token)
		case 11:
			return f.str(&m.SwitchCode)
		}
		return nil
	})
}

// RelayResponse is hbb.RelayResponse.
type RelayResponse struct {
	SocketAddr   []byte // 1, AddrMangle encoded
	UUID         string // 2
	RelayServer  string // 3
	Union        RelayResponseUnion
	RefuseReason string // 6
	Version      string // 7
	Feedback     int32  // 9
	SocketAddrV6 []byte // 10
	UPnPPort     int32  // 11
}

// RelayResponseUnion is the oneof of RelayResponse: nil (unset), RelayResponseID
// (field 4) or RelayResponsePK (field 5, a signed IdPk). A set member is
// written even when empty.
type RelayResponseUnion interface{ isRelayResponseUnion() }

// RelayResponseID is RelayResponse.id (field 4).
type RelayResponseID string

// RelayResponsePK is RelayResponse.pk (field 5).
type RelayResponsePK []byte

func (RelayResponseID) isRelayResponseUnion() {}
func (RelayResponsePK) isRelayResponseUnion() {}

func (m *RelayResponse) rendezvousField() protowire.Number { return FieldRelayResponse }
func (m *RelayResponse) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, m.SocketAddr)
	b = appendString(b, 2, m.UUID)
	b = appendString(b, 3, m.RelayServer)
	b = appendString(b, 6, m.RefuseReason)
	b = appendString(b, 7, m.Version)
	b = appendInt32(b, 9, m.Feedback)
	b = appendBytes(b, 10, m.SocketAddrV6)
	b = appendInt32(b, 11, m.UPnPPort)
	// The oneof goes last, as rust-protobuf (hbbs) and protobuf-go write it.
	switch u := m.Union.(type) {
	case RelayResponseID:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendString(b, string(u))
	case RelayResponsePK:
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, u)
	}
	return b
}
func (m *RelayResponse) Unmarshal(b []byte) error { *m = RelayResponse{}; return m.merge(b) }
func (m *RelayResponse) merge(b []byte) error {
	return parseFields("RelayResponse", b, func(f field) error {
		switch f.num {
		case 1:
			f.bytes(&m.SocketAddr)
		case 2:
			return f.str(&m.UUID)
		case 3:
			return f.str(&m.RelayServer)
		case 4:
			var s string
			if f.typ != protowire.BytesType {
				return nil
			}
			if err := f.str(&s); err != nil {
				return err
			}
			m.Union = RelayResponseID(s)
		case 5:
			if f.typ == protowire.BytesType {
				m.Union = RelayResponsePK(append([]byte{}, f.b...))
			}
		case 6:
			return f.str(&m.RefuseReason)
		case 7:
			return f.str(&m.Version)
		case 9:
			f.int32(&m.Feedback)
		case 10:
			f.bytes(&m.SocketAddrV6)
		case 11:
			f.int32(&m.UPnPPort)
		}
		return nil
	})
}

// OnlineRequest is hbb.OnlineRequest, answered on TCP 21115.
type OnlineRequest struct {
	ID    string   // 1
	Peers []string // 2
}

func (m *OnlineRequest) rendezvousField() protowire.Number { return FieldOnlineRequest }
func (m *OnlineRequest) Marshal() []byte {
	b := appendString(nil, 1, m.ID)
	for _, p := range m.Peers {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, p)
	}
	return b
}
func (m *OnlineRequest) Unmarshal(b []byte) error { *m = OnlineRequest{}; return m.merge(b) }
func (m *OnlineRequest) merge(b []byte) error {
	return parseFields("OnlineRequest", b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&m.ID)
		case 2:
			return f.strs(&m.Peers)
		}
		return nil
	})
}

// OnlineResponse is hbb.OnlineResponse. States is a bitmap, most significant
// bit first: bit 7-i%8 of byte i/8 is set when Peers[i] is online.
type OnlineResponse struct {
	States []byte // 1
}

// Online reports bit i of States.
func (m *OnlineResponse) Online(i int) bool {
	if i < 0 || i/8 >= len(m.States) {
		return false
	}
	return m.States[i/8]&(1<<(7-uint(i%8))) != 0
}

func (m *OnlineResponse) rendezvousField() protowire.Number { return FieldOnlineResponse }
func (m *OnlineResponse) Marshal() []byte                   { return appendBytes(nil, 1, m.States) }
func (m *OnlineResponse) Unmarshal(b []byte) error          { *m = OnlineResponse{}; return m.merge(b) }
func (m *OnlineResponse) merge(b []byte) error {
	return parseFields("OnlineResponse", b, func(f field) error {
		if f.num == 1 {
			f.bytes(&m.States)
		}
		return nil
	})
}

// KeyExchange is hbb.KeyExchange. OSS hbbs never sends it; RustDesk Server
// Pro sends Keys = [signed ephemeral box public key] first on TCP 21116.
type KeyExchange struct {
	Keys [][]byte // 1
}

func (m *KeyExchange) rendezvousField() protowire.Number { return FieldKeyExchange }
func (m *KeyExchange) Marshal() []byte {
	var b []byte
	for _, k := range m.Keys {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, k)
	}
	return b
}
func (m *KeyExchange) Unmarshal(b []byte) error { *m = KeyExchange{}; return m.merge(b) }
func (m *KeyExchange) merge(b []byte) error {
	return parseFields("KeyExchange", b, func(f field) error {
		if f.num == 1 && f.typ == protowire.BytesType {
			m.Keys = append(m.Keys, append([]byte{}, f.b...))
		}
		return nil
	})
}

// IDPK is hbb.IdPk from message.proto: the message hbbs signs (libsodium
// combined mode: 64-byte Ed25519 signature followed by these bytes) into
// PunchHoleResponse.PK and RelayResponse.PK. It is not a RendezvousMessage
// member.
type IDPK struct {
	ID string // 1
	PK []byte // 2
}

// Marshal returns the encoding of m.
func (m *IDPK) Marshal() []byte {
	b := appendString(nil, 1, m.ID)
	return appendBytes(b, 2, m.PK)
}

// Unmarshal replaces m with the decoded b.
func (m *IDPK) Unmarshal(b []byte) error {
	*m = IDPK{}
	return parseFields("IdPk", b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&m.ID)
		case 2:
			f.bytes(&m.PK)
		}
		return nil
	})
}
