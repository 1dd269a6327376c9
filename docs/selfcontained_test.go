package docs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outsideRef matches a pointer to notes that are not in the repository:
// the notes folder, its design and reference documents by name, or a
// bare section sign followed by a number, which means nothing to a
// reader without them. The pattern is built from pieces so this file
// does not match itself.
var outsideRef = regexp.MustCompile(strings.Join([]string{
	regexp.QuoteMeta("../" + "shared"),
	regexp.QuoteMeta("shared" + "/reference"),
	regexp.QuoteMeta("reference" + "/"),
	regexp.QuoteMeta("DESIGN" + ".md"),
	regexp.QuoteMeta("rustdesk-server" + ".md"),
	regexp.QuoteMeta("rustdesk-client-config" + ".md"),
	regexp.QuoteMeta("websocket-and-proxy" + ".md"),
	regexp.QuoteMeta("ecosystem" + ".md"),
	regexp.QuoteMeta("peers-and-user" + "-pains"),
	regexp.QuoteMeta("style" + "-anchors"),
	regexp.QuoteMeta("real-docker" + "-and-systemd"),
	regexp.QuoteMeta("tailscale-and" + "-go-systemd"),
	regexp.QuoteMeta("seed" + "-rustdesk"),
	"\u00a7" + `\s*[0-9]`,
}, "|"))

// TestSelfContained fails for any text file in the repository that
// refers to documents outside it: someone who clones rdctl has only the
// repository, so comments, tests, test data and docs must say the fact
// (and where it can be checked) instead of pointing elsewhere.
func TestSelfContained(t *testing.T) {
	root := ".."
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	var hits []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Text files only, as grep -I decides: no NUL byte near the start.
		head := data
		if len(head) > 8000 {
			head = head[:8000]
		}
		if bytes.IndexByte(head, 0) >= 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(data), "\n") {
			if m := outsideRef.FindString(line); m != "" {
				hits = append(hits, rel+":"+strconv.Itoa(i+1)+": "+m+": "+strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 {
		t.Errorf("%d references to documents outside the repository; say the fact instead:\n%s",
			len(hits), strings.Join(hits, "\n"))
	}
}
