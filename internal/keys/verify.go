package keys

import (
	"fmt"

	"github.com/rdctl/rdctl/internal/safefs"
)

// InspectDir opens dir and reads its key files (see [Inspect]).
func InspectDir(dir string) (State, error) {
	d, err := safefs.OpenDir(dir)
	if err != nil {
		return State{}, err
	}
	defer d.Close()
	return Inspect(d)
}

// VerifyCheck names one check of [Verify].
type VerifyCheck string

// The checks of [Verify], in order. The values are what rdctl key verify
// prints and its JSON carries, so they are part of its output.
const (
	CheckSecretPresent VerifyCheck = "secret key present"
	CheckSecretValid   VerifyCheck = "secret key decodes, halves agree, signs and verifies"
	CheckPubMatches    VerifyCheck = "public key file agrees with the secret"
	CheckSecretPrivate VerifyCheck = "secret key not readable by group or others"
)

// VerifyItem is one check of a key pair and its result.
type VerifyItem struct {
	Name   VerifyCheck `json:"name"`
	OK     bool        `json:"ok"`
	Detail string      `json:"detail,omitempty"`
}

// Verify checks st like hbbs and rustdesk-utils would, plus the secret's
// mode: one item per check, in a fixed order.
func Verify(st State) []VerifyItem {
	detail := func(err error) string {
		if err != nil {
			return err.Error()
		}
		return ""
	}
	mode := st.SecretInfo.Mode.Perm()
	return []VerifyItem{
		{Name: CheckSecretPresent, OK: st.SecretPresent},
		{Name: CheckSecretValid, OK: st.Valid, Detail: detail(st.SecretErr)},
		{Name: CheckPubMatches, OK: st.PubMatches, Detail: detail(st.PubErr)},
		{Name: CheckSecretPrivate, OK: st.SecretPresent && mode&0o077 == 0, Detail: fmt.Sprintf("mode %04o", mode)},
	}
}

// AllOK reports whether every item passed.
func AllOK(items []VerifyItem) bool {
	for _, it := range items {
		if !it.OK {
			return false
		}
	}
	return true
}
