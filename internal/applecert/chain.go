package applecert

import (
	"bytes"
	"crypto/x509"
)

// maxPathLen bounds IssuerPath; Apple chains are two or three certificates long.
const maxPathLen = 8

// IssuerPath returns the certificates that issued cert, nearest first, found among
// chain and Apple's embedded CA certificates by subject/issuer match and a verified
// signature. It stops at a self-issued certificate or when no issuer is found.
//
// Validity periods and usages are not checked: this answers "who issued it", which
// drives the designated requirement and the chain a signer hands out, not "is it
// trusted now" (that is x509 verification, done by the CMS verifier).
func IssuerPath(cert *x509.Certificate, chain []*x509.Certificate) []*x509.Certificate {
	if cert == nil {
		return nil
	}
	var candidates []*x509.Certificate
	for _, c := range chain {
		if c != nil {
			candidates = append(candidates, c)
		}
	}
	candidates = append(candidates, IntermediateCertificates()...)
	candidates = append(candidates, RootCertificates()...)

	var path []*x509.Certificate
	cur := cert
	for len(path) < maxPathLen && !bytes.Equal(cur.RawSubject, cur.RawIssuer) {
		var next *x509.Certificate
		for _, c := range candidates {
			if !bytes.Equal(c.RawSubject, cur.RawIssuer) || bytes.Equal(c.Raw, cur.Raw) || contains(path, c) {
				continue
			}
			if cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		path = append(path, next)
		cur = next
	}
	return path
}

func contains(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if bytes.Equal(l.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// ChainsToApple reports whether cert was issued, through a path of verified
// signatures, by one of Apple's root CAs (or is one). chain may supply intermediates
// that are not embedded; a look-alike root in chain does not count, since the root
// must be byte-for-byte Apple's.
func ChainsToApple(cert *x509.Certificate, chain []*x509.Certificate) bool {
	_, ok := AppleChain(cert, chain)
	return ok
}

// AppleChain returns the issuers of cert up to and including Apple's root, nearest
// first, when cert chains to Apple. This is the chain a signer sends with its
// certificate (rcodesign does the same), and it completes a key file that holds only
// the leaf.
func AppleChain(cert *x509.Certificate, chain []*x509.Certificate) ([]*x509.Certificate, bool) {
	if IsAppleRoot(cert) {
		return nil, true
	}
	path := IssuerPath(cert, chain)
	if len(path) == 0 || !IsAppleRoot(path[len(path)-1]) {
		return nil, false
	}
	return path, true
}

// IssuerKind classifies who issued a signing certificate. It picks the default
// designated requirement (rcodesign's rules, which match Apple's codesign).
type IssuerKind int

const (
	// NotApple: self-signed or a private CA. The requirement pins the
	// certificate hash.
	NotApple IssuerKind = iota
	// DeveloperID: issued by a CA carrying 1.2.840.113635.100.6.2.6.
	DeveloperID
	// WWDR: issued by a Worldwide Developer Relations CA carrying
	// 1.2.840.113635.100.6.2.1 (Apple Development, Apple Distribution).
	WWDR
	// OtherApple: chains to Apple by another CA ("anchor apple").
	OtherApple
)

func (k IssuerKind) String() string {
	switch k {
	case NotApple:
		return "not Apple"
	case DeveloperID:
		return "Apple Developer ID"
	case WWDR:
		return "Apple Worldwide Developer Relations"
	case OtherApple:
		return "other Apple CA"
	}
	return "unknown"
}

// ClassifyIssuer says which kind of CA issued cert, looking at its direct issuer when
// cert chains to Apple (chain may supply intermediates; Apple's are embedded).
func ClassifyIssuer(cert *x509.Certificate, chain []*x509.Certificate) IssuerKind {
	path, ok := AppleChain(cert, chain)
	if !ok {
		return NotApple
	}
	if len(path) == 0 {
		return OtherApple
	}
	issuer := path[0]
	switch {
	case HasExtension(issuer, OIDCAWWDR):
		return WWDR
	case HasExtension(issuer, OIDCADeveloperID):
		return DeveloperID
	}
	return OtherApple
}

// TeamID returns the Apple team identifier of a signing certificate: the first
// organizational unit of its subject, "" if none. It is only meaningful for a
// certificate that ChainsToApple; a self-signed certificate can claim any team.
func TeamID(cert *x509.Certificate) string {
	if cert == nil || len(cert.Subject.OrganizationalUnit) == 0 {
		return ""
	}
	return cert.Subject.OrganizationalUnit[0]
}

// SelfSigned reports whether cert is self-issued and its signature verifies with its
// own key.
func SelfSigned(cert *x509.Certificate) bool {
	if cert == nil || !bytes.Equal(cert.RawSubject, cert.RawIssuer) {
		return false
	}
	return cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil
}
