package graphsim

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint is SHA-1 by definition; OAEP-SHA1 is a declared scheme
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// pfxPayload is what the on-premises connector needs from a write to open the PFX, whichever
// resource carried it.
type pfxPayload struct {
	record     string // names the record in failure reasons
	blob       []byte
	blobErr    string // set when the blob could not even be decoded
	password   string // base64 of the RSA ciphertext
	scheme     string // padding scheme name (see paddingSchemes)
	thumbprint string
	start, end time.Time
	provider   string
	keyName    string
}

func userPfxPayload(r UserPFXCertificate) pfxPayload {
	return pfxPayload{
		record: "userPfxCertificate " + r.ID, blob: r.EncryptedPfxBlob, password: r.EncryptedPfxPassword,
		scheme: r.PaddingScheme, thumbprint: r.Thumbprint, start: r.StartDateTime, end: r.ExpirationDateTime,
		provider: r.ProviderName, keyName: r.KeyName,
	}
}

// pfxUserPayload expects a PaddingScheme already checked to be 0..5.
func pfxUserPayload(r PfxUserCertificate) pfxPayload {
	p := pfxPayload{
		record: "pfxUserCertificate " + r.ID, password: r.EncryptedPfxPassword,
		scheme: paddingSchemes[r.PaddingScheme], thumbprint: r.Thumbprint, start: r.CertStartDate, end: r.CertExpirationDate,
		provider: r.ProviderName, keyName: r.EncryptionKeyName,
	}
	blob, err := base64.StdEncoding.DecodeString(r.EncryptedPfxBlob)
	if err != nil {
		p.blobErr = "encryptedPfxBlob is not base64"
	}
	p.blob = blob
	return p
}

// connectorCheck opens the PFX as the connector would (when Config.ConnectorKey is set) and answers
// 400 naming the failed check otherwise.
func (c *call) connectorCheck(p pfxPayload) bool {
	if c.s.cfg.ConnectorKey == nil {
		return true
	}
	reason := c.s.checkPayload(p)
	if reason == "" {
		return true
	}
	c.s.mu.Lock()
	c.s.checkFailures = append(c.s.checkFailures, p.record+": "+reason)
	c.s.mu.Unlock()
	c.intuneError(http.StatusBadRequest, "BadRequest", "Connector check failed: "+reason)
	return false
}

// checkPayload returns "" when the payload opens and matches, else the failed check. Reasons never
// contain secret material.
func (s *Server) checkPayload(p pfxPayload) string {
	if want := s.cfg.ConnectorProviderName; want != "" && p.provider != want {
		return fmt.Sprintf("providerName %q is not the connector key's provider", p.provider)
	}
	if want := s.cfg.ConnectorKeyName; want != "" && p.keyName != want {
		return fmt.Sprintf("keyName %q is not the connector key's name", p.keyName)
	}
	password, err := decryptPassword(s.cfg.ConnectorKey, p.scheme, p.password)
	if err != nil {
		return fmt.Sprintf("encryptedPfxPassword could not be decrypted with paddingScheme %s", p.scheme)
	}
	if p.blobErr != "" {
		return p.blobErr
	}
	key, leaf, _, err := pkcs12.DecodeChain(p.blob, string(password))
	if err != nil {
		return "encryptedPfxBlob could not be opened as a PFX with the decrypted password"
	}
	if !samePublicKey(key, leaf.PublicKey) {
		return "the PFX private key does not belong to its leaf certificate"
	}
	sum := sha1.Sum(leaf.Raw) //nolint:gosec // thumbprint
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, p.thumbprint) {
		return fmt.Sprintf("thumbprint %s does not match the PFX leaf certificate's %s", p.thumbprint, got)
	}
	if !p.start.Equal(leaf.NotBefore) {
		return fmt.Sprintf("start date %s does not match the leaf certificate's notBefore %s",
			p.start.Format(time.RFC3339), leaf.NotBefore.Format(time.RFC3339))
	}
	if !p.end.Equal(leaf.NotAfter) {
		return fmt.Sprintf("expiration date %s does not match the leaf certificate's notAfter %s",
			p.end.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	return ""
}

func samePublicKey(priv any, pub crypto.PublicKey) bool {
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return false
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}

// oaepHashes: OAEP uses the same hash for MGF1 and an empty label. "none" is the PFX import tool's
// default, OAEP-SHA512.
var oaepHashes = map[string]crypto.Hash{
	"none": crypto.SHA512, "oaepSha1": crypto.SHA1, "oaepSha256": crypto.SHA256,
	"oaepSha384": crypto.SHA384, "oaepSha512": crypto.SHA512,
}

func decryptPassword(key *rsa.PrivateKey, scheme, encrypted string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if scheme == "pkcs1" {
		return rsa.DecryptPKCS1v15(nil, key, ct) //nolint:staticcheck // a declared scheme the service knows
	}
	h, ok := oaepHashes[scheme]
	if !ok {
		return nil, errors.New("unknown padding scheme")
	}
	return rsa.DecryptOAEP(h.New(), nil, key, ct, nil)
}
