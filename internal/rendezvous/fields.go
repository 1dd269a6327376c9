package rendezvous

import "google.golang.org/protobuf/encoding/protowire"

// Int32Field decodes b as a message named msg and returns its int32 field
// num (0 when absent, the last one when repeated), for members rdctl keeps
// as *Unknown, such as RegisterPkResponse's result.
func Int32Field(msg string, b []byte, num int) (int32, error) {
	var v int32
	err := parseFields(msg, b, func(f field) error {
		if f.num == protowire.Number(num) {
			f.int32(&v)
		}
		return nil
	})
	return v, err
}
