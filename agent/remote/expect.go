package remote

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/handshake"
)

// ExpectedCertificate is a signing certificate the initiator accepts from the
// signer, identified by the SHA-256 of its DER encoding.
//
// Pinning closes the gap sharedsecret0 leaves open: the shared secret decides
// who may join, but not with which certificate, so anyone who knows it could
// otherwise have their certificate embedded in the release. In publickey0 it
// adds a check on the certificate itself (a renewed or re-issued certificate
// for the same key) on top of the key check the scheme already makes.
type ExpectedCertificate struct {
	// SHA256 is the SHA-256 of the certificate's DER encoding: the
	// "SHA-256 fingerprint" that `signer analyze-certificate` prints.
	SHA256 [sha256.Size]byte
	// Certificate is the certificate, when it was read from a file; nil when
	// only the fingerprint was given.
	Certificate *x509.Certificate
}

// fingerprintPrefix introduces a fingerprint in an --remote-expect-certificate
// value. Any other value is a file name.
const fingerprintPrefix = "sha256:"

// Fingerprint returns "sha256:" and the lowercase hex fingerprint: the form
// ParseExpectedCertificate accepts and error messages print.
func (e ExpectedCertificate) Fingerprint() string { return fingerprint(e.SHA256[:]) }

func fingerprint(sum []byte) string { return fingerprintPrefix + hex.EncodeToString(sum) }

// ParseExpectedCertificate decodes an --remote-expect-certificate value:
// "sha256:" followed by the certificate's SHA-256 fingerprint (64 hex digits,
// any case, optionally in colon-separated pairs as openssl prints them), or
// else the path of a file holding the certificate, PEM or DER. A PEM file
// must hold exactly one CERTIFICATE block: pinning a chain file would accept
// its CA certificates too, and pinning only its first would be a guess.
func ParseExpectedCertificate(value string) (ExpectedCertificate, error) {
	if len(value) >= len(fingerprintPrefix) && strings.EqualFold(value[:len(fingerprintPrefix)], fingerprintPrefix) {
		return parseFingerprint(value[len(fingerprintPrefix):])
	}
	if value == "" {
		return ExpectedCertificate{}, errors.New("empty value: give a certificate file or sha256:FINGERPRINT")
	}
	e, err := ReadExpectedCertificate(value)
	if err != nil && errors.Is(err, os.ErrNotExist) {
		// A fingerprint pasted without its prefix is the likely mistake.
		if _, ferr := parseFingerprint(value); ferr == nil {
			return ExpectedCertificate{}, fmt.Errorf("no file %s; for a fingerprint write sha256:%s", value, value)
		}
	}
	return e, err
}

// parseFingerprint decodes the hex after "sha256:".
func parseFingerprint(s string) (ExpectedCertificate, error) {
	var e ExpectedCertificate
	digits := s
	colons := strings.Contains(s, ":")
	if colons {
		// Colon form: pairs, as openssl x509 -fingerprint prints them.
		pairs := strings.Split(s, ":")
		for _, p := range pairs {
			if len(p) != 2 {
				return e, fmt.Errorf("sha256:%s: in the colon form every byte is two hex digits (e.g. AB:CD:...)", s)
			}
		}
		digits = strings.Join(pairs, "")
	}
	for i, c := range s {
		if c != ':' && !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return e, fmt.Errorf("sha256:%s: %q at position %d is not a hex digit", s, c, i+1)
		}
	}
	switch {
	case colons && len(digits) != 2*sha256.Size:
		return e, fmt.Errorf("sha256:%s: %d bytes, want %d (the SHA-256 of the DER certificate, as signer analyze-certificate prints it)", s, len(digits)/2, sha256.Size)
	case len(digits) != 2*sha256.Size:
		return e, fmt.Errorf("sha256:%s: %d hex digits, want %d (the SHA-256 of the DER certificate, as signer analyze-certificate prints it)", s, len(digits), 2*sha256.Size)
	}
	if _, err := hex.Decode(e.SHA256[:], []byte(digits)); err != nil {
		return e, fmt.Errorf("sha256:%s: %v", s, err)
	}
	return e, nil
}

