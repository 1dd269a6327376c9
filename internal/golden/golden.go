// Package golden holds the -update flag that every test package of rdctl
// accepts, so that `go test ./... -update` rewrites golden files (and the
// expected sections of testscript scripts) where there are any and is
// harmless everywhere else. Only tests import it.
package golden

import "flag"

// Update is true under `go test -update`.
var Update = flag.Bool("update", false, "rewrite golden files and expected script output")
