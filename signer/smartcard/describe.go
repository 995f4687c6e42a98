package smartcard

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

// describeCertificate prints what `signer analyze-certificate` prints about a
// certificate, indented, so a card's slot reads like the file it came from.
func describeCertificate(w io.Writer, indent string, c *x509.Certificate) {
	sha256sum := sha256.Sum256(c.Raw)
	sha1sum := sha1.Sum(c.Raw)
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%s%-21s %s\n", indent, label+":", fmt.Sprintf(format, args...))
	}
	p("subject", "%s", c.Subject)
	p("issuer", "%s", c.Issuer)
	p("serial number", "%s", hex.EncodeToString(c.SerialNumber.Bytes()))
	p("valid from", "%s", c.NotBefore.UTC().Format(time.RFC3339))
	p("valid until", "%s%s", c.NotAfter.UTC().Format(time.RFC3339), expiryNote(c))
	p("key", "%s", keyDescription(c.PublicKey))
	p("signature algorithm", "%v", c.SignatureAlgorithm)
	p("SHA-256 fingerprint", "%s", hex.EncodeToString(sha256sum[:]))
	p("SHA-1 fingerprint", "%s", hex.EncodeToString(sha1sum[:]))
	p("SPKI SHA-256", "%s", handshake.SPKIFingerprint(c.RawSubjectPublicKeyInfo))
	team := applecert.TeamID(c)
	if team == "" {
		team = "(none)"
	}
	p("team ID", "%s", team)
	p("Apple profile", "%s", applecert.GuessProfile(c).Title())
	p("issued by", "%s", issuerDescription(c))
	p("publickey0 sessions", "%s", publickey0Usable(c.PublicKey))
	fmt.Fprintf(w, "%spublic key (for agent --remote-public-key-pem-file):\n", indent)
	writePublicKeyPEM(w, indent, c.RawSubjectPublicKeyInfo)
}

func writePublicKeyPEM(w io.Writer, indent string, spki []byte) {
	block := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	for _, line := range strings.SplitAfter(block, "\n") {
		if line != "" {
			fmt.Fprint(w, indent+line)
		}
	}
}

func expiryNote(c *x509.Certificate) string {
	now := time.Now()
	switch {
	case now.After(c.NotAfter):
		return " (EXPIRED)"
	case now.Before(c.NotBefore):
		return " (NOT YET VALID)"
	}
	return ""
}

func keyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}

func issuerDescription(c *x509.Certificate) string {
	if kind := applecert.ClassifyIssuer(c, nil); kind != applecert.NotApple {
		return "Apple (" + kind.String() + ")"
	}
	if applecert.SelfSigned(c) {
		return "itself (self-signed; macOS will not trust code signed with it)"
	}
	return "a CA that is not Apple's (macOS will not trust code signed with it)"
}

func publickey0Usable(pub crypto.PublicKey) string {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return "no (publickey0 needs an RSA key; use a shared secret)"
	}
	if bits := k.N.BitLen(); bits < handshake.MinRSABits || bits > handshake.MaxRSABits {
		return fmt.Sprintf("no (RSA-%d; publickey0 needs RSA-%d to RSA-%d)", bits, handshake.MinRSABits, handshake.MaxRSABits)
	}
	return "yes"
}
