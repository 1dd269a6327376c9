package main

import (
	"embed"
	"strings"
)

// helpFiles holds every command's long help, one text file per command
// (help/<command>.txt): prose is easier to review, and to turn into man
// pages, outside Go string literals.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpText returns the long help of a command. A missing file is a bug
// caught by every test that builds the app, so it panics.
func helpText(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("rdctl: no help text " + name + ": " + err.Error())
	}
	return strings.TrimSuffix(string(b), "\n")
}
