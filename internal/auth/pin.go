package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// PinSize is how many bytes of the CA certificate's SHA-256 a pin keeps.
const PinSize = 16

// Pin identifies the CA by its certificate hash. A join token carries the
// pin of the CA of the node that issued it, so the joiner can verify that
// node's TLS certificate before sending it the token, with nothing else
// copied around (as kubeadm's discovery-token CA hash does).
func (ca *CA) Pin() []byte {
	sum := sha256.Sum256(ca.cert.Raw)
	return sum[:PinSize]
}

// PinnedTLS is a client TLS config that trusts exactly the CA with pin.
func PinnedTLS(pin []byte) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is verified below, against the pinned CA instead of a
		// pool the joiner does not have yet.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) < 2 {
				return errors.New("join: the server sent no CA certificate")
			}
			var ca *x509.Certificate
			for _, der := range raw[1:] {
				sum := sha256.Sum256(der)
				if bytes.Equal(sum[:PinSize], pin) {
					c, err := x509.ParseCertificate(der)
					if err != nil {
						return err
					}
					ca = c
				}
			}
			if ca == nil {
				return errors.New("join: the server's CA does not match the join token; is --via the node that issued it?")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fmt.Errorf("join: server certificate: %w", err)
			}
			return nil
		},
	}
}
