package applecert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"
)

// KeyAlgorithm is the key type of a generated certificate.
type KeyAlgorithm string

const (
	// ECDSAP256 is ECDSA on NIST P-256, signing with SHA-256.
	ECDSAP256 KeyAlgorithm = "p256"
	// RSA2048 is a 2048-bit RSA key, signing with PKCS #1 v1.5 SHA-256 (what
	// Apple issues).
	RSA2048 KeyAlgorithm = "rsa2048"
)

// ParseKeyAlgorithm parses "p256" / "ecdsa" or "rsa2048" / "rsa".
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	switch strings.ToLower(s) {
	case "p256", "ecdsa", "ecdsa-p256":
		return ECDSAP256, nil
	case "rsa2048", "rsa", "rsa-2048":
		return RSA2048, nil
	}
	return "", fmt.Errorf("unknown key algorithm %q (want p256 or rsa2048)", s)
}

// Options describe a self-signed code-signing certificate.
type Options struct {
	// Profile selects the extended key usages and Apple leaf extensions. Required.
	Profile Profile
	// Algorithm is the key type; the zero value means ECDSAP256.
	Algorithm KeyAlgorithm
	// TeamID goes into the subject's UID and OU, as in Apple-issued certificates
	// (the OU is what a Developer ID designated requirement checks). Required.
	TeamID string
	// PersonName goes into the subject's O and the CN. Required.
	PersonName string
	// Country is the subject's C, two letters; default "US".
	Country string
	// EmailAddress, if set, is added to the subject.
	EmailAddress string
	// NotBefore defaults to the current time; Validity to 365 days.
	NotBefore time.Time
	Validity  time.Duration
	// Rand defaults to crypto/rand.
	Rand io.Reader
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
var oidExtendedKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// GenerateSelfSigned creates a key and a self-signed certificate that looks like an
// Apple-issued one of the chosen profile: subject UID=team, CN="<profile>: <name>
// (<team>)", OU=team, O=name, C=country; critical basic constraints (not a CA), key
// usage digitalSignature, the profile's extended key usage and Apple leaf
// extensions, all critical as Apple marks them.
//
// Such a certificate signs binaries that verify structurally but that macOS will not
// trust; it is for tests, CI rehearsals and private distribution.
func GenerateSelfSigned(opts Options) (crypto.Signer, *x509.Certificate, error) {
	info, ok := profiles[opts.Profile]
	if !ok {
		return nil, nil, errors.New("applecert: a certificate profile is required")
	}
	for name, v := range map[string]string{"team ID": opts.TeamID, "person name": opts.PersonName} {
		if strings.TrimSpace(v) == "" {
			return nil, nil, fmt.Errorf("applecert: the %s is required", name)
		}
		if !utf8.ValidString(v) || len(v) > 64 {
			return nil, nil, fmt.Errorf("applecert: the %s must be valid UTF-8 of at most 64 bytes", name)
		}
	}
	country := opts.Country
	if country == "" {
		country = "US"
	}
	if len(country) != 2 || strings.ToUpper(country) != country {
		return nil, nil, fmt.Errorf("applecert: country %q is not a two-letter code", country)
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	notBefore := opts.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now()
	}
	validity := opts.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	if validity < 0 {
		return nil, nil, errors.New("applecert: negative validity")
	}

	var key crypto.Signer
	var err error
	switch opts.Algorithm {
	case ECDSAP256, "":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rnd)
	case RSA2048:
		key, err = rsa.GenerateKey(rnd, 2048)
	default:
		return nil, nil, fmt.Errorf("applecert: unknown key algorithm %q", opts.Algorithm)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("applecert: generating key: %w", err)
	}

	utf8Value := func(s string) asn1.RawValue {
		return asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(s)}
	}
	rdn := func(oid asn1.ObjectIdentifier, v any) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
	}
	cn := fmt.Sprintf("%s: %s (%s)", info.cnPrefix, opts.PersonName, opts.TeamID)
	subject := pkix.RDNSequence{
		rdn(OIDUserID, utf8Value(opts.TeamID)),
		rdn(asn1.ObjectIdentifier{2, 5, 4, 3}, utf8Value(cn)),
		rdn(asn1.ObjectIdentifier{2, 5, 4, 11}, utf8Value(opts.TeamID)),
		rdn(asn1.ObjectIdentifier{2, 5, 4, 10}, utf8Value(opts.PersonName)),
		rdn(asn1.ObjectIdentifier{2, 5, 4, 6}, asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(country)}),
	}
	if opts.EmailAddress != "" {
		subject = append(subject, rdn(oidEmailAddress, asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(opts.EmailAddress)}))
	}
	rawSubject, err := asn1.Marshal(subject)
	if err != nil {
		return nil, nil, fmt.Errorf("applecert: encoding subject: %w", err)
	}

	ekuDER, err := asn1.Marshal(info.ekus)
	if err != nil {
		return nil, nil, err
	}
	exts := []pkix.Extension{{Id: oidExtendedKeyUsage, Critical: true, Value: ekuDER}}
	for _, oid := range info.leafExts {
		exts = append(exts, pkix.Extension{Id: oid, Critical: true, Value: []byte{0x05, 0x00}})
	}

	serialBytes := make([]byte, 16)
	if _, err := io.ReadFull(rnd, serialBytes); err != nil {
		return nil, nil, err
	}
	serialBytes[0] &= 0x7f
	serialBytes[0] |= 0x01 // never zero, always 16 bytes

	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serialBytes),
		SubjectKeyId:          ski,
		RawSubject:            rawSubject,
		NotBefore:             notBefore.UTC().Truncate(time.Second),
		NotAfter:              notBefore.Add(validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       exts,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("applecert: creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// subjectKeyID derives a subject key identifier as RFC 7093 §2 method 1 does: the
// leftmost 160 bits of the SHA-256 of the subjectPublicKey bits. Apple's leaves carry
// one, and CMS signers may be identified by it.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(info.PublicKey.Bytes)
	return sum[:20], nil
}
