// Package templates holds the text templates rdctl renders, embedded in the
// binary so that an installed rdctl needs no files beside it. The packages
// that render a template parse it once at start-up (template.Must) and test
// the result against golden files.
package templates

import "embed"

// FS holds every *.tmpl file of this directory.
//
//go:embed *.tmpl
var FS embed.FS

// InstallConfigPS1 is the name in FS of the PowerShell imaging script that
// internal/clientconf renders: it writes RustDesk2.toml into the RustDesk
// service's profile and the Default user profile with the service stopped.
// Data: see clientconf's ps1Data.
const InstallConfigPS1 = "install-config.ps1.tmpl"
