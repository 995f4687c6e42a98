package applecert_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testenv"
)

// The embedded files and their SHA-256 (Apple publishes the same fingerprints at
// https://www.apple.com/certificateauthority/); certs/README.md lists them too.
var embeddedFiles = map[string]string{
	"AppleRootCA.cer":      "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024",
	"DeveloperIDCA.cer":    "7afc9d01a62f03a2de9637936d4afe68090d2de18d03f29c88cfb0b1ba63587f",
	"AppleTimestampCA.cer": "66285e2e374d00a8ba3d8d3d04393a48bd16554b284bc88dabec85b479adcd6b",
}

// nodeCMS parses the CMS of node's real Developer ID signature.
func nodeCMS(t *testing.T) *cms.SignedData {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "agent", "cms", "testdata", "node-cms.der"))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := cms.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if sd.Signer.TimeStamp == nil {
		t.Fatal("node's CMS has no time-stamp token")
	}
	return sd
}

// Every embedded file is byte-for-byte a certificate from node's real code signature
// (the CMS certificate set, or the set inside its Apple time-stamp token), and the
// package serves exactly those files.
func TestEmbeddedCertificates(t *testing.T) {
	sd := nodeCMS(t)
	inNode := map[string]bool{}
	for _, c := range append(append([]*x509.Certificate(nil), sd.Certificates...), sd.Signer.TimeStamp.Certificates...) {
		inNode[string(c.Raw)] = true
	}
	readme, err := os.ReadFile(filepath.Join("certs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("certs")
	if err != nil {
		t.Fatal(err)
	}
	fromFiles := map[string]bool{}
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		want, ok := embeddedFiles[e.Name()]
		if !ok {
			t.Errorf("certs/%s: unexpected file; only certificates found in node's signature belong here", e.Name())
			continue
		}
		der, err := os.ReadFile(filepath.Join("certs", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !inNode[string(der)] {
			t.Errorf("certs/%s is not byte-identical to any certificate in node's code signature", e.Name())
		}
		sum := sha256.Sum256(der)
		if hex.EncodeToString(sum[:]) != want {
			t.Errorf("certs/%s: sha256 %x, want %s", e.Name(), sum, want)
		}
		if !bytes.Contains(readme, []byte("| "+e.Name()+" |")) || !bytes.Contains(readme, []byte(want)) {
			t.Errorf("certs/README.md does not list %s with its fingerprint", e.Name())
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsCA {
			t.Errorf("certs/%s is not a CA certificate", e.Name())
		}
		fromFiles[string(der)] = true
	}
	if len(fromFiles) != len(embeddedFiles) {
		t.Errorf("%d certificate files in certs/, want %d", len(fromFiles), len(embeddedFiles))
	}

	roots, inter := applecert.RootCertificates(), applecert.IntermediateCertificates()
	if len(roots) != 1 || roots[0].Subject.CommonName != "Apple Root CA" || len(inter) != 2 {
		t.Fatalf("%d roots and %d intermediates served, want Apple Root CA and 2", len(roots), len(inter))
	}
	for _, c := range append(roots, inter...) {
		if !fromFiles[string(c.Raw)] {
			t.Errorf("%q is served but is not one of the files", c.Subject.CommonName)
		}
	}
	// Every intermediate chains (by signature) to the embedded root, and carries
	// its Apple CA marker.
	markers := map[string]asn1.ObjectIdentifier{
		"Developer ID Certification Authority":    applecert.OIDCADeveloperID,
		"Apple Timestamp Certification Authority": applecert.OIDCATimestamp,
	}
	for _, c := range inter {
		if !applecert.ChainsToApple(c, nil) {
			t.Errorf("%s does not chain to an Apple root", c.Subject.CommonName)
		}
		if oid := markers[c.Subject.CommonName]; oid == nil || !applecert.HasExtension(c, oid) {
			t.Errorf("%s lacks its Apple CA marker extension %v", c.Subject.CommonName, oid)
		}
	}
	// Fresh pools each time: a caller adding to one doesn't change the next.
	p := applecert.AppleRoots()
	p.AddCert(inter[0])
	if applecert.AppleRoots().Equal(p) {
		t.Error("AppleRoots returns a shared pool")
	}
}

// node's CMS carries Apple Root CA and the Developer ID CA: they are byte-for-byte the
// embedded ones, and the leaf is recognised as Developer ID without any chain.
func TestNodeCertificates(t *testing.T) {
	sd := nodeCMS(t)
	leaf := sd.Signer.SignerCertificate
	for _, c := range sd.Certificates {
		if c == leaf {
			continue
		}
		found := false
		for _, e := range append(applecert.RootCertificates(), applecert.IntermediateCertificates()...) {
			found = found || bytes.Equal(e.Raw, c.Raw)
		}
		if !found {
			t.Errorf("node's %q is not the embedded certificate", c.Subject.CommonName)
		}
	}
	if !applecert.IsAppleRoot(sd.Certificates[1]) && !applecert.IsAppleRoot(sd.Certificates[0]) {
		t.Error("no certificate in node's CMS is recognised as Apple Root CA")
	}
	if got := applecert.TeamID(leaf); got != "HX7739G8FX" {
		t.Errorf("TeamID = %q, want HX7739G8FX", got)
	}
	if got := applecert.GuessProfile(leaf); got != applecert.ProfileDeveloperIDApplication {
		t.Errorf("GuessProfile = %v", got)
	}
	if got := applecert.ClassifyIssuer(leaf, nil); got != applecert.DeveloperID || got.String() != "Apple Developer ID" {
		t.Errorf("ClassifyIssuer(leaf, no chain) = %v, want Developer ID", got)
	}
	// The embedded intermediates complete the chain for x509 verification too.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: applecert.AppleRoots(), Intermediates: applecert.AppleIntermediates(),
		CurrentTime: sd.Signer.SigningTime, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil ||
		!strings.Contains(err.Error(), "unhandled critical extension") {
		t.Errorf("x509 verification of the Developer ID leaf: %v (want only Apple's critical extension to stop it)", err)
	}
	chain, ok := applecert.AppleChain(leaf, nil)
	if !ok || len(chain) != 2 || !applecert.HasExtension(chain[0], applecert.OIDCADeveloperID) || !applecert.IsAppleRoot(chain[1]) {
		t.Errorf("AppleChain = %v, %v; want [Developer ID CA, Apple Root CA]", chain, ok)
	}
	if applecert.SelfSigned(leaf) {
		t.Error("leaf reported self-signed")
	}
}

func TestGenerateSelfSigned(t *testing.T) {
	for _, p := range applecert.Profiles() {
		for _, alg := range []applecert.KeyAlgorithm{applecert.ECDSAP256, applecert.RSA2048} {
			if alg == applecert.RSA2048 && p != applecert.ProfileDeveloperIDApplication {
				continue // RSA key generation is slow; one profile covers it
			}
			key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
				Profile: p, Algorithm: alg, TeamID: "ABCDE12345", PersonName: "Jane Dev", EmailAddress: "jane@example.com",
			})
			if err != nil {
				t.Fatalf("%v/%s: %v", p, alg, err)
			}
			name := p.String() + "/" + string(alg)
			if got := applecert.GuessProfile(cert); got != p {
				t.Errorf("%s: GuessProfile = %v", name, got)
			}
			if applecert.TeamID(cert) != "ABCDE12345" || cert.Subject.Organization[0] != "Jane Dev" || cert.Subject.Country[0] != "US" {
				t.Errorf("%s: subject %v", name, cert.Subject)
			}
			if !strings.HasSuffix(cert.Subject.CommonName, ": Jane Dev (ABCDE12345)") {
				t.Errorf("%s: CN %q", name, cert.Subject.CommonName)
			}
			if !applecert.SelfSigned(cert) || applecert.ChainsToApple(cert, nil) || applecert.ClassifyIssuer(cert, nil) != applecert.NotApple {
				t.Errorf("%s: self-signed %v, chains to Apple %v", name, applecert.SelfSigned(cert), applecert.ChainsToApple(cert, nil))
			}
			if len(cert.SubjectKeyId) != 20 {
				t.Errorf("%s: subject key identifier %x", name, cert.SubjectKeyId)
			}
			if cert.IsCA || cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("%s: IsCA %v key usage %v", name, cert.IsCA, cert.KeyUsage)
			}
			// Apple leaf extensions and the EKU are critical, as Apple marks them.
			for _, e := range cert.Extensions {
				if applecert.IsAppleExtension(e.Id) && (!e.Critical || !bytes.Equal(e.Value, []byte{5, 0})) {
					t.Errorf("%s: extension %v critical=%v value=%x", name, e.Id, e.Critical, e.Value)
				}
				if e.Id.String() == "2.5.29.37" && !e.Critical {
					t.Errorf("%s: extended key usage not critical", name)
				}
			}
			pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !pub.Equal(cert.PublicKey) {
				t.Errorf("%s: key does not match the certificate", name)
			}
			wantKey := map[applecert.KeyAlgorithm]string{applecert.ECDSAP256: "*ecdsa.PrivateKey", applecert.RSA2048: "*rsa.PrivateKey"}[alg]
			switch k := key.(type) {
			case *ecdsa.PrivateKey:
				if wantKey != "*ecdsa.PrivateKey" || k.Curve != elliptic.P256() {
					t.Errorf("%s: key %T", name, key)
				}
			case *rsa.PrivateKey:
				if wantKey != "*rsa.PrivateKey" || k.N.BitLen() != 2048 {
					t.Errorf("%s: key %T", name, key)
				}
			}
		}
	}
}

// openssl reads the generated certificate as Apple's: UID first, Apple extensions
// critical, code signing EKU.
func TestGeneratedCertificateOpenSSL(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	_, cert, err := applecert.GenerateSelfSigned(applecert.Options{
		Profile: applecert.ProfileDeveloperIDApplication, TeamID: "ABCDE12345", PersonName: "Jane Dev",
		NotBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Validity: 48 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cert.der")
	if err := os.WriteFile(path, cert.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "x509", "-inform", "DER", "-in", path, "-noout", "-text", "-nameopt", "RFC2253").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Subject: C=US,O=Jane Dev,OU=ABCDE12345,CN=Developer ID Application: Jane Dev (ABCDE12345),UID=ABCDE12345",
		"1.2.840.113635.100.6.1.13: critical",
		"X509v3 Extended Key Usage: critical\n                Code Signing",
		"Not Before: Jan  1 00:00:00 2030 GMT",
		"Not After : Jan  3 00:00:00 2030 GMT",
		"ecdsa-with-SHA256",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl output lacks %q:\n%s", want, out)
		}
	}
}

func TestGenerateSelfSignedRejects(t *testing.T) {
	base := applecert.Options{Profile: applecert.ProfileAppleDevelopment, TeamID: "T", PersonName: "P"}
	for name, mutate := range map[string]func(*applecert.Options){
		"no profile":    func(o *applecert.Options) { o.Profile = applecert.ProfileUnknown },
		"no team":       func(o *applecert.Options) { o.TeamID = " " },
		"no name":       func(o *applecert.Options) { o.PersonName = "" },
		"bad country":   func(o *applecert.Options) { o.Country = "usa" },
		"bad algorithm": func(o *applecert.Options) { o.Algorithm = "dsa" },
		"negative":      func(o *applecert.Options) { o.Validity = -time.Hour },
		"long team":     func(o *applecert.Options) { o.TeamID = strings.Repeat("x", 65) },
	} {
		o := base
		mutate(&o)
		if _, _, err := applecert.GenerateSelfSigned(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A look-alike "Apple Root CA" (same name, another key) is not Apple.
func TestLookAlikeRootIsNotApple(t *testing.T) {
	realRoot := applecert.RootCertificates()[0]
	for _, r := range applecert.RootCertificates() {
		if r.Subject.CommonName == "Apple Root CA" {
			realRoot = r
		}
	}
	fakeKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fakeTmpl := &x509.Certificate{
		SerialNumber: realRoot.SerialNumber, RawSubject: realRoot.RawSubject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	fakeDER, err := x509.CreateCertificate(rand.Reader, fakeTmpl, fakeTmpl, fakeKey.Public(), fakeKey)
	if err != nil {
		t.Fatal(err)
	}
	fakeRoot, _ := x509.ParseCertificate(fakeDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: fakeRoot.SerialNumber, Subject: realRoot.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	leafTmpl.Subject.CommonName = "Developer ID Application: Mallory (EVIL000000)"
	leafTmpl.Subject.OrganizationalUnit = []string{"EVIL000000"}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, fakeRoot, leafKey.Public(), fakeKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	if path := applecert.IssuerPath(leaf, []*x509.Certificate{fakeRoot}); len(path) != 1 || path[0] != fakeRoot {
		t.Fatalf("IssuerPath = %v, want the fake root", path)
	}
	if applecert.ChainsToApple(leaf, []*x509.Certificate{fakeRoot}) || applecert.IsAppleRoot(fakeRoot) {
		t.Error("a look-alike root was taken for Apple's")
	}
	if applecert.ClassifyIssuer(leaf, []*x509.Certificate{fakeRoot}) != applecert.NotApple {
		t.Error("look-alike chain classified as Apple")
	}
}

func TestParseProfileAndAlgorithm(t *testing.T) {
	for _, p := range applecert.Profiles() {
		got, err := applecert.ParseProfile(p.String())
		if err != nil || got != p {
			t.Errorf("ParseProfile(%q) = %v, %v", p.String(), got, err)
		}
		if p.Title() == "" {
			t.Errorf("%v has no title", p)
		}
	}
	if _, err := applecert.ParseProfile("developer-id"); err == nil || !strings.Contains(err.Error(), "developer-id-application") {
		t.Errorf("ParseProfile(bad) = %v, want the list of valid names", err)
	}
	for in, want := range map[string]applecert.KeyAlgorithm{"p256": applecert.ECDSAP256, "ECDSA": applecert.ECDSAP256, "rsa2048": applecert.RSA2048, "rsa": applecert.RSA2048} {
		if got, err := applecert.ParseKeyAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseKeyAlgorithm(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := applecert.ParseKeyAlgorithm("ed25519"); err == nil {
		t.Error("ParseKeyAlgorithm(ed25519) accepted")
	}
}
