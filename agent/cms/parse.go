package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxSize bounds the CMS Parse accepts. Apple's CMS with a time-stamp token is about
// 9 KB; a long chain and a large token stay far below this.
const MaxSize = 1 << 20

// SignedData is a parsed CMS SignedData with exactly one signer, as in Apple code
// signatures and RFC 3161 time-stamp tokens.
type SignedData struct {
	// Raw is the DER of the whole ContentInfo (BER input converted to DER).
	Raw []byte
	// Version is the SignedData version.
	Version int
	// ContentType is encapContentInfo's eContentType.
	ContentType asn1.ObjectIdentifier
	// Content is the encapsulated content, nil when detached (code signatures).
	Content []byte
	// Certificates are the certificates carried in the SignedData, in encoded order.
	Certificates []*x509.Certificate
	// Signer is the one SignerInfo.
	Signer *SignerInfo
}

// SignerInfo is a parsed CMS SignerInfo. Its signed attributes (embedded, so
// si.SigningTime, si.MessageDigest, si.CDHashes … work) keep their original bytes in
// si.SignedAttrs.Raw, with the [0] tag swapped for the SET tag (0x31), never
// re-encoded: that is what the signature covers.
type SignerInfo struct {
	SignedAttrs

	// Version is the SignerInfo version (1 for issuerAndSerialNumber, 3 for
	// subjectKeyIdentifier).
	Version int
	// IssuerRaw and SerialNumber identify the signer certificate (version 1), or
	// SubjectKeyID does (version 3).
	IssuerRaw    []byte
	SerialNumber *big.Int
	SubjectKeyID []byte
	// DigestAlgorithm hashes the content for the message-digest attribute.
	DigestAlgorithm crypto.Hash
	// SignatureAlgorithm is the signature algorithm OID as written, and
	// SignatureAlgorithmName its common name ("sha256WithRSAEncryption").
	SignatureAlgorithm     asn1.ObjectIdentifier
	SignatureAlgorithmName string
	// Signature is the signature value.
	Signature []byte
	// SignerCertificate is the certificate SignedData.Certificates holds for the
	// signer identifier, nil if absent.
	SignerCertificate *x509.Certificate
	// UnsignedAttributes lists the unsigned attributes, in encoded order.
	UnsignedAttributes []Attribute
	// TimeStamp is the parsed RFC 3161 token from the unsigned attributes, nil when
	// there is none.
	TimeStamp *TimeStamp
}

// Parse parses the DER ContentInfo of an Apple code signature, or Apple's BER form
// with indefinite lengths: a SignedData over detached id-data content with one
// signer carrying signed attributes. A time-stamp token in the unsigned attributes
// is parsed too. Parse checks structure only; Verify, VerifyChain and
// VerifyTimestamp check the cryptography.
func Parse(data []byte) (*SignedData, error) {
	if len(data) >= 4 && binary.BigEndian.Uint32(data) == 0xfade0b01 {
		return nil, errors.New("cms: this is a code-signature BlobWrapper (magic 0xfade0b01); pass its payload, after the 8-byte header")
	}
	sd, err := parseContentInfo(data)
	if err != nil {
		return nil, err
	}
	if !sd.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("cms: content type %v; code signatures sign id-data", sd.ContentType)
	}
	if sd.Content != nil {
		return nil, errors.New("cms: code signatures are detached but this CMS embeds content")
	}
	return sd, nil
}

// parseContentInfo parses a ContentInfo holding a SignedData (BER accepted).
func parseContentInfo(data []byte) (*SignedData, error) {
	if len(data) == 0 {
		return nil, errors.New("cms: empty input")
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("cms: %d bytes, more than the %d allowed", len(data), MaxSize)
	}
	der, err := normalize(data)
	if err != nil {
		return nil, fmt.Errorf("cms: %w", err)
	}
	in := cryptobyte.String(der)
	var ci, inner cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("cms: not a ContentInfo SEQUENCE")
	}
	if !ci.ReadASN1ObjectIdentifier(&ctype) {
		return nil, errors.New("cms: malformed ContentInfo")
	}
	if !ctype.Equal(oidSignedData) {
		return nil, fmt.Errorf("cms: ContentInfo holds %v, not SignedData", ctype)
	}
	if !ci.ReadASN1(&inner, cbasn1.Tag(0).ContextSpecific().Constructed()) || !ci.Empty() {
		return nil, errors.New("cms: malformed ContentInfo content")
	}
	sd, err := parseSignedData(inner)
	if err != nil {
		return nil, err
	}
	sd.Raw = der
	return sd, nil
}

