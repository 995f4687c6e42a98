package cms

import (
	"bytes"
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Errors the verifiers wrap, so callers can tell failures apart with errors.Is. The
// wrapping error always says more (which digest, which certificate).
var (
	ErrNoSignerCertificate = errors.New("the signer's certificate is not in the CMS")
	ErrContentDigest       = errors.New("message digest mismatch")
	ErrSignature           = errors.New("signature does not verify")
	ErrCDHash              = errors.New("cdhash attribute mismatch")
	ErrNoTimestamp         = errors.New("no time-stamp token")
	ErrTimestampImprint    = errors.New("time-stamp token covers other data")
)

// Verify checks the signer's signature over the signed attributes and that the
// attributes sign detachedContent: the message-digest attribute must equal its
// digest, and Apple's cdhash attributes, when present, must name it first. For a code
// signature detachedContent is the primary CodeDirectory blob. Verify does not judge
// the certificate; see VerifyChain.
func (sd *SignedData) Verify(detachedContent []byte) error {
	si := sd.Signer
	if !si.ContentType.Equal(sd.ContentType) {
		return fmt.Errorf("cms: the content-type attribute (%v) differs from the encapsulated content type (%v)", si.ContentType, sd.ContentType)
	}
	if err := sd.verifySignerInfo(detachedContent); err != nil {
		return fmt.Errorf("cms: %w", err)
	}
	if len(si.CDHashes) > 0 {
		c := si.CDHashes[0]
		h := c.Hash.New()
		h.Write(detachedContent)
		if sum := h.Sum(nil); !bytes.Equal(sum, c.Digest) {
			return fmt.Errorf("cms: %w: the 1.2.840.113635.100.9.2 attribute names CodeDirectory %x, but the content's %v is %x", ErrCDHash, c.Digest, c.Hash, sum)
		}
	}
	if si.CDHashesPlist != nil && !matchesTruncated(si.CDHashesPlist.Hashes[0], detachedContent) {
		// (The parser already checked the plist against 9.2; this covers a plist
		// without 9.2, whose hash type is unknown: Apple truncates every type to 20
		// bytes.)
		return fmt.Errorf("cms: %w: the cdhashes plist does not name this CodeDirectory first", ErrCDHash)
	}
	return nil
}

func matchesTruncated(trunc, content []byte) bool {
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		d := h.New()
		d.Write(content)
		if bytes.Equal(d.Sum(nil)[:cdhashTruncatedLen], trunc) {
			return true
		}
	}
	return false
}

// verifySignerInfo checks the message digest over content and the signature over the
// original signed-attribute bytes.
func (sd *SignedData) verifySignerInfo(content []byte) error {
	si := sd.Signer
	cert := si.SignerCertificate
	if cert == nil {
		return ErrNoSignerCertificate
	}
	if !si.DigestAlgorithm.Available() {
		return fmt.Errorf("digest %v unavailable", si.DigestAlgorithm)
	}
	h := si.DigestAlgorithm.New()
	h.Write(content)
	sum := h.Sum(nil)
	if subtle.ConstantTimeCompare(sum, si.MessageDigest) != 1 {
		return fmt.Errorf("%w: the signed attributes carry %v digest %x, but the content hashes to %x", ErrContentDigest, si.DigestAlgorithm, si.MessageDigest, sum)
	}
	alg, _ := sigAlgForOID(si.SignatureAlgorithm)
	hash := alg.hash
	if hash == 0 {
		hash = si.DigestAlgorithm
	}
	if err := verifyMessage(cert.PublicKey, alg, hash, si.SignedAttrs.Raw, si.Signature); err != nil {
		return fmt.Errorf("%w with the key of %q (%s): %v", ErrSignature, cert.Subject.CommonName, alg.name, err)
	}
	return nil
}

