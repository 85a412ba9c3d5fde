// Package version holds the operator's version, set at build time with
// -ldflags "-X github.com/certops/intune-cert-operator/internal/version.Version=...".
package version

// Version of the operator; "dev" for local builds.
var Version = "dev"
