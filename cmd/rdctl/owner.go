package main

import (
	"os"

	"github.com/rdctl/rdctl/internal/keys"
)

// currentOwner is the running user, who owns what rdctl writes in an image
// tree or a directory named with --dir.
func currentOwner() keys.Owner { return keys.Owner{UID: os.Getuid(), GID: os.Getgid()} }
