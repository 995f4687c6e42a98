package applecert_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
)

// This file synthesizes a hierarchy shaped like Apple's code-signing PKI, with keys
// the test holds: a root with the exact subject of Apple Root CA, a Developer ID CA
// (marker 1.2.840.113635.100.6.2.6) with the exact subject of Apple's, a Worldwide
// Developer Relations G3 CA (marker 6.2.1), and one leaf per profile laid out as
// Apple issues them (subject UID, CN, OU = team, O, C; critical EKU, key usage and
// Apple leaf extensions). Extension OIDs are written out literally here, from
// Apple-issued certificates, rather than taken from the package's tables, so the
// tests check the package against Apple's layout, not against itself.

var (
	oidEKUCodeSigning         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}
	oidEKUDevIDInstaller      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 13}
	oidEKU3rdPartyMacInstall  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 4, 9}
	oidExtKeyUsage            = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidMarkerDeveloperID      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 6}
	oidMarkerWWDR             = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 1}
	oidLeafDevIDDate          = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 33}
	oidLeafDevIDApplication   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 13}
	oidLeafDevIDInstaller     = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 14}
	oidLeafIPhoneDeveloper    = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 2}
	oidLeafMacDeveloper       = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 12}
	oidLeafMacAppSigningDev   = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 7}
	oidLeafDevCertSubmission  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 4}
	oidLeafMacAppSigningSubmi = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 1, 8}
	oidUID                    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	asn1NULL                  = []byte{0x05, 0x00}
)

// attr is one name attribute, kept in the order given (Apple's order differs between
// certificates, so pkix.Name's fixed order won't do).
type attr struct {
	oid asn1.ObjectIdentifier
	val string
}

func rawName(t testing.TB, attrs ...attr) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, a := range attrs {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: a.oid, Value: a.val}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var (
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// applePKI is the synthesized hierarchy.
type applePKI struct {
	root, devID, wwdr *x509.Certificate
	leaves            []appleLeaf
}

type appleLeaf struct {
	name    string
	cert    *x509.Certificate
	issuer  *x509.Certificate
	profile applecert.Profile
	kind    applecert.IssuerKind
	team    string
}

var (
	pkiOnce sync.Once
	pkiVal  applePKI
	pkiErr  error
)

// newApplePKI builds the hierarchy once per test binary (RSA key generation is slow).
func newApplePKI(t testing.TB) applePKI {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = buildApplePKI(t) })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

