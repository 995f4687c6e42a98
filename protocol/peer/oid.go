package peer

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Signature algorithm OIDs a signer reports in Signature.AlgorithmOID.
var (
	OIDSHA1WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	OIDSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	OIDSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	OIDECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	OIDEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

var algorithms = []struct {
	alg x509.SignatureAlgorithm
	oid asn1.ObjectIdentifier
}{
	{x509.SHA1WithRSA, OIDSHA1WithRSA},
	{x509.SHA256WithRSA, OIDSHA256WithRSA},
	{x509.SHA384WithRSA, OIDSHA384WithRSA},
	{x509.SHA512WithRSA, OIDSHA512WithRSA},
	{x509.ECDSAWithSHA256, OIDECDSAWithSHA256},
	{x509.ECDSAWithSHA384, OIDECDSAWithSHA384},
	{x509.ECDSAWithSHA512, OIDECDSAWithSHA512},
	{x509.PureEd25519, OIDEd25519},
}

// AlgorithmOID returns the OID a signer reports for alg. rcodesign's initiator
// verifies with the algorithm of the certificate's own signatureAlgorithm, so a
// signer should sign with that algorithm and report its OID.
func AlgorithmOID(alg x509.SignatureAlgorithm) (asn1.ObjectIdentifier, error) {
	for _, a := range algorithms {
		if a.alg == alg {
			return a.oid, nil
		}
	}
	return nil, fmt.Errorf("peer: no remote-signing OID for signature algorithm %v", alg)
}

// SignatureAlgorithm maps an OID back to x509's constant, or
// x509.UnknownSignatureAlgorithm.
func SignatureAlgorithm(oid asn1.ObjectIdentifier) x509.SignatureAlgorithm {
	for _, a := range algorithms {
		if a.oid.Equal(oid) {
			return a.alg
		}
	}
	return x509.UnknownSignatureAlgorithm
}

// MarshalOID returns the complete DER TLV (tag 0x06, length, content) of oid, the
// form algorithm_oid carries.
func MarshalOID(oid asn1.ObjectIdentifier) ([]byte, error) {
	if len(oid) < 2 {
		return nil, errors.New("peer: algorithm OID missing")
	}
	b, err := asn1.Marshal(oid)
	if err != nil {
		return nil, fmt.Errorf("peer: algorithm OID %v: %w", oid, err)
	}
	return b, nil
}

// ParseOID decodes a DER OID TLV, rejecting any trailing bytes.
func ParseOID(der []byte) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(der, &oid)
	if err != nil {
		return nil, fmt.Errorf("not a DER OID: %v", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes after the DER OID")
	}
	return oid, nil
}
