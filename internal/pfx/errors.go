// Package pfx reads and builds the PKCS#12 (PFX) payloads Intune imports, derives the certificate facts
// Intune records need, and encrypts PFX passwords for the on-premises connector.
//
// Every error these functions return is an *Error whose Reason the controllers put on conditions and whose
// Message says what to fix. Messages never contain passwords, key bytes or PFX bytes.
package pfx

import (
	"errors"
	"fmt"
)

// Reason is a stable, CamelCase condition reason the controllers put on resources.
type Reason string

const (
	// ReasonInvalidPfx: the data is empty, garbage, truncated, not PKCS#12, or holds no certificate.
	ReasonInvalidPfx Reason = "InvalidPfx"
	// ReasonWrongPassword: the password does not open the PFX.
	ReasonWrongPassword Reason = "WrongPassword"
	// ReasonNoPrivateKey: the PFX or tls.key holds no usable private key.
	ReasonNoPrivateKey Reason = "NoPrivateKey"
	// ReasonKeyMismatch: no certificate matches the private key.
	ReasonKeyMismatch Reason = "KeyMismatch"
	// ReasonCertificateExpired: the certificate's notAfter has passed.
	ReasonCertificateExpired Reason = "CertificateExpired"
	// ReasonCertificateNotYetValid: the certificate's notBefore lies in the future.
	ReasonCertificateNotYetValid Reason = "CertificateNotYetValid"
	// ReasonWeakKey: the certificate's RSA key is shorter than 2048 bits.
	ReasonWeakKey Reason = "WeakKey"
	// ReasonPublicKeyInvalid: the connector public key is unreadable, not RSA, or shorter than 2048 bits.
	ReasonPublicKeyInvalid Reason = "PublicKeyInvalid"
	// ReasonInvalidPassword: the password is not ASCII, or too long for the connector key and padding.
	ReasonInvalidPassword Reason = "InvalidPassword"
	// ReasonUnsupportedPadding: the padding scheme is not one of Graph's names.
	ReasonUnsupportedPadding Reason = "UnsupportedPadding"
	// ReasonInvalidCertificate: a bare certificate (or tls.crt) cannot be parsed.
	ReasonInvalidCertificate Reason = "InvalidCertificate"
	// ReasonDecryptionFailed: an encrypted password does not decrypt with the connector key and padding.
	ReasonDecryptionFailed Reason = "DecryptionFailed"
)

// Error carries a reason and a human message that says what to fix; never secret material.
type Error struct {
	Reason  Reason
	Message string
	// Err is the underlying library error, if any, for debugging. It never holds secret material either:
	// the libraries used here describe structure, not content.
	Err error
}

// Error returns the message only, so that logs and conditions show what to fix.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ConditionReason, ConditionMessage and Terminal make an Error the controllers' reasoned failure: bad input
// always waits for a change of the certificate, its password or the connector key.
func (e *Error) ConditionReason() string  { return string(e.Reason) }
func (e *Error) ConditionMessage() string { return e.Message }
func (e *Error) Terminal() bool           { return true }

// ReasonOf returns the reason of the first *Error in err's chain.
func ReasonOf(err error) (Reason, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason, true
	}
	return "", false
}

// newError builds an *Error. Callers must never pass secret material in args.
func newError(reason Reason, cause error, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...), Err: cause}
}
