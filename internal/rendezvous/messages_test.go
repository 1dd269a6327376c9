package rendezvous

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestReferenceVectors reproduces the framed byte examples of these messages,
// worked out by hand from hbb_common's BytesCodec and rendezvous.proto.
func TestReferenceVectors(t *testing.T) {
	framed := func(m Message) []byte {
		b, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		got  []byte
		want string
		back Message // what decoding want gives
		tcp  bool
	}{
		{"TestNatRequest{} framed", framed(&TestNatRequest{}), "0c a2 01 00", &TestNatRequest{}, true},
		{"UDP RegisterPeer{id:abc}", Marshal(&RegisterPeer{ID: "abc"}), "32 05 0a 03 61 62 63", &RegisterPeer{ID: "abc"}, false},
		{"RegisterPeerResponse{request_pk:true}", Marshal(&RegisterPeerResponse{RequestPK: true}), "3a 02 10 01", &RegisterPeerResponse{RequestPK: true}, false},
		{"PunchHoleResponse{LICENSE_MISMATCH} framed", framed(&PunchHoleResponse{Failure: LicenseMismatch}), "10 5a 02 18 03", &PunchHoleResponse{Failure: LicenseMismatch}, true},
		{"PunchHoleResponse{} framed", framed(&PunchHoleResponse{}), "08 5a 00", &PunchHoleResponse{}, true},
	}
	for _, c := range cases {
		want := unhex(t, c.want)
		if !bytes.Equal(c.got, want) {
			t.Errorf("%s: got % x, want % x", c.name, c.got, want)
		}
		var m Message
		var err error
		if c.tcp {
			m, err = ReadMessage(bytes.NewReader(want), 1024)
		} else {
			m, err = Unmarshal(want)
		}
		if err != nil || !reflect.DeepEqual(m, c.back) {
			t.Errorf("%s: decoded %#v, %v; want %#v", c.name, m, err, c.back)
		}
	}
}

func TestNegativeInt32IsTenBytes(t *testing.T) {
	b := (&TestNatRequest{Serial: -1}).Marshal()
	want := append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 9)...)
	want = append(want, 0x01)
	if !bytes.Equal(b, want) {
		t.Fatalf("Serial -1: % x, want % x", b, want)
	}
	var m TestNatRequest
	if err := m.Unmarshal(b); err != nil || m.Serial != -1 {
		t.Fatalf("decode: %d %v", m.Serial, err)
	}
}

func TestOneofMembersAlwaysWritten(t *testing.T) {
	cases := []struct {
		m    Message
		want string
	}{
		{&PunchHoleResponse{Union: PunchHoleNatType(UnknownNat)}, "28 00"},
		{&PunchHoleResponse{Union: PunchHoleIsLocal(false)}, "30 00"},
		{&PunchHoleResponse{Union: PunchHoleIsLocal(true)}, "30 01"},
		{&RelayResponse{Union: RelayResponseID("")}, "22 00"},
		{&RelayResponse{Union: RelayResponsePK(nil)}, "2a 00"},
		{&TestNatResponse{CU: &ConfigUpdate{}}, "12 00"},
	}
	for _, c := range cases {
		got := c.m.Marshal()
		if !bytes.Equal(got, unhex(t, c.want)) {
			t.Errorf("%#v: % x, want %s", c.m, got, c.want)
		}
		back, err := Unmarshal(Marshal(c.m))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.Marshal(), got) {
			t.Errorf("%#v: round trip lost the set member", c.m)
		}
		if o, err := oracleRoundTrip(t, reflect.TypeOf(c.m).Elem().Name(), got); err != nil || !bytes.Equal(o, got) {
			t.Errorf("%#v: protobuf-go re-encodes as % x (%v)", c.m, o, err)
		}
	}
}

