package hbbstest

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// RendezvousMessage members that package rendezvous does not model (rdctl's
// probes never send or expect them) but the stand-in must recognise
// (hbb_common's rendezvous.proto).
const (
	fieldPunchHoleSent       = 10
	fieldLocalAddr           = 13
	fieldConfigureUpdate     = 14
	fieldRegisterPk          = 15
	fieldRegisterPkResponse  = 16
	rpOK                     = 0 // RegisterPkResponse.Result
	rpUUIDMismatch           = 2
	rpNotSupport             = 6
	registerPkMaxIDLen       = 100 // the peer table's id column is varchar(100)
	registerPkMaxFieldLength = 1 << 10
)

// registerPkResponse is RendezvousMessage{register_pk_response{result}}; the
// zero result (OK) is not on the wire, as proto3 omits defaults.
func registerPkResponse(result int32) []byte {
	var inner []byte
	if result != 0 {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(result))
	}
	return wrapMember(fieldRegisterPkResponse, inner)
}

// configureUpdate is RendezvousMessage{configure_update{serial, servers}},
// the extra datagram hbbs sends to a RegisterPeer with a lower serial.
func configureUpdate(serial int32, servers []string) []byte {
	cu := &rendezvous.ConfigUpdate{Serial: serial, RendezvousServers: servers}
	return wrapMember(fieldConfigureUpdate, cu.Marshal())
}

func wrapMember(num protowire.Number, inner []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, inner)
}

// registerPk is the part of hbb.RegisterPk the stand-in uses.
type registerPk struct {
	ID   string
	UUID []byte
	PK   []byte
}

// errBadRegisterPk is returned (wrapped) for a RegisterPk that does not
// parse.
var errBadRegisterPk = errors.New("hbbstest: malformed RegisterPk")

// parseRegisterPk decodes the body of a RegisterPk (id = 1, uuid = 2,
// pk = 3; other fields skipped). A later occurrence of a field replaces an
// earlier one, as in protobuf. A string that is not UTF-8 is an error, as
// rust-protobuf refuses it.
func parseRegisterPk(b []byte) (registerPk, error) {
	var m registerPk
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return registerPk{}, fmt.Errorf("%w: %v", errBadRegisterPk, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && num >= 1 && num <= 3 {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return registerPk{}, fmt.Errorf("%w: %v", errBadRegisterPk, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				if !utf8.Valid(v) {
					return registerPk{}, fmt.Errorf("%w: id is not UTF-8", errBadRegisterPk)
				}
				m.ID = string(v)
			case 2:
				m.UUID = append([]byte(nil), v...)
			case 3:
				m.PK = append([]byte(nil), v...)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return registerPk{}, fmt.Errorf("%w: %v", errBadRegisterPk, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return m, nil
}
