package main

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
)

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The documented JSON contract of status --root: these keys, no more, no
// fewer (ports only live).
func TestStatusJSONContract(t *testing.T) {
	root, _ := installTree(t)
	code, out, errOut := runInProcess(t, "--root", root, "--json", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{"backend", "backups", "id_host", "key", "origin", "record", "relay", "root", "staged", "units", "working_dir"}
	if got := keysOf(doc); !slices.Equal(got, want) {
		t.Errorf("top-level keys %v, want %v", got, want)
	}
	key := doc["key"].(map[string]any)
	if got, want := keysOf(key), []string{"dir", "fingerprint", "present", "pub", "pub_file_matches", "public_key", "secret", "valid"}; !slices.Equal(got, want) {
		t.Errorf("key keys %v, want %v", got, want)
	}
	secret := key["secret"].(map[string]any)
	if got, want := keysOf(secret), []string{"gid", "group", "mode", "path", "uid", "user"}; !slices.Equal(got, want) {
		t.Errorf("secret keys %v, want %v", got, want)
	}
	if secret["mode"] != "0600" {
		t.Errorf("secret mode %v", secret["mode"])
	}
	units := doc["units"].([]any)
	if len(units) != 2 {
		t.Fatalf("units %v", units)
	}
	u := units[0].(map[string]any)
	if got, want := keysOf(u), []string{"name", "unit_file", "unit_file_state"}; !slices.Equal(got, want) {
		t.Errorf("unit keys under --root %v, want %v", got, want)
	}
}

func TestShortList(t *testing.T) {
	if got := shortList([]string{"a", "b"}, 3); got != "a b" {
		t.Error(got)
	}
	if got := shortList([]string{"a", "b", "c", "d", "e"}, 3); got != "a b c (+2 more)" {
		t.Error(got)
	}
}
