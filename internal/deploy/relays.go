package deploy

import (
	"fmt"
	"strings"
)

// MaxRelays bounds a relay list: hbbs takes any number, but every relay is
// probed by check and doctor, and a longer list is more likely a mistake
// than a deployment.
const MaxRelays = 8

// ParseRelays reads relay lists as hbbs's -r takes them: HOST[:PORT]
// entries separated by commas (21117 implied). Each argument may be one
// entry or a comma list, so a repeated flag and a comma list mean the same.
// Unlike hbbs, which skips empty entries and silently drops entries whose
// name does not resolve when it starts, an empty entry, a repeat or more
// than MaxRelays entries is refused here. Every entry gets its port.
func ParseRelays(field string, lists ...string) ([]HostPort, error) {
	var out []HostPort
	seen := map[HostPort]bool{}
	for _, list := range lists {
		for _, s := range strings.Split(list, ",") {
			if s == "" {
				return nil, &InputError{Field: field, Value: list, Reason: "has an empty entry (a relay list is HOST[:PORT],HOST[:PORT],…)"}
			}
			hp, err := ParseHostPort(field, s)
			if err != nil {
				return nil, err
			}
			hp = hp.WithDefaultPort(RelayPort)
			if seen[hp] {
				return nil, &InputError{Field: field, Value: s, Reason: "is named twice"}
			}
			seen[hp] = true
			out = append(out, hp)
		}
	}
	if len(out) == 0 {
		return nil, &InputError{Field: field, Reason: "must not be empty"}
	}
	if len(out) > MaxRelays {
		return nil, &InputError{Field: field, Value: strings.Join(lists, ","), Reason: fmt.Sprintf("names %d relays, more than %d", len(out), MaxRelays)}
	}
	return out, nil
}

// JoinRelays is the relay list as hbbs's -r takes it: entries joined by
// commas.
func JoinRelays(hps []HostPort) string {
	s := make([]string, len(hps))
	for i, hp := range hps {
		s[i] = hp.String()
	}
	return strings.Join(s, ",")
}

// RelayList is the record's relay list, each with its port; nil when the
// record names none. The record was validated when it was read, so an
// entry that does not parse cannot occur; it is skipped if it does.
func (r *Record) RelayList() []HostPort {
	if r.Relay == "" {
		return nil
	}
	hps, err := ParseRelays("relay", r.Relay)
	if err != nil {
		return nil
	}
	return hps
}