// TestUnknownFieldsSkipped feeds messages with extra fields of every wire
// type, including a group, and expects the known fields intact.
func TestUnknownFieldsSkipped(t *testing.T) {
	var extra []byte
	extra = protowire.AppendTag(extra, 90, protowire.VarintType)
	extra = protowire.AppendVarint(extra, 12345)
	extra = protowire.AppendTag(extra, 91, protowire.Fixed32Type)
	extra = protowire.AppendFixed32(extra, 7)
	extra = protowire.AppendTag(extra, 92, protowire.Fixed64Type)
	extra = protowire.AppendFixed64(extra, 7)
	extra = protowire.AppendTag(extra, 93, protowire.BytesType)
	extra = protowire.AppendBytes(extra, []byte("whatever \xff"))
	extra = protowire.AppendTag(extra, 94, protowire.StartGroupType)
	extra = protowire.AppendTag(extra, 1, protowire.VarintType)
	extra = protowire.AppendVarint(extra, 1)
	extra = protowire.AppendTag(extra, 94, protowire.EndGroupType)
	// A known field number with the wrong wire type is unknown too.
	extra = protowire.AppendTag(extra, 3, protowire.Fixed32Type)
	extra = protowire.AppendFixed32(extra, 4)

	ph := &PunchHoleRequest{ID: "123456789", LicenceKey: "k"}
	body := append(ph.Marshal(), extra...)
	var got PunchHoleRequest
	if err := got.Unmarshal(body); err != nil || !reflect.DeepEqual(&got, ph) {
		t.Fatalf("got %#v, %v", got, err)
	}

	// Unknown fields at the RendezvousMessage level, around a known member.
	env := append(append([]byte{}, extra...), Marshal(ph)...)
	env = append(env, unhex(t, "f8 07 01")...) // field 127 varint: not a member
	m, err := Unmarshal(env)
	if err != nil || !reflect.DeepEqual(m, ph) {
		t.Fatalf("envelope: %#v, %v", m, err)
	}
}

func TestUnmodelledMemberIsUnknown(t *testing.T) {
	// punch_hole = 9 with PunchHole{socket_addr: "x"}.
	in := unhex(t, "4a 03 0a 01 78")
	m, err := Unmarshal(in)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := m.(*Unknown)
	if !ok || u.Field != 9 || !bytes.Equal(u.Payload, unhex(t, "0a 01 78")) {
		t.Fatalf("got %#v", m)
	}
	if !bytes.Equal(Marshal(u), in) {
		t.Fatalf("re-marshal % x", Marshal(u))
	}
}

func TestOneofLastWinsAndMerges(t *testing.T) {
	a := Marshal(&RegisterPeer{ID: "a"})
	b := Marshal(&PunchHoleRequest{ID: "b"})
	m, err := Unmarshal(append(append([]byte{}, a...), b...))
	if err != nil || !reflect.DeepEqual(m, &PunchHoleRequest{ID: "b"}) {
		t.Fatalf("different members: %#v %v", m, err)
	}
	c := Marshal(&PunchHoleRequest{LicenceKey: "k"})
	m, err = Unmarshal(append(append([]byte{}, b...), c...))
	if err != nil || !reflect.DeepEqual(m, &PunchHoleRequest{ID: "b", LicenceKey: "k"}) {
		t.Fatalf("same member twice should merge: %#v %v", m, err)
	}
	if m, err := Unmarshal(nil); m != nil || err != nil {
		t.Fatalf("empty: %#v %v", m, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string]string{
		"truncated tag":       "5a",
		"truncated length":    "5a 05 18",
		"bad utf8 id":         "32 03 0a 01 ff",
		"field zero":          "00 01",
		"unterminated group":  "5b 08 01",
		"overlong varint":     "a0 01 ff ff ff ff ff ff ff ff ff ff 01",
		"truncated submember": "5a 02 18",
	}
	for name, in := range cases {
		m, err := Unmarshal(unhex(t, in))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: got %#v, %v; want *DecodeError", name, m, err)
		}
		if _, oerr := oracleRoundTrip(t, "RendezvousMessage", unhex(t, in)); oerr == nil {
			t.Errorf("%s: protobuf-go accepts it, so this package should too", name)
		}
	}
	var de *DecodeError
	_, err := Unmarshal(unhex(t, "32 03 0a 01 ff"))
	if !errors.As(err, &de) || !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("utf8: %v", err)
	}
}

func TestOnlineResponseBits(t *testing.T) {
	r := &OnlineResponse{States: []byte{0b1000_0001, 0b0100_0000}}
	want := map[int]bool{0: true, 7: true, 9: true}
	for i := -1; i < 20; i++ {
		if r.Online(i) != want[i] {
			t.Errorf("Online(%d) = %v", i, r.Online(i))
		}
	}
}

