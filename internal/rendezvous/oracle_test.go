package rendezvous

import (
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The oracle: the same schema as hbb_common's rendezvous.proto, built as a
// descriptor at test time and run through protobuf-go's own (dynamic) codec.
// Comparing against it checks canonical field order, default omission, oneof
// presence and unknown-field handling independently of this package's
// encoder.

type fd = descriptorpb.FieldDescriptorProto

func fld(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, typeName string, repeated bool, oneof *int32) *fd {
	label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	if repeated {
		label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	}
	f := &fd{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label.Enum(), OneofIndex: oneof}
	if typeName != "" {
		f.TypeName = proto.String(typeName)
	}
	return f
}

const (
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tInt32  = descriptorpb.FieldDescriptorProto_TYPE_INT32
	tBool   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tEnum   = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	tMsg    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
)

func enumDesc(name string, values map[string]int32) *descriptorpb.EnumDescriptorProto {
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
	// proto3 requires the zero value first; add it, then the others.
	for n, v := range values {
		if v == 0 {
			e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(n), Number: proto.Int32(v)})
		}
	}
	for n, v := range values {
		if v != 0 {
			e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(n), Number: proto.Int32(v)})
		}
	}
	return e
}

var (
	oracleOnce sync.Once
	oracleFD   protoreflect.FileDescriptor
	oracleErr  error
)

// oracleFile builds the descriptor once; descriptors are immutable and safe
// to share between parallel fuzz workers.
func oracleFile(t testing.TB) protoreflect.FileDescriptor {
	t.Helper()
	oracleOnce.Do(func() { oracleFD, oracleErr = buildOracleFile() })
	if oracleErr != nil {
		t.Fatalf("oracle descriptor: %v", oracleErr)
	}
	return oracleFD
}