// ReadExpectedCertificate reads the certificate to pin from a PEM or DER file
// (indented PEM, as pasted from a terminal, is accepted).
func ReadExpectedCertificate(path string) (ExpectedCertificate, error) {
	data, err := readSmallFile(path, maxPublicKeyFile, "certificate")
	if err != nil {
		return ExpectedCertificate{}, err
	}
	cert, err := parseCertificateFile(data)
	if err != nil {
		return ExpectedCertificate{}, fmt.Errorf("%s: %w", path, err)
	}
	return ExpectedCertificate{SHA256: sha256.Sum256(cert.Raw), Certificate: cert}, nil
}

// parseCertificateFile is ReadExpectedCertificate's decoder.
func parseCertificateFile(data []byte) (*x509.Certificate, error) {
	text := unindent(data)
	if !strings.Contains(string(text), "-----BEGIN") {
		cert, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("not a PEM file, and not a DER certificate (%v)", err)
		}
		return cert, nil
	}
	var certs []*x509.Certificate
	var other []string
	rest := text
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			other = append(other, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CERTIFICATE block %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) == 1:
		return certs[0], nil
	case len(certs) > 1:
		return nil, fmt.Errorf("%d certificates; give a file with only the signer's certificate (repeat the flag to accept several)", len(certs))
	case len(other) > 0:
		return nil, fmt.Errorf("no CERTIFICATE block (found %s); pin the signer's certificate, not its key", strings.Join(other, ", "))
	}
	return nil, errors.New("no CERTIFICATE block")
}

// CheckExpectedKey reports an expected certificate, read from a file, whose
// public key is not spki: in publickey0 only a certificate for the key the
// join string is encrypted to is accepted, so such a pin could never match and
// the session would fail only after a person had joined it. Expected
// certificates given as fingerprints cannot be checked until the signer
// presents its certificate.
func CheckExpectedKey(expected []ExpectedCertificate, spki []byte) error {
	if len(expected) == 0 {
		return nil
	}
	want, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return fmt.Errorf("the signer's public key does not parse: %v", err)
	}
	for _, e := range expected {
		if e.Certificate == nil || sameKey(want, e.Certificate.PublicKey) {
			continue
		}
		return fmt.Errorf("the expected certificate %s (%s) is for a different key (SPKI sha256 %s) than the signer's public key (SPKI sha256 %s), so it could never be accepted",
			e.Fingerprint(), subjectName(e.Certificate), handshake.SPKIFingerprint(e.Certificate.RawSubjectPublicKeyInfo), spkiFingerprint(want, spki))
	}
	return nil
}

// sameKey reports whether two public keys are equal.
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// spkiFingerprint is the SPKI fingerprint of pub in canonical DER, or of raw
// when pub does not re-encode.
func spkiFingerprint(pub crypto.PublicKey, raw []byte) string {
	if der, err := x509.MarshalPKIXPublicKey(pub); err == nil {
		raw = der
	}
	return handshake.SPKIFingerprint(raw)
}

// subjectName is a certificate's subject for one-line messages: its common
// name, else the whole subject, made safe to print.
func subjectName(c *x509.Certificate) string {
	name := c.Subject.CommonName
	if name == "" {
		name = c.Subject.String()
	}
	if name == "" {
		return "no subject"
	}
	return fmt.Sprintf("%q", relayclient.Printable(name, 200))
}

// checkExpected accepts cert when no certificate is expected or when its DER
// SHA-256 is one of the expected ones. Fingerprints are public, but the
// comparison is constant-time anyway and visits every expected value, so its
// timing says nothing about which one matched or how close a guess came.
func checkExpected(cert *x509.Certificate, expected []ExpectedCertificate) error {
	if len(expected) == 0 {
		return nil
	}
	sum := sha256.Sum256(cert.Raw)
	match := 0
	for _, e := range expected {
		match |= subtle.ConstantTimeCompare(sum[:], e.SHA256[:])
	}
	if match == 1 {
		return nil
	}
	want := make([]string, len(expected))
	for i, e := range expected {
		want[i] = e.Fingerprint()
	}
	return fmt.Errorf("the signer's certificate is not the expected one: it presented %s (%s), expected %s",
		subjectName(cert), fingerprint(sum[:]), strings.Join(want, " or "))
}
