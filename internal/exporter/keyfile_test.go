package exporter

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A key file is read as rdctl reads any file another user may control: a
// named pipe is refused at once (never waited on) and a symlink is not
// followed, whatever it points at.
func TestLoadKeyFileRefusesPipesAndSymlinks(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pub")
	if err := os.WriteFile(good, []byte("iGDlYnhwm0Rdc0Gp+xYKDzrL8VXyPmlf5C5RFZeyYKE="), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(good); err != nil {
		t.Fatalf("a plain .pub file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo.pub")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pub")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link} {
		done := make(chan error, 1)
		go func() { _, err := LoadKeyFile(p); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: read", filepath.Base(p))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: still waiting after 5 s", filepath.Base(p))
		}
	}
}