func parseSignedData(inner cryptobyte.String) (*SignedData, error) {
	var s cryptobyte.String
	if !inner.ReadASN1(&s, cbasn1.SEQUENCE) || !inner.Empty() {
		return nil, errors.New("cms: malformed SignedData")
	}
	sd := &SignedData{}
	var version int64
	var digestAlgs, encap cryptobyte.String
	if !s.ReadASN1Integer(&version) || version < 0 || version > 5 {
		return nil, errors.New("cms: malformed SignedData version")
	}
	sd.Version = int(version)
	if !s.ReadASN1(&digestAlgs, cbasn1.SET) {
		return nil, errors.New("cms: malformed digestAlgorithms")
	}
	if !s.ReadASN1(&encap, cbasn1.SEQUENCE) || !encap.ReadASN1ObjectIdentifier(&sd.ContentType) {
		return nil, errors.New("cms: malformed encapContentInfo")
	}
	if !encap.Empty() {
		var explicit cryptobyte.String
		var content []byte
		if !encap.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
			!explicit.ReadASN1Bytes(&content, cbasn1.OCTET_STRING) || !explicit.Empty() || !encap.Empty() {
			return nil, errors.New("cms: malformed eContent")
		}
		if content == nil {
			content = []byte{}
		}
		sd.Content = content
	}
	if s.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()) {
		var certs cryptobyte.String
		s.ReadASN1(&certs, cbasn1.Tag(0).ContextSpecific().Constructed())
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, errors.New("cms: unsupported or malformed entry in certificates (only X.509 certificates are supported)")
			}
			if len(sd.Certificates) == maxChain {
				return nil, fmt.Errorf("cms: more than %d certificates", maxChain)
			}
			cert, err := x509.ParseCertificate(c)
			if err != nil {
				return nil, fmt.Errorf("cms: certificate %d: %w", len(sd.Certificates), err)
			}
			sd.Certificates = append(sd.Certificates, cert)
		}
	}
	if s.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		// CRLs are skipped: Apple code signatures carry none, and revocation
		// checking is out of scope.
		var crls cryptobyte.String
		s.ReadASN1(&crls, cbasn1.Tag(1).ContextSpecific().Constructed())
	}
	var signerInfos cryptobyte.String
	if !s.ReadASN1(&signerInfos, cbasn1.SET) || !s.Empty() {
		return nil, errors.New("cms: malformed signerInfos")
	}
	var siBytes cryptobyte.String
	if !signerInfos.ReadASN1(&siBytes, cbasn1.SEQUENCE) {
		return nil, errors.New("cms: no SignerInfo; a code signature has exactly one")
	}
	if !signerInfos.Empty() {
		return nil, errors.New("cms: more than one SignerInfo; a code signature has exactly one")
	}
	si, err := parseSignerInfo(siBytes)
	if err != nil {
		return nil, err
	}
	// The signer's digest algorithm must be among those the SignedData declares.
	found := false
	for !digestAlgs.Empty() {
		var alg cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !digestAlgs.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
			return nil, errors.New("cms: malformed digestAlgorithms")
		}
		if h, ok := hashForOID(oid); ok && h == si.DigestAlgorithm {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("cms: the signer's digest algorithm %v is not listed in digestAlgorithms", si.DigestAlgorithm)
	}
	si.SignerCertificate = findCertificate(sd.Certificates, si)
	sd.Signer = si
	return sd, nil
}

func findCertificate(certs []*x509.Certificate, si *SignerInfo) *x509.Certificate {
	for _, c := range certs {
		if si.SubjectKeyID != nil {
			if bytes.Equal(c.SubjectKeyId, si.SubjectKeyID) {
				return c
			}
			continue
		}
		if bytes.Equal(c.RawIssuer, si.IssuerRaw) && c.SerialNumber.Cmp(si.SerialNumber) == 0 {
			return c
		}
	}
	return nil
}