func buildApplePKI(t testing.TB) (applePKI, error) {
	ecKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// Apple's leaves are RSA-2048; one key serves every leaf.
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return applePKI{}, err
	}
	rootKey, devIDKey, wwdrKey := ecKey(), ecKey(), ecKey()
	now := time.Now()
	create := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	ca := func(serial int64, rawSubject []byte, marker asn1.ObjectIdentifier) *x509.Certificate {
		c := &x509.Certificate{
			SerialNumber: big.NewInt(serial), RawSubject: rawSubject,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if marker != nil {
			c.ExtraExtensions = []pkix.Extension{{Id: marker, Value: asn1NULL}}
		}
		return c
	}
	realRoot, realDevID := embedded(t, "Apple Root CA"), embedded(t, "Developer ID Certification Authority")

	// The same names as Apple's real CAs: only signatures can tell them apart.
	rootTmpl := ca(1, realRoot.RawSubject, nil)
	root, err := create(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return applePKI{}, err
	}
	devID, err := create(ca(2, realDevID.RawSubject, oidMarkerDeveloperID), root, devIDKey.Public(), rootKey)
	if err != nil {
		return applePKI{}, err
	}
	wwdrName := rawName(t, attr{oidCN, "Apple Worldwide Developer Relations Certification Authority"},
		attr{oidOU, "G3"}, attr{oidO, "Apple Inc."}, attr{oidC, "US"})
	wwdr, err := create(ca(3, wwdrName, oidMarkerWWDR), root, wwdrKey.Public(), rootKey)
	if err != nil {
		return applePKI{}, err
	}
	p := applePKI{root: root, devID: devID, wwdr: wwdr}

	issuedDate, err := asn1.MarshalWithParams(now.UTC().Truncate(24*time.Hour), "generalized")
	if err != nil {
		return applePKI{}, err
	}
	for i, lc := range []struct {
		name, cn, uid, team string
		issuer              *x509.Certificate
		issuerKey           crypto.Signer
		eku                 asn1.ObjectIdentifier
		exts                []pkix.Extension
		profile             applecert.Profile
		kind                applecert.IssuerKind
	}{
		{"developer-id-application", "Developer ID Application: Jane Appleseed (ABCDE12345)", "ABCDE12345", "ABCDE12345",
			devID, devIDKey, oidEKUCodeSigning,
			[]pkix.Extension{{Id: oidLeafDevIDDate, Value: issuedDate}, {Id: oidLeafDevIDApplication, Critical: true, Value: asn1NULL}},
			applecert.ProfileDeveloperIDApplication, applecert.DeveloperID},
		{"developer-id-installer", "Developer ID Installer: Jane Appleseed (ABCDE12345)", "ABCDE12345", "ABCDE12345",
			devID, devIDKey, oidEKUDevIDInstaller,
			[]pkix.Extension{{Id: oidLeafDevIDDate, Value: issuedDate}, {Id: oidLeafDevIDInstaller, Critical: true, Value: asn1NULL}},
			applecert.ProfileDeveloperIDInstaller, applecert.DeveloperID},
		// Apple Development certificates name the person's own identifier in the CN
		// and UID; the team is only in the OU.
		{"apple-development", "Apple Development: Jane Appleseed (QWERTY0987)", "ZXCVB54321", "ABCDE12345",
			wwdr, wwdrKey, oidEKUCodeSigning,
			[]pkix.Extension{{Id: oidLeafIPhoneDeveloper, Critical: true, Value: asn1NULL}, {Id: oidLeafMacDeveloper, Critical: true, Value: asn1NULL}},
			applecert.ProfileAppleDevelopment, applecert.WWDR},
		{"apple-distribution", "Apple Distribution: Jane Appleseed (ABCDE12345)", "ABCDE12345", "ABCDE12345",
			wwdr, wwdrKey, oidEKUCodeSigning,
			[]pkix.Extension{{Id: oidLeafMacAppSigningDev, Critical: true, Value: asn1NULL}, {Id: oidLeafDevCertSubmission, Critical: true, Value: asn1NULL}},
			applecert.ProfileAppleDistribution, applecert.WWDR},
		{"3rd-party-mac-developer-installer", "3rd Party Mac Developer Installer: Jane Appleseed (ABCDE12345)", "ABCDE12345", "ABCDE12345",
			wwdr, wwdrKey, oidEKU3rdPartyMacInstall,
			[]pkix.Extension{{Id: oidLeafMacAppSigningSubmi, Critical: true, Value: asn1NULL}},
			applecert.ProfileMacInstallerDistribution, applecert.WWDR},
	} {
		eku, err := asn1.Marshal([]asn1.ObjectIdentifier{lc.eku})
		if err != nil {
			return applePKI{}, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(100 + i)),
			RawSubject: rawName(t, attr{oidUID, lc.uid}, attr{oidCN, lc.cn}, attr{oidOU, lc.team},
				attr{oidO, "Jane Appleseed"}, attr{oidC, "US"}),
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour),
			BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtraExtensions: append([]pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}}, lc.exts...),
		}
		leaf, err := create(tmpl, lc.issuer, leafKey.Public(), lc.issuerKey)
		if err != nil {
			return applePKI{}, err
		}
		p.leaves = append(p.leaves, appleLeaf{lc.name, leaf, lc.issuer, lc.profile, lc.kind, lc.team})
	}
	return p, nil
}

func embedded(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	for _, c := range append(applecert.RootCertificates(), applecert.IntermediateCertificates()...) {
		if c.Subject.CommonName == cn {
			return c
		}
	}
	t.Fatalf("%q is not embedded", cn)
	return nil
}

