package session

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
)

// Algorithm is how the signer signs: the scheme and hash follow the signing
// certificate.
type Algorithm struct {
	// Signature is the algorithm reported to the initiator (algorithm_oid).
	Signature x509.SignatureAlgorithm
	// Hash is the digest the key signs.
	Hash crypto.Hash
	// Warning, when set, explains a choice that rcodesign initiators will not
	// accept (see ChooseAlgorithm).
	Warning string
}

// ChooseAlgorithm picks the signature algorithm for cert's key.
//
// rcodesign's initiator does not look at the algorithm the signer reports: it
// verifies with the algorithm of the certificate's own signatureAlgorithm (the
// one its issuer used). So the signer signs with that algorithm whenever it is a
// SHA-2 algorithm for the certificate's key type; Apple's RSA certificates give
// sha256WithRSAEncryption. Otherwise (an ECDSA leaf issued by an RSA CA, RSA-PSS,
// SHA-1) it signs with SHA-256 in the key's own scheme, which farsign's initiator
// accepts because it verifies by the reported algorithm, and says so in Warning.
func ChooseAlgorithm(cert *x509.Certificate) (Algorithm, error) {
	var fallback Algorithm
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		switch cert.SignatureAlgorithm {
		case x509.SHA256WithRSA:
			return Algorithm{Signature: x509.SHA256WithRSA, Hash: crypto.SHA256}, nil
		case x509.SHA384WithRSA:
			return Algorithm{Signature: x509.SHA384WithRSA, Hash: crypto.SHA384}, nil
		case x509.SHA512WithRSA:
			return Algorithm{Signature: x509.SHA512WithRSA, Hash: crypto.SHA512}, nil
		}
		fallback = Algorithm{Signature: x509.SHA256WithRSA, Hash: crypto.SHA256}
	case *ecdsa.PublicKey:
		switch cert.SignatureAlgorithm {
		case x509.ECDSAWithSHA256:
			return Algorithm{Signature: x509.ECDSAWithSHA256, Hash: crypto.SHA256}, nil
		case x509.ECDSAWithSHA384:
			return Algorithm{Signature: x509.ECDSAWithSHA384, Hash: crypto.SHA384}, nil
		case x509.ECDSAWithSHA512:
			return Algorithm{Signature: x509.ECDSAWithSHA512, Hash: crypto.SHA512}, nil
		}
		fallback = Algorithm{Signature: x509.ECDSAWithSHA256, Hash: crypto.SHA256}
	default:
		return Algorithm{}, fmt.Errorf("the signing certificate's %T key cannot sign code (use RSA-2048 or ECDSA P-256)", k)
	}
	fallback.Warning = fmt.Sprintf("the certificate was issued with %v, which does not fit its key; signing with %v, which rcodesign initiators will reject (farsign's accept it)",
		cert.SignatureAlgorithm, fallback.Signature)
	return fallback, nil
}