// VerifyChain verifies the signer certificate up to one of roots at time at, using
// the CMS's other certificates as intermediates and requiring the code-signing usage.
// Apple's critical leaf extensions (1.2.840.113635.100.6.*, e.g. 6.1.13 on Developer
// ID Application certificates) are treated as understood. A zero at means now; to
// check an old signature whose certificate has expired, pass the time-stamp's
// GenTime after VerifyTimestamp succeeds (the signing-time attribute is the signer's
// own claim and proves nothing).
func (sd *SignedData) VerifyChain(roots *x509.CertPool, at time.Time) ([][]*x509.Certificate, error) {
	leaf := sd.Signer.SignerCertificate
	if leaf == nil {
		return nil, fmt.Errorf("cms: %w", ErrNoSignerCertificate)
	}
	chains, err := verifyCert(leaf, sd.Certificates, roots, at, x509.ExtKeyUsageCodeSigning)
	if err != nil {
		return nil, fmt.Errorf("cms: signer certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return chains, nil
}

// verifyCert runs x509 verification with Apple's marker extensions tolerated.
func verifyCert(leaf *x509.Certificate, pool []*x509.Certificate, roots *x509.CertPool, at time.Time, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	if roots == nil {
		return nil, errors.New("no trusted roots given")
	}
	inter := x509.NewCertPool()
	for _, c := range pool {
		if !bytes.Equal(c.Raw, leaf.Raw) {
			inter.AddCert(tolerateApple(c))
		}
	}
	return tolerateApple(leaf).Verify(x509.VerifyOptions{
		Intermediates: inter,
		Roots:         roots,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
}

// tolerateApple returns c, or a shallow copy without Apple's marker extensions among
// the unhandled critical ones.
func tolerateApple(c *x509.Certificate) *x509.Certificate {
	var keep []asn1.ObjectIdentifier
	changed := false
	for _, oid := range c.UnhandledCriticalExtensions {
		if applecert.IsAppleExtension(oid) {
			changed = true
			continue
		}
		keep = append(keep, oid)
	}
	if !changed {
		return c
	}
	cp := *c
	cp.UnhandledCriticalExtensions = keep
	return &cp
}

// VerifyTimestamp checks the signer's RFC 3161 time-stamp token: that it covers this
// signature value, that the TSA's signature over it verifies, that its ESS
// signing-certificate attribute (if any) names the TSA's certificate, and that the
// TSA certificate chains to one of roots with the time-stamping usage at the token's
// own GenTime. After it succeeds, GenTime is a trustworthy time for VerifyChain.
func (sd *SignedData) VerifyTimestamp(roots *x509.CertPool) error {
	ts := sd.Signer.TimeStamp
	if ts == nil {
		return fmt.Errorf("cms: %w", ErrNoTimestamp)
	}
	if err := ts.verifyToken(sd.Signer.Signature); err != nil {
		return fmt.Errorf("cms: %w", err)
	}
	tsd := ts.SignedData
	tsa := tsd.Signer.SignerCertificate
	if _, err := verifyCert(tsa, tsd.Certificates, roots, ts.GenTime, x509.ExtKeyUsageTimeStamping); err != nil {
		return fmt.Errorf("cms: time-stamp authority certificate %q: %w", tsa.Subject.CommonName, err)
	}
	return nil
}

// checkESSCertID checks the signing-certificate (RFC 2634, SHA-1) or
// signing-certificate-v2 (RFC 5035) attribute against the signer's certificate: it
// binds the certificate to the signature so a TSA certificate can't be swapped for
// another with the same key.
func checkESSCertID(si *SignerInfo, cert *x509.Certificate) error {
	for _, a := range si.Attributes {
		v2 := a.Type.Equal(oidAttrSigningCertV2)
		if !v2 && !a.Type.Equal(oidAttrSigningCertificate) {
			continue
		}
		if len(a.Values) != 1 {
			return errors.New("malformed signing-certificate attribute")
		}
		s := cryptobyte.String(a.Values[0])
		var sc, certs, first cryptobyte.String
		if !s.ReadASN1(&sc, cbasn1.SEQUENCE) || !sc.ReadASN1(&certs, cbasn1.SEQUENCE) || !certs.ReadASN1(&first, cbasn1.SEQUENCE) {
			return errors.New("malformed signing-certificate attribute")
		}
		h := crypto.SHA1
		if v2 {
			h = crypto.SHA256
			if first.PeekASN1Tag(cbasn1.SEQUENCE) {
				oid, err := readAlgorithmOID(&first)
				if err != nil {
					return fmt.Errorf("signing-certificate-v2: %w", err)
				}
				var ok bool
				if h, ok = hashForOID(oid); !ok {
					return fmt.Errorf("signing-certificate-v2 uses unsupported hash %v", oid)
				}
			}
		}
		var certHash []byte
		if !first.ReadASN1Bytes(&certHash, cbasn1.OCTET_STRING) {
			return errors.New("malformed signing-certificate attribute")
		}
		d := h.New()
		d.Write(cert.Raw)
		if !bytes.Equal(d.Sum(nil), certHash) {
			return fmt.Errorf("the signing-certificate attribute names another certificate than %q", cert.Subject.CommonName)
		}
	}
	return nil
}
