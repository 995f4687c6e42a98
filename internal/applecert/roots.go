// Package applecert holds farsign's knowledge of Apple's code-signing PKI, shared by
// the agent (designated requirements, verification) and the signer (describing and
// generating certificates): Apple's public CA certificates, the extensions that mark
// what a certificate may sign and which CA issued it, team IDs, and profile guesses.
//
// Three CA certificates are embedded: Apple Root CA, the Developer ID Certification
// Authority and the Apple Timestamp Certification Authority, the chain of every
// Developer ID signature with an Apple time-stamp. They were extracted from a real
// Apple-verified code signature (see certs/README.md, which lists their SHA-256
// fingerprints; a test checks them against that signature byte for byte).
//
// Certificates issued under Apple's other CAs (the Worldwide Developer Relations CAs
// behind "Apple Development" and "Apple Distribution", Developer ID G2, and anything
// rooted in Apple Root CA - G2 or G3) are still classified by the Apple marker
// extensions they carry (see oids.go), but they only chain to Apple once the
// intermediate is known: either the signer's key file carries it, or the caller adds
// Apple's published CA files at run time with LoadExtraCertificates. A root added
// there must be one of Apple's three published roots (checked by SHA-256), so no
// file can make a look-alike root count as Apple.
package applecert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"sync"
)

//go:embed certs/*.cer
var certFS embed.FS

var (
	loadOnce       sync.Once
	rootCerts      []*x509.Certificate
	intermediateCs []*x509.Certificate

	// extraMu guards the certificates added with AddExtraCertificates.
	extraMu     sync.RWMutex
	extraRoots  []*x509.Certificate
	extraInters []*x509.Certificate
)

func load() {
	entries, err := certFS.ReadDir("certs")
	if err != nil {
		panic(fmt.Sprintf("applecert: embedded certificates: %v", err))
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		der, err := certFS.ReadFile(path.Join("certs", name))
		if err != nil {
			panic(fmt.Sprintf("applecert: %s: %v", name, err))
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(fmt.Sprintf("applecert: %s: %v", name, err))
		}
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			rootCerts = append(rootCerts, c)
		} else {
			intermediateCs = append(intermediateCs, c)
		}
	}
}

// RootCertificates returns Apple's root CAs: the embedded Apple Root CA (the one
// Developer ID and the Apple Timestamp CA chain to), followed by any root added with
// LoadExtraCertificates (Apple Root CA - G2 or G3).
func RootCertificates() []*x509.Certificate {
	loadOnce.Do(load)
	extraMu.RLock()
	defer extraMu.RUnlock()
	out := append([]*x509.Certificate(nil), rootCerts...)
	return append(out, extraRoots...)
}

// IntermediateCertificates returns Apple's code-signing intermediate CAs: the
// embedded Developer ID CA and Apple Timestamp CA, followed by any intermediate added
// with LoadExtraCertificates (for example a Worldwide Developer Relations CA).
func IntermediateCertificates() []*x509.Certificate {
	loadOnce.Do(load)
	extraMu.RLock()
	defer extraMu.RUnlock()
	out := append([]*x509.Certificate(nil), intermediateCs...)
	return append(out, extraInters...)
}

// AppleRoots returns a new pool holding Apple's root CAs, for VerifyChain and
// VerifyTimestamp. A new pool is returned on each call because pools are mutable.
func AppleRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range RootCertificates() {
		pool.AddCert(c)
	}
	return pool
}

// AppleIntermediates returns a new pool holding Apple's intermediate CAs, so a chain
// can be completed when a key file carries only the leaf.
func AppleIntermediates() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range IntermediateCertificates() {
		pool.AddCert(c)
	}
	return pool
}