func parseSignerInfo(s cryptobyte.String) (*SignerInfo, error) {
	si := &SignerInfo{}
	var version int64
	if !s.ReadASN1Integer(&version) || (version != 1 && version != 3) {
		return nil, errors.New("cms: malformed or unsupported SignerInfo version")
	}
	si.Version = int(version)
	switch {
	case s.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias cryptobyte.String
		var issuer cryptobyte.String
		si.SerialNumber = new(big.Int)
		if !s.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.SerialNumber) || !ias.Empty() {
			return nil, errors.New("cms: malformed IssuerAndSerialNumber")
		}
		si.IssuerRaw = issuer
	case s.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()):
		var ski cryptobyte.String
		s.ReadASN1(&ski, cbasn1.Tag(0).ContextSpecific())
		if len(ski) == 0 {
			return nil, errors.New("cms: empty subjectKeyIdentifier")
		}
		si.SubjectKeyID = ski
	default:
		return nil, errors.New("cms: malformed signer identifier")
	}
	digestOID, err := readAlgorithmOID(&s)
	if err != nil {
		return nil, fmt.Errorf("cms: SignerInfo digestAlgorithm: %w", err)
	}
	h, ok := hashForOID(digestOID)
	if !ok {
		return nil, fmt.Errorf("cms: unsupported digest algorithm %v", digestOID)
	}
	si.DigestAlgorithm = h

	var attrs cryptobyte.String
	if !s.ReadASN1Element(&attrs, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, errors.New("cms: SignerInfo has no signed attributes (code signatures and time-stamp tokens always carry them)")
	}
	// RFC 5652 §5.4: the signature covers the DER of the attributes with the SET tag.
	raw := append([]byte{0x31}, attrs[1:]...)
	sa, err := parseAttributeSet(raw, false)
	if err != nil {
		return nil, err
	}
	si.SignedAttrs = *sa

	sigOID, err := readAlgorithmOID(&s)
	if err != nil {
		return nil, fmt.Errorf("cms: SignerInfo signatureAlgorithm: %w", err)
	}
	alg, ok := sigAlgForOID(sigOID)
	if !ok {
		return nil, fmt.Errorf("cms: unsupported signature algorithm %v", sigOID)
	}
	si.SignatureAlgorithm = sigOID
	si.SignatureAlgorithmName = alg.name
	if !s.ReadASN1Bytes(&si.Signature, cbasn1.OCTET_STRING) || len(si.Signature) == 0 {
		return nil, errors.New("cms: malformed signature value")
	}
	if s.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		var unsigned cryptobyte.String
		s.ReadASN1(&unsigned, cbasn1.Tag(1).ContextSpecific().Constructed())
		for !unsigned.Empty() {
			var elem cryptobyte.String
			if !unsigned.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
				return nil, errors.New("cms: malformed unsigned attribute")
			}
			attr, err := parseAttribute(elem)
			if err != nil {
				return nil, err
			}
			si.UnsignedAttributes = append(si.UnsignedAttributes, attr)
			if attr.Type.Equal(oidAttrTimeStampToken) {
				if si.TimeStamp != nil || len(attr.Values) != 1 {
					return nil, errors.New("cms: more than one time-stamp token")
				}
				ts, err := parseTimeStampToken(attr.Values[0])
				if err != nil {
					return nil, fmt.Errorf("cms: time-stamp token: %w", err)
				}
				si.TimeStamp = ts
			}
		}
	}
	if !s.Empty() {
		return nil, errors.New("cms: trailing data in SignerInfo")
	}
	return si, nil
}

// readAlgorithmOID reads an AlgorithmIdentifier and returns its OID. Parameters must
// be absent or NULL: no algorithm this package accepts has others.
func readAlgorithmOID(s *cryptobyte.String) (asn1.ObjectIdentifier, error) {
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, errors.New("malformed AlgorithmIdentifier")
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || len(null) != 0 || !alg.Empty() {
			return nil, fmt.Errorf("unexpected parameters for %v", oid)
		}
	}
	return oid, nil
}
