// Package certinfo describes a signing certificate for the person holding the key:
// what `signer analyze-certificate` and the smart-card commands print. One
// description everywhere means a card slot reads exactly like the file it came from,
// and the public-key block printed is the one to hand to the initiator.
package certinfo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/protocol/handshake"
)

// Describe writes c's analysis to w, each line prefixed by indent: names, validity,
// key, fingerprints (certificate and SPKI), team ID, Apple profile guess, issuer
// kind, whether the key can join publickey0 sessions, and the PUBLIC KEY PEM block
// for `agent sign --remote-public-key-pem-file`. others supply intermediates for the
// Apple chain check.
func Describe(w io.Writer, indent string, c *x509.Certificate, others []*x509.Certificate) {
	sha256sum := sha256.Sum256(c.Raw)
	sha1sum := sha1.Sum(c.Raw)
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%s%-21s %s\n", indent, label+":", fmt.Sprintf(format, args...))
	}
	p("subject", "%s", c.Subject)
	p("issuer", "%s", c.Issuer)
	p("serial number", "%s", hex.EncodeToString(c.SerialNumber.Bytes()))
	p("valid from", "%s", c.NotBefore.UTC().Format(time.RFC3339))
	p("valid until", "%s%s", c.NotAfter.UTC().Format(time.RFC3339), expiryNote(c, time.Now()))
	p("key", "%s", KeyDescription(c.PublicKey))
	p("signature algorithm", "%v", c.SignatureAlgorithm)
	p("SHA-256 fingerprint", "%s", hex.EncodeToString(sha256sum[:]))
	p("SHA-1 fingerprint", "%s", hex.EncodeToString(sha1sum[:]))
	p("SPKI SHA-256", "%s", handshake.SPKIFingerprint(c.RawSubjectPublicKeyInfo))
	team := applecert.TeamID(c)
	switch {
	case c.IsCA:
		team = "(none: a CA certificate)"
	case team == "":
		team = "(none)"
	}
	p("team ID", "%s", team)
	p("Apple profile", "%s", applecert.GuessProfile(c).Title())
	p("issued by", "%s", issuerDescription(c, others))
	p("publickey0 sessions", "%s", Publickey0Usable(c))
	fmt.Fprintf(w, "%spublic key (for agent --remote-public-key-pem-file):\n", indent)
	WritePublicKeyPEM(w, indent, c.RawSubjectPublicKeyInfo)
}

func expiryNote(c *x509.Certificate, now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return " (EXPIRED)"
	case now.Before(c.NotBefore):
		return " (NOT YET VALID)"
	}
	return ""
}

// KeyDescription names a public key's type and size, e.g. "RSA 2048 bits".
func KeyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

// WritePublicKeyPEM writes a DER SubjectPublicKeyInfo as a PUBLIC KEY PEM block,
// each line prefixed by indent.
func WritePublicKeyPEM(w io.Writer, indent string, spki []byte) {
	block := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	for _, line := range strings.SplitAfter(block, "\n") {
		if line != "" {
			fmt.Fprint(w, indent+line)
		}
	}
}

func issuerDescription(c *x509.Certificate, others []*x509.Certificate) string {
	if kind := applecert.ClassifyIssuer(c, others); kind != applecert.NotApple {
		return "Apple (" + kind.String() + ")"
	}
	if applecert.SelfSigned(c) {
		return "itself (self-signed; macOS will not trust code signed with it)"
	}
	return "a CA that is not Apple's (macOS will not trust code signed with it)"
}

// Publickey0Usable says whether the certificate's key can join publickey0 sessions
// (an RSA key of a size the protocol accepts), and if not, what to do instead.
func Publickey0Usable(c *x509.Certificate) string {
	k, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "no (publickey0 needs an RSA key; use a shared secret)"
	}
	if bits := k.N.BitLen(); bits < handshake.MinRSABits || bits > handshake.MaxRSABits {
		return fmt.Sprintf("no (RSA-%d; publickey0 needs RSA-%d to RSA-%d)", bits, handshake.MinRSABits, handshake.MaxRSABits)
	}
	return "yes"
}
