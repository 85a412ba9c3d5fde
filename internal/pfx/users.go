package pfx

import (
	"crypto/x509"
	"slices"
	"strings"
)

// UserNames are the names a certificate is issued to: its UPN SAN and its email SANs. A record is for the
// certificate's user when its user principal name equals one of them (case-insensitively).
func UserNames(cert *x509.Certificate) []string {
	if cert == nil {
		return nil
	}
	var names []string
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			if upn, ok := upnFromSAN(ext.Value); ok {
				names = append(names, upn)
			}
		}
	}
	for _, email := range cert.EmailAddresses {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, email) }) {
			names = append(names, email)
		}
	}
	return names
}