// The synthesized hierarchy is NOT Apple's: its root has Apple Root CA's exact name,
// and its Developer ID CA the real one's, but no signature leads to an embedded root.
// Profiles and team IDs, which need no trust, are still read correctly.
func TestApplePKILookAlikeIsNotApple(t *testing.T) {
	applecert.ResetExtraCertificates(t) // should an addition wrongly succeed
	p := newApplePKI(t)
	chain := []*x509.Certificate{p.devID, p.wwdr, p.root}
	for _, l := range p.leaves {
		if got := applecert.GuessProfile(l.cert); got != l.profile {
			t.Errorf("%s: GuessProfile = %v, want %v", l.name, got, l.profile)
		}
		if got := applecert.TeamID(l.cert); got != l.team {
			t.Errorf("%s: TeamID = %q, want %q", l.name, got, l.team)
		}
		if path := applecert.IssuerPath(l.cert, chain); len(path) != 2 || !path[0].Equal(l.issuer) || !path[1].Equal(p.root) {
			t.Errorf("%s: IssuerPath = %v, want [its CA, the look-alike root]", l.name, names(path))
		}
		if applecert.ChainsToApple(l.cert, chain) {
			t.Errorf("%s: a look-alike hierarchy chains to Apple", l.name)
		}
		if got := applecert.ClassifyIssuer(l.cert, chain); got != applecert.NotApple {
			t.Errorf("%s: ClassifyIssuer = %v, want not Apple", l.name, got)
		}
		if _, ok := applecert.AppleChain(l.cert, chain); ok {
			t.Errorf("%s: AppleChain succeeded", l.name)
		}
	}
	if applecert.IsAppleRoot(p.root) {
		t.Error("the look-alike root is taken for Apple Root CA")
	}
	// Nor can it be added: it is not one of Apple's published roots, and its CAs do
	// not chain to one. Nothing changes.
	before := len(applecert.RootCertificates()) + len(applecert.IntermediateCertificates())
	if err := applecert.AddExtraCertificates(p.root); err == nil || !strings.Contains(err.Error(), "not one of Apple's published root CAs") {
		t.Errorf("AddExtraCertificates(look-alike root) = %v", err)
	}
	if err := applecert.AddExtraCertificates(p.devID, p.wwdr); err == nil || !strings.Contains(err.Error(), "does not chain to an Apple root") {
		t.Errorf("AddExtraCertificates(look-alike intermediates) = %v", err)
	}
	if after := len(applecert.RootCertificates()) + len(applecert.IntermediateCertificates()); after != before {
		t.Errorf("failed additions changed the trusted set: %d certificates, was %d", after, before)
	}
}

// With the synthesized root standing in for one of Apple's published roots (a test
// hook) and its CAs loaded from files through LoadExtraCertificates, every leaf is
// classified as Apple classifies it.
func TestAppleIssuedProfiles(t *testing.T) {
	p := newApplePKI(t)
	applecert.AllowTestRoot(t, p.root)
	dir := t.TempDir()
	// Intermediates first, in one PEM file, and the root as a DER .cer, as Apple
	// publishes them: order does not matter within a call.
	inters := filepath.Join(dir, "intermediates.pem")
	writeFile(t, inters, append(pemOf(p.wwdr), pemOf(p.devID)...))
	rootFile := filepath.Join(dir, "root.cer")
	writeFile(t, rootFile, p.root.Raw)
	if err := applecert.LoadExtraCertificates(inters, rootFile); err != nil {
		t.Fatal(err)
	}
	if !applecert.IsAppleRoot(p.root) || len(applecert.IntermediateCertificates()) != 4 {
		t.Fatal("the loaded certificates are not served")
	}
	for _, l := range p.leaves {
		if got := applecert.GuessProfile(l.cert); got != l.profile {
			t.Errorf("%s: GuessProfile = %v, want %v", l.name, got, l.profile)
		}
		if got := applecert.ClassifyIssuer(l.cert, nil); got != l.kind {
			t.Errorf("%s: ClassifyIssuer = %v, want %v", l.name, got, l.kind)
		}
		if got := applecert.TeamID(l.cert); got != l.team {
			t.Errorf("%s: TeamID = %q, want %q", l.name, got, l.team)
		}
		// The real Developer ID CA has the same name as the synthesized one: the
		// chain must be the one whose key signed the leaf.
		chain, ok := applecert.AppleChain(l.cert, nil)
		if !ok || len(chain) != 2 || !chain[0].Equal(l.issuer) || !chain[1].Equal(p.root) {
			t.Errorf("%s: AppleChain = %v, %v", l.name, names(chain), ok)
		}
		// x509 agrees once Apple's critical leaf extensions are accepted.
		leaf := *l.cert
		leaf.UnhandledCriticalExtensions = nil
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: applecert.AppleRoots(), Intermediates: applecert.AppleIntermediates(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: x509 verification: %v", l.name, err)
		}
	}
}

// A leaf whose intermediate is not known is recognised once the caller's chain
// supplies it: the way a .p12 that carries its WWDR CA works.
func TestApplePKIChainFromKeyFile(t *testing.T) {
	p := newApplePKI(t)
	applecert.AllowTestRoot(t, p.root)
	if err := applecert.AddExtraCertificates(p.root); err != nil {
		t.Fatal(err)
	}
	for _, l := range p.leaves {
		if got := applecert.ClassifyIssuer(l.cert, nil); got != applecert.NotApple {
			t.Errorf("%s: ClassifyIssuer without its CA = %v, want not Apple", l.name, got)
		}
		if got := applecert.ClassifyIssuer(l.cert, []*x509.Certificate{l.issuer}); got != l.kind {
			t.Errorf("%s: ClassifyIssuer with its CA = %v, want %v", l.name, got, l.kind)
		}
	}
}

