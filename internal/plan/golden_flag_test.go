package plan

// Accept -update like every rdctl test package, so `go test ./... -update` works.
import _ "github.com/rdctl/rdctl/internal/golden"
