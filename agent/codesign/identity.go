package codesign

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/internal/applecert"
)

// Identity is what a CMS signature is made with: a key and the certificates that
// go with it. The key may be local (an *rsa.PrivateKey from a p12 file) or a
// remote peer implementing crypto.MessageSigner; the engine only calls
// crypto.SignMessage through agent/cms.
//
// The certificate must be known before anything is hashed: it decides the team ID
// in the CodeDirectory, the designated requirement (hence the RequirementSet and
// its hash in slot 2) and the size reserved for the signature.
type Identity struct {
	Signer      crypto.Signer
	Certificate *x509.Certificate
	// Chain holds the issuing certificates, nearest first. When the certificate
	// chains to Apple, missing Apple CA certificates are added automatically, as
	// codesign and rcodesign do, so the CMS carries the whole chain.
	Chain []*x509.Certificate
}

// certFacts are the facts about a signing certificate the engine uses.
type certFacts struct {
	cert        *x509.Certificate
	chain       []*x509.Certificate // the chain embedded in the CMS (not the leaf)
	appleSigned bool
	teamID      string // only for Apple-signed certificates
	designated  requirement.Signer
	commonName  string
	// warning explains a likely misconfiguration (reported, not fatal).
	warning string
}

// appleRoots decides whether a certificate is one of Apple's root CAs. nil means
// applecert.IsAppleRoot, the only policy production code uses. It is a value
// rather than a hard-wired call so that tests can run the real classification
// (Developer ID, WWDR, other Apple, private) over a synthesized look-alike Apple
// PKI: nobody outside Apple holds keys that chain to Apple's roots.
type appleRoots func(*x509.Certificate) bool

func (f appleRoots) isRoot(c *x509.Certificate) bool {
	if f == nil {
		return applecert.IsAppleRoot(c)
	}
	return f(c)
}

// chain returns the issuers of cert up to and including an Apple root, nearest
// first, when cert chains to one (as applecert.AppleChain, with this root policy).
func (f appleRoots) chain(cert *x509.Certificate, chain []*x509.Certificate) ([]*x509.Certificate, bool) {
	if f.isRoot(cert) {
		return nil, true
	}
	path := applecert.IssuerPath(cert, chain)
	if len(path) == 0 || !f.isRoot(path[len(path)-1]) {
		return nil, false
	}
	return path, true
}

// classify says which kind of CA issued cert (as applecert.ClassifyIssuer, with
// this root policy): the direct issuer's Apple marker extension decides, once the
// path is known to end at an Apple root.
func (f appleRoots) classify(cert *x509.Certificate, chain []*x509.Certificate) applecert.IssuerKind {
	path, ok := f.chain(cert, chain)
	switch {
	case !ok:
		return applecert.NotApple
	case len(path) == 0:
		return applecert.OtherApple
	case applecert.HasExtension(path[0], applecert.OIDCAWWDR):
		return applecert.WWDR
	case applecert.HasExtension(path[0], applecert.OIDCADeveloperID):
		return applecert.DeveloperID
	}
	return applecert.OtherApple
}

// resolveIdentity completes the chain and classifies the certificate. roots is
// nil except in tests (see appleRoots).
func resolveIdentity(id *Identity, roots appleRoots) (*certFacts, error) {
	if id.Signer == nil || id.Certificate == nil {
		return nil, errors.New("signing identity needs both a key and a certificate")
	}
	cert := id.Certificate
	f := &certFacts{cert: cert, commonName: cert.Subject.CommonName}
	var chain []*x509.Certificate
	for _, c := range id.Chain {
		if c != nil && !bytes.Equal(c.Raw, cert.Raw) {
			chain = append(chain, c)
		}
	}
	if apple, ok := roots.chain(cert, chain); ok {
		f.appleSigned = true
		f.teamID = applecert.TeamID(cert)
		// Add the Apple CAs the caller did not supply, keeping its order first.
		for _, c := range apple {
			if !containsCert(chain, c) {
				chain = append(chain, c)
			}
		}
	}
	f.chain = chain
	if !f.appleSigned && !applecert.SelfSigned(cert) && containsString(cert.Issuer.Organization, "Apple Inc.") {
		f.warning = fmt.Sprintf("the certificate was issued by %q but that CA is not available, so it is signed like a self-signed certificate (no team ID, a designated requirement pinning the certificate); add Apple's CA certificate from https://www.apple.com/certificateauthority/ to the chain", cert.Issuer.CommonName)
	}

	switch roots.classify(cert, chain) {
	case applecert.DeveloperID:
		if f.teamID == "" {
			return nil, errors.New("the Developer ID certificate has no team ID (subject OU)")
		}
		f.designated = requirement.Signer{Kind: requirement.SignerDeveloperID, TeamID: f.teamID}
	case applecert.WWDR:
		if f.commonName == "" {
			return nil, errors.New("the Apple-issued certificate has no common name")
		}
		f.designated = requirement.Signer{Kind: requirement.SignerWWDR, CommonName: f.commonName}
	case applecert.OtherApple:
		f.designated = requirement.Signer{Kind: requirement.SignerOtherApple}
	default:
		f.designated = nonApplePin(cert, chain)
	}
	return f, nil
}

// nonApplePin pins a certificate that does not chain to Apple, following
// rcodesign's rule for which position to pin: the run of issuers sharing the
// leaf's organization; the root (-1) when the whole chain shares it, which is
// always the case for a self-signed certificate.
//
// rcodesign then writes the leaf's hash whatever the position, which can never
// match a CA position; we write the hash of the certificate actually at that
// position. For a self-signed certificate (the common case, and rcodesign's
// golden) the two agree.
func nonApplePin(cert *x509.Certificate, chain []*x509.Certificate) requirement.Signer {
	path := applecert.IssuerPath(cert, chain)
	org := ""
	if len(cert.Subject.Organization) > 0 {
		org = cert.Subject.Organization[0]
	}
	n := 0
	if org != "" {
		for _, c := range path {
			if len(c.Subject.Organization) == 0 {
				continue
			}
			if c.Subject.Organization[0] != org {
				break
			}
			n++
		}
	}
	pinned := cert
	slot := int32(n)
	if n == len(path) {
		slot = requirement.SlotRoot
		if len(path) > 0 {
			pinned = path[len(path)-1]
		}
	} else if n > 0 {
		pinned = path[n-1]
	}
	sum := sha1.Sum(pinned.Raw)
	return requirement.Signer{Kind: requirement.SignerNonApple, PinSlot: slot, PinSHA1: sum[:]}
}

func containsString(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if bytes.Equal(l.Raw, c.Raw) {
			return true
		}
	}
	return false
}
