// Package keysource defines what the signer needs from wherever its key lives: a p12
// or PEM file, or a PIV smart card such as a YubiKey.
//
// The signer never cares which: it signs through crypto.Signer, joins publickey0
// sessions through crypto.Decrypter when the key can decrypt, and hands the
// certificate chain to the initiator. Keeping the contract this small is what makes
// a file key and a hardware key interchangeable, and lets tests use either.
package keysource

import (
	"crypto"
	"crypto/x509"
	"errors"
)

// Key is a signing identity held by the signer.
//
// Sign follows crypto.Signer: it receives a digest. The signer hashes each message
// with the hash implied by the certificate's own signatureAlgorithm (what rcodesign
// initiators verify with), so Sign sees SHA-256 digests for Apple certificates.
//
// A Key whose private key can decrypt RSA-OAEP (RSA file keys, RSA PIV slots) also
// implements crypto.Decrypter; that is what joining a publickey0 session needs.
type Key interface {
	crypto.Signer
	// Certificate is the signing (leaf) certificate.
	Certificate() *x509.Certificate
	// Chain is the issuers of Certificate, leaf's issuer first; it may be empty.
	Chain() []*x509.Certificate
	// Close releases the key (a card handle, for example). It is safe to call twice.
	Close() error
}

// ErrCannotDecrypt reports a key that cannot take part in a publickey0 session
// because it cannot decrypt (an ECDSA key, for example): use sharedsecret0 instead.
var ErrCannotDecrypt = errors.New("this key cannot decrypt, so it cannot join a publickey0 session: use a shared secret (--remote-shared-secret-env) or an RSA key")

// Decrypter returns k as a crypto.Decrypter, or ErrCannotDecrypt.
func Decrypter(k Key) (crypto.Decrypter, error) {
	d, ok := k.(crypto.Decrypter)
	if !ok {
		return nil, ErrCannotDecrypt
	}
	return d, nil
}