// The real thing: node's Developer ID Application leaf and CA, from its code
// signature.
func TestAppleIssuedNodeLeaf(t *testing.T) {
	sd := nodeCMS(t)
	leaf := sd.Signer.SignerCertificate
	if got := applecert.GuessProfile(leaf); got != applecert.ProfileDeveloperIDApplication {
		t.Errorf("GuessProfile = %v", got)
	}
	if got := applecert.TeamID(leaf); got != "HX7739G8FX" {
		t.Errorf("TeamID = %q", got)
	}
	// With node's own chain and without any chain (the CA is embedded).
	for _, chain := range [][]*x509.Certificate{sd.Certificates, nil} {
		if got := applecert.ClassifyIssuer(leaf, chain); got != applecert.DeveloperID {
			t.Errorf("ClassifyIssuer = %v", got)
		}
		path, ok := applecert.AppleChain(leaf, chain)
		if !ok || len(path) != 2 || path[0].Subject.CommonName != "Developer ID Certification Authority" || !applecert.IsAppleRoot(path[1]) {
			t.Errorf("AppleChain = %v, %v", names(path), ok)
		}
	}
}

func TestLoadExtraCertificates(t *testing.T) {
	applecert.ResetExtraCertificates(t)
	sd := nodeCMS(t)
	p := newApplePKI(t)
	dir := t.TempDir()
	var realCA, realRoot *x509.Certificate
	for _, c := range sd.Certificates {
		switch c.Subject.CommonName {
		case "Developer ID Certification Authority":
			realCA = c
		case "Apple Root CA":
			realRoot = c
		}
	}
	count := func() int { return len(applecert.RootCertificates()) + len(applecert.IntermediateCertificates()) }
	before := count()

	// Apple's real files (here, taken from node's signature) load; being embedded
	// already, they add nothing.
	caPEM := filepath.Join(dir, "DeveloperIDCA.pem")
	writeFile(t, caPEM, pemOf(realCA))
	rootDER := filepath.Join(dir, "AppleRootCA.cer")
	writeFile(t, rootDER, realRoot.Raw)
	if err := applecert.LoadExtraCertificates(caPEM, rootDER); err != nil {
		t.Fatalf("LoadExtraCertificates(Apple's files) = %v", err)
	}
	if count() != before {
		t.Errorf("re-adding embedded certificates changed the set: %d, was %d", count(), before)
	}

	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"junk":              {[]byte("not a certificate"), "neither PEM nor a DER certificate"},
		"empty PEM":         {[]byte("-----BEGIN nothing"), "no CERTIFICATE block"},
		"private key":       {keyPEM, `unexpected PEM block "PRIVATE KEY"`},
		"bad PEM cert":      {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), "certificate 1"},
		"leaf":              {pemOf(sd.Signer.SignerCertificate), "not a CA certificate"},
		"look-alike root":   {p.root.Raw, "not one of Apple's published root CAs"},
		"look-alike CA":     {pemOf(p.devID), "does not chain to an Apple root"},
		"real + look-alike": {append(pemOf(realCA), pemOf(p.wwdr)...), "does not chain"},
		"oversized":         {make([]byte, 1<<20+1), "larger than"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		writeFile(t, path, tc.data)
		if err := applecert.LoadExtraCertificates(rootDER, path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadExtraCertificates = %v, want an error containing %q", name, err, tc.want)
		}
	}
	if err := applecert.LoadExtraCertificates(filepath.Join(dir, "missing.cer")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := applecert.AddExtraCertificates(nil); err == nil {
		t.Error("nil certificate accepted")
	}
	if count() != before {
		t.Errorf("failed loads changed the trusted set: %d, was %d", count(), before)
	}

	// All or nothing: with the look-alike root allowed, a batch that also holds a
	// CA nobody trusted issued adds none of it.
	applecert.AllowTestRoot(t, p.root)
	stranger := newStrangerCA(t)
	if err := applecert.AddExtraCertificates(p.root, p.devID, stranger); err == nil || !strings.Contains(err.Error(), "does not chain") {
		t.Errorf("batch with a stranger CA = %v", err)
	}
	if applecert.IsAppleRoot(p.root) || count() != before {
		t.Error("a failed batch added some of its certificates")
	}
}

// newStrangerCA is a CA certificate issued by a key nobody trusts.
func newStrangerCA(t *testing.T) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issuer := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "stranger root"}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "stranger CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(cs []*x509.Certificate) string {
	var b bytes.Buffer
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(c.Subject.CommonName)
	}
	return "[" + b.String() + "]"
}