// IsAppleRoot reports whether c is byte-for-byte one of Apple's root CAs (embedded,
// or added with LoadExtraCertificates after its fingerprint was checked). A
// certificate with Apple's name but another key or encoding is not.
func IsAppleRoot(c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	for _, r := range RootCertificates() {
		if bytes.Equal(r.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// appleRootFingerprints are the SHA-256 fingerprints Apple publishes at
// https://www.apple.com/certificateauthority/ for its three root CAs. They are the
// only roots AddExtraCertificates accepts: trusting a root is what makes a
// certificate "Apple's", so it must not be whatever file a user happened to pass.
var appleRootFingerprints = map[string]string{
	"b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024": "Apple Root CA",
	"c2b9b042dd57830e7d117dac55ac8ae19407d38e41d88f3215bc3a890444a050": "Apple Root CA - G2",
	"63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179": "Apple Root CA - G3",
}

// isPublishedAppleRoot reports whether c is one of Apple's published roots. The
// caller holds extraMu (tests add to appleRootFingerprints under it).
func isPublishedAppleRoot(c *x509.Certificate) bool {
	sum := sha256.Sum256(c.Raw)
	_, ok := appleRootFingerprints[hex.EncodeToString(sum[:])]
	return ok
}

// maxExtra bounds how many certificates LoadExtraCertificates reads: Apple has
// published about a dozen code-signing CAs in total.
const maxExtra = 64

// maxCertFile bounds the size of one certificate file.
const maxCertFile = 1 << 20

// LoadExtraCertificates reads Apple CA certificates from files and adds them, for
// the rest of the process, to the embedded ones that RootCertificates,
// IntermediateCertificates, AppleRoots, IssuerPath, AppleChain, ChainsToApple and
// ClassifyIssuer use. Each file may be DER (the .cer files Apple publishes at
// https://www.apple.com/certificateauthority/) or PEM with one or more
// CERTIFICATE blocks.
//
// Use it for certificates farsign does not embed: an "Apple Development" or "Apple
// Distribution" leaf needs its Worldwide Developer Relations CA (Apple's download
// AppleWWDRCAG3.cer, for example), a Developer ID G2 leaf needs Apple's
// DeveloperIDG2CA.cer, and anything under Apple Root CA - G2 or G3 needs that root
// too. Call it once at start-up, before signing or verifying; it is safe for
// concurrent use.
//
// See AddExtraCertificates for what is accepted. Nothing is added unless every
// certificate in every file is.
func LoadExtraCertificates(paths ...string) error {
	var certs []*x509.Certificate
	for _, p := range paths {
		cs, err := readCertificateFile(p)
		if err != nil {
			return err
		}
		certs = append(certs, cs...)
		if len(certs) > maxExtra {
			return fmt.Errorf("more than %d extra Apple certificates", maxExtra)
		}
	}
	return AddExtraCertificates(certs...)
}

// AddExtraCertificates is LoadExtraCertificates for parsed certificates. Every
// certificate must be a CA and either
//
//   - a self-signed root whose SHA-256 is that of Apple Root CA, Apple Root CA - G2
//     or Apple Root CA - G3 as Apple publishes them, or
//   - an intermediate whose signature verifies under a root or intermediate already
//     trusted (embedded, added earlier, or elsewhere in the same call).
//
// So a look-alike root, or an intermediate it issued, is refused with an error that
// says why. Certificates already known are ignored. On error nothing is added.
func AddExtraCertificates(certs ...*x509.Certificate) error {
	if len(certs) > maxExtra {
		return fmt.Errorf("more than %d extra Apple certificates", maxExtra)
	}
	loadOnce.Do(load)
	extraMu.Lock()
	defer extraMu.Unlock()

	trusted := make([]*x509.Certificate, 0, len(rootCerts)+len(intermediateCs)+len(extraRoots)+len(extraInters)+len(certs))
	trusted = append(append(append(append(trusted, rootCerts...), extraRoots...), intermediateCs...), extraInters...)
	var newRoots, pending []*x509.Certificate
	for _, c := range certs {
		if c == nil {
			return errors.New("nil certificate")
		}
		if contains(trusted, c) || contains(pending, c) {
			continue
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return fmt.Errorf("%s: not a CA certificate; only Apple's root and intermediate CAs can be added", describe(c))
		}
		if !bytes.Equal(c.RawSubject, c.RawIssuer) {
			pending = append(pending, c)
			continue
		}
		if !isPublishedAppleRoot(c) {
			sum := sha256.Sum256(c.Raw)
			return fmt.Errorf("%s (SHA-256 %x) is not one of Apple's published root CAs (Apple Root CA, G2, G3); refusing to trust it as Apple's", describe(c), sum)
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			return fmt.Errorf("%s: self-signature: %v", describe(c), err)
		}
		newRoots = append(newRoots, c)
		trusted = append(trusted, c)
	}
	// Intermediates may come in any order: add those whose issuer is trusted until
	// no more can be.
	var newInters []*x509.Certificate
	for len(pending) > 0 {
		progress := false
		for i := 0; i < len(pending); i++ {
			c := pending[i]
			if issuedByAny(c, trusted) {
				newInters = append(newInters, c)
				trusted = append(trusted, c)
				pending = append(pending[:i], pending[i+1:]...)
				i--
				progress = true
			}
		}
		if !progress {
			return fmt.Errorf("%s, issued by %q, does not chain to an Apple root CA (add the issuing CA, or the root, first)", describe(pending[0]), pending[0].Issuer.CommonName)
		}
	}
	extraRoots = append(extraRoots, newRoots...)
	extraInters = append(extraInters, newInters...)
	return nil
}

// issuedByAny reports whether one of issuers has c's issuer name and a key that
// verifies c's signature.
func issuedByAny(c *x509.Certificate, issuers []*x509.Certificate) bool {
	for _, p := range issuers {
		if bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return true
		}
	}
	return false
}

func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("certificate %q", c.Subject.CommonName)
	}
	return fmt.Sprintf("certificate %q", c.Subject.String())
}

// readCertificateFile reads DER or PEM certificates from path.
func readCertificateFile(p string) ([]*x509.Certificate, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCertFile {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a certificate file", p, maxCertFile)
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("%s: neither PEM nor a DER certificate: %v", p, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: unexpected PEM block %q (want CERTIFICATE)", p, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", p, len(certs)+1, err)
		}
		certs = append(certs, c)
		if len(certs) > maxExtra {
			return nil, fmt.Errorf("%s: more than %d certificates", p, maxExtra)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE block found", p)
	}
	return certs, nil
}
