//go:build e2e

package e2e

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

func thumbprint(u *testutil.UserCertificate) string {
	sum := sha1.Sum(u.Cert.Raw)
	return hex.EncodeToString(sum[:])
}
