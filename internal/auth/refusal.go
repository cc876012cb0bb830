package auth

import (
	"errors"
	"fmt"

	yrdv1 "github.com/yrd-exchange/yrdnode/proto/yrd/v1"
)

// Refusal says why a credential was refused. The caller is told only
// ErrUnauthenticated, in words that do not tell an unknown key from a
// revoked one; the reason is for the node's own audit trail.
type Refusal int

// Reasons a caller is refused.
const (
	// RefusedNoCredentials: neither an API key nor a client certificate.
	RefusedNoCredentials Refusal = iota + 1
	// RefusedBadKey: malformed authorization metadata, or an API key that
	// is malformed, unknown or has the wrong secret.
	RefusedBadKey
	// RefusedRevokedKey: a genuine API key (right secret) that is revoked.
	RefusedRevokedKey
	// RefusedBadCertificate: a certificate the CA signed that this node
	// has no record of (or, in the TLS handshake, one that does not verify).
	RefusedBadCertificate
	// RefusedRevokedCertificate: a genuine client certificate, revoked.
	RefusedRevokedCertificate
)

// AuthError is the error of a refused credential. It wraps
// ErrUnauthenticated.
type AuthError struct {
	Reason Refusal
	// Principal is the owner of a genuine but revoked credential; nil for
	// every other reason, where nobody is proven.
	Principal *yrdv1.Principal
	msg       string
}

func (e *AuthError) Error() string { return e.msg }
func (e *AuthError) Unwrap() error { return ErrUnauthenticated }

func refuse(why Refusal, p *yrdv1.Principal, format string, args ...any) *AuthError {
	return &AuthError{Reason: why, Principal: p, msg: ErrUnauthenticated.Error() + ": " + fmt.Sprintf(format, args...)}
}

// RefusalOf returns why err refused a credential, and the revoked
// credential's owner if any; ok is false for an error that is no AuthError.
func RefusalOf(err error) (why Refusal, p *yrdv1.Principal, ok bool) {
	var ae *AuthError
	if !errors.As(err, &ae) {
		return 0, nil, false
	}
	return ae.Reason, ae.Principal, true
}