func buildOracleFile() (protoreflect.FileDescriptor, error) {
	zero := proto.Int32(0) // every oneof here is the message's first (only) oneof
	msg := func(name string, fields ...*fd) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	oneofs := func(d *descriptorpb.DescriptorProto, names ...string) *descriptorpb.DescriptorProto {
		for _, n := range names {
			d.OneofDecl = append(d.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(n)})
		}
		return d
	}
	phr := msg("PunchHoleResponse",
		fld("socket_addr", 1, tBytes, "", false, nil),
		fld("pk", 2, tBytes, "", false, nil),
		fld("failure", 3, tEnum, ".hbb.PunchHoleResponse.Failure", false, nil),
		fld("relay_server", 4, tString, "", false, nil),
		fld("nat_type", 5, tEnum, ".hbb.NatType", false, zero),
		fld("is_local", 6, tBool, "", false, zero),
		fld("other_failure", 7, tString, "", false, nil),
		fld("feedback", 8, tInt32, "", false, nil),
		fld("is_udp", 9, tBool, "", false, nil),
		fld("upnp_port", 10, tInt32, "", false, nil),
		fld("socket_addr_v6", 11, tBytes, "", false, nil),
	)
	phr.EnumType = []*descriptorpb.EnumDescriptorProto{enumDesc("Failure", map[string]int32{
		"ID_NOT_EXIST": 0, "OFFLINE": 2, "LICENSE_MISMATCH": 3, "LICENSE_OVERUSE": 4})}
	oneofs(phr, "union")
	rr := oneofs(msg("RelayResponse",
		fld("socket_addr", 1, tBytes, "", false, nil),
		fld("uuid", 2, tString, "", false, nil),
		fld("relay_server", 3, tString, "", false, nil),
		fld("id", 4, tString, "", false, zero),
		fld("pk", 5, tBytes, "", false, zero),
		fld("refuse_reason", 6, tString, "", false, nil),
		fld("version", 7, tString, "", false, nil),
		fld("feedback", 9, tInt32, "", false, nil),
		fld("socket_addr_v6", 10, tBytes, "", false, nil),
		fld("upnp_port", 11, tInt32, "", false, nil),
	), "union")
	rm := oneofs(msg("RendezvousMessage",
		fld("register_peer", 6, tMsg, ".hbb.RegisterPeer", false, zero),
		fld("register_peer_response", 7, tMsg, ".hbb.RegisterPeerResponse", false, zero),
		fld("punch_hole_request", 8, tMsg, ".hbb.PunchHoleRequest", false, zero),
		fld("punch_hole_response", 11, tMsg, ".hbb.PunchHoleResponse", false, zero),
		fld("request_relay", 18, tMsg, ".hbb.RequestRelay", false, zero),
		fld("relay_response", 19, tMsg, ".hbb.RelayResponse", false, zero),
		fld("test_nat_request", 20, tMsg, ".hbb.TestNatRequest", false, zero),
		fld("test_nat_response", 21, tMsg, ".hbb.TestNatResponse", false, zero),
		fld("online_request", 23, tMsg, ".hbb.OnlineRequest", false, zero),
		fld("online_response", 24, tMsg, ".hbb.OnlineResponse", false, zero),
		fld("key_exchange", 25, tMsg, ".hbb.KeyExchange", false, zero),
	), "union")
	file := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("rdctl_oracle_rendezvous.proto"),
		Package: proto.String("hbb"),
		Syntax:  proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{
			enumDesc("NatType", map[string]int32{"UNKNOWN_NAT": 0, "ASYMMETRIC": 1, "SYMMETRIC": 2}),
			enumDesc("ConnType", map[string]int32{"DEFAULT_CONN": 0, "FILE_TRANSFER": 1, "PORT_FORWARD": 2, "RDP": 3, "VIEW_CAMERA": 4, "TERMINAL": 5}),
		},
		MessageType: []*descriptorpb.DescriptorProto{
			rm,
			msg("RegisterPeer", fld("id", 1, tString, "", false, nil), fld("serial", 2, tInt32, "", false, nil)),
			msg("RegisterPeerResponse", fld("request_pk", 2, tBool, "", false, nil)),
			msg("TestNatRequest", fld("serial", 1, tInt32, "", false, nil)),
			msg("TestNatResponse", fld("port", 1, tInt32, "", false, nil), fld("cu", 2, tMsg, ".hbb.ConfigUpdate", false, nil)),
			msg("ConfigUpdate", fld("serial", 1, tInt32, "", false, nil), fld("rendezvous_servers", 2, tString, "", true, nil)),
			msg("PunchHoleRequest",
				fld("id", 1, tString, "", false, nil),
				fld("nat_type", 2, tEnum, ".hbb.NatType", false, nil),
				fld("licence_key", 3, tString, "", false, nil),
				fld("conn_type", 4, tEnum, ".hbb.ConnType", false, nil),
				fld("token", 5, tString, "", false, nil),
				fld("version", 6, tString, "", false, nil),
				fld("udp_port", 7, tInt32, "", false, nil),
				fld("force_relay", 8, tBool, "", false, nil),
				fld("upnp_port", 9, tInt32, "", false, nil),
				fld("socket_addr_v6", 10, tBytes, "", false, nil),
				fld("switch_code", 11, tString, "", false, nil),
			),
			phr,
			msg("RequestRelay",
				fld("id", 1, tString, "", false, nil),
				fld("uuid", 2, tString, "", false, nil),
				fld("socket_addr", 3, tBytes, "", false, nil),
				fld("relay_server", 4, tString, "", false, nil),
				fld("secure", 5, tBool, "", false, nil),
				fld("licence_key", 6, tString, "", false, nil),
				fld("conn_type", 7, tEnum, ".hbb.ConnType", false, nil),
				fld("token", 8, tString, "", false, nil),
				fld("switch_code", 11, tString, "", false, nil),
			),
			rr,
			msg("OnlineRequest", fld("id", 1, tString, "", false, nil), fld("peers", 2, tString, "", true, nil)),
			msg("OnlineResponse", fld("states", 1, tBytes, "", false, nil)),
			msg("KeyExchange", fld("keys", 1, tBytes, "", true, nil)),
			msg("IdPk", fld("id", 1, tString, "", false, nil), fld("pk", 2, tBytes, "", false, nil)),
		},
	}
	return protodesc.NewFile(file, nil)
}

func oracleMessage(t testing.TB, name string) *dynamicpb.Message {
	t.Helper()
	d := oracleFile(t).Messages().ByName(protoreflect.Name(name))
	if d == nil {
		t.Fatalf("no oracle message %s", name)
	}
	return dynamicpb.NewMessage(d)
}

// oracleRoundTrip decodes b with protobuf-go, drops unknown fields (this
// package does not keep them) and re-encodes deterministically.
func oracleRoundTrip(t testing.TB, name string, b []byte) ([]byte, error) {
	m := oracleMessage(t, name)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	dropUnknown(m)
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func dropUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
			dropUnknown(v.Message())
		}
		return true
	})
}