// randomMessage fills every modelled field of a random member, each left at
// its zero value with probability 1/3.
func randomMessage(r *rand.Rand) Message {
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		alphabet := []string{"a", "Z", "0", "é", "日", "/", "=", " ", "\x00"}
		var sb strings.Builder
		for range r.IntN(40) + 1 {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return sb.String()
	}
	bs := func() []byte {
		if r.IntN(3) == 0 {
			return nil
		}
		b := make([]byte, r.IntN(70)+1)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	}
	i32 := func() int32 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return -int32(r.IntN(1 << 20))
		}
		return int32(r.Uint32())
	}
	bl := func() bool { return r.IntN(2) == 0 }
	strs := func() []string {
		var s []string
		for range r.IntN(4) {
			s = append(s, str())
		}
		return s
	}
	switch r.IntN(11) {
	case 0:
		return &RegisterPeer{ID: str(), Serial: i32()}
	case 1:
		return &RegisterPeerResponse{RequestPK: bl()}
	case 2:
		return &PunchHoleRequest{ID: str(), NatType: NatType(i32()), LicenceKey: str(), ConnType: ConnType(i32()),
			Token: str(), Version: str(), UDPPort: i32(), ForceRelay: bl(), UPnPPort: i32(), SocketAddrV6: bs(), SwitchCode: str()}
	case 3:
		m := &PunchHoleResponse{SocketAddr: bs(), PK: bs(), Failure: Failure(i32()), RelayServer: str(),
			OtherFailure: str(), Feedback: i32(), IsUDP: bl(), UPnPPort: i32(), SocketAddrV6: bs()}
		switch r.IntN(3) {
		case 1:
			m.Union = PunchHoleNatType(i32())
		case 2:
			m.Union = PunchHoleIsLocal(bl())
		}
		return m
	case 4:
		return &RequestRelay{ID: str(), UUID: str(), SocketAddr: bs(), RelayServer: str(), Secure: bl(),
			LicenceKey: str(), ConnType: ConnType(i32()), Token: str(), SwitchCode: str()}
	case 5:
		m := &RelayResponse{SocketAddr: bs(), UUID: str(), RelayServer: str(), RefuseReason: str(),
			Version: str(), Feedback: i32(), SocketAddrV6: bs(), UPnPPort: i32()}
		switch r.IntN(3) {
		case 1:
			m.Union = RelayResponseID(str())
		case 2:
			m.Union = RelayResponsePK(bs())
		}
		return m
	case 6:
		return &TestNatRequest{Serial: i32()}
	case 7:
		m := &TestNatResponse{Port: i32()}
		if bl() {
			m.CU = &ConfigUpdate{Serial: i32(), RendezvousServers: strs()}
		}
		return m
	case 8:
		return &OnlineRequest{ID: str(), Peers: strs()}
	case 9:
		return &OnlineResponse{States: bs()}
	default:
		m := &KeyExchange{}
		for range r.IntN(3) {
			k := bs()
			if k == nil {
				k = []byte{}
			}
			m.Keys = append(m.Keys, k)
		}
		return m
	}
}

// normalise maps nil and empty slices together, since the wire cannot tell
// them apart.
func normalise(m Message) Message {
	v := reflect.ValueOf(m).Elem()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			if v.Len() == 0 && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			if v.Type().Elem().Kind() == reflect.Slice {
				for i := range v.Len() {
					if v.Index(i).Len() == 0 {
						v.Index(i).Set(reflect.MakeSlice(v.Type().Elem(), 0, 0))
					}
				}
			}
		case reflect.Interface:
			if !v.IsNil() {
				if e := v.Elem(); e.Kind() == reflect.Slice && e.Len() == 0 {
					v.Set(reflect.Zero(e.Type()).Convert(e.Type()))
				}
			}
		}
	}
	walk(v)
	return m
}

// TestRoundTripAgainstProtobufGo encodes random messages, checks that
// protobuf-go's deterministic encoder produces the very same bytes from them
// (canonical order, defaults omitted) and that decoding gives the message back.
func TestRoundTripAgainstProtobufGo(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		m := randomMessage(r)
		env := Marshal(m)
		o, err := oracleRoundTrip(t, "RendezvousMessage", env)
		if err != nil {
			t.Fatalf("#%d %#v: protobuf-go rejects % x: %v", i, m, env, err)
		}
		if !bytes.Equal(o, env) {
			t.Fatalf("#%d %#v:\n ours      % x\n protobuf % x", i, m, env, o)
		}
		back, err := Unmarshal(env)
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if !reflect.DeepEqual(normalise(back), normalise(m)) {
			t.Fatalf("#%d:\n got  %#v\n want %#v", i, back, m)
		}
		framed, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := ReadMessage(bytes.NewReader(framed), len(env))
		if err != nil || !bytes.Equal(Marshal(rm), env) {
			t.Fatalf("#%d framed: %v", i, err)
		}
	}
}

func TestIDPKAgainstProtobufGo(t *testing.T) {
	m := &IDPK{ID: "123456789", PK: bytes.Repeat([]byte{7}, 32)}
	b := m.Marshal()
	o, err := oracleRoundTrip(t, "IdPk", b)
	if err != nil || !bytes.Equal(o, b) {
		t.Fatalf("% x vs % x (%v)", b, o, err)
	}
	var back IDPK
	if err := back.Unmarshal(b); err != nil || !reflect.DeepEqual(&back, m) {
		t.Fatalf("%#v %v", back, err)
	}
}
