package codesign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
)

// fakePKI is a synthesized look-alike of Apple's code-signing PKI: a root and
// intermediates with Apple's names and marker extensions, and leaves shaped like
// Apple-issued ones. Nobody outside Apple can issue a certificate that chains
// to Apple's real roots, so the designated-requirement paths for Apple-issued
// certificates are exercised by declaring this root to be "Apple's" through the
// appleRoots seam; everything else (chain building, classification, encoding,
// CMS, verification) is the production code.
type fakePKI struct {
	t       testing.TB
	root    *x509.Certificate
	rootKey crypto.Signer
	serial  int64
}

var (
	pkiNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	pkiNotAfter  = time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newFakePKI(t testing.TB, org string) *fakePKI {
	p := &fakePKI{t: t}
	p.root, p.rootKey = p.issue(nil, nil, pkix.Name{
		Country: []string{"US"}, Organization: []string{org},
		OrganizationalUnit: []string{"Apple Certification Authority"}, CommonName: "Apple Root CA",
	}, true, nil)
	return p
}

// isApple is the root policy that declares this PKI's root to be Apple's.
func (p *fakePKI) isApple(c *x509.Certificate) bool { return bytes.Equal(c.Raw, p.root.Raw) }

// issue creates a certificate for a new P-256 key, signed by parent (self-signed
// when parent is nil). markers are Apple extensions with a NULL value, critical
// on leaves as Apple marks them.
func (p *fakePKI) issue(parent *x509.Certificate, parentKey crypto.Signer, subject pkix.Name, ca bool, markers []asn1.ObjectIdentifier) (*x509.Certificate, crypto.Signer) {
	p.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: subject,
		NotBefore: pkiNotBefore, NotAfter: pkiNotAfter,
		BasicConstraintsValid: true, IsCA: ca,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	for _, m := range markers {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: m, Critical: !ca, Value: []byte{0x05, 0x00}})
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	return c, key
}

// intermediate issues an Apple-named CA under the root carrying marker (none
// when nil).
func (p *fakePKI) intermediate(cn, ou string, marker asn1.ObjectIdentifier) (*x509.Certificate, crypto.Signer) {
	var markers []asn1.ObjectIdentifier
	if marker != nil {
		markers = append(markers, marker)
	}
	return p.issue(p.root, p.rootKey, pkix.Name{
		Country: []string{"US"}, Organization: []string{"Apple Inc."}, OrganizationalUnit: []string{ou}, CommonName: cn,
	}, true, markers)
}

// leaf issues a signing certificate shaped like Apple's: subject UID and OU are
// the team ID, O the person, CN "<kind>: <person> (<team>)".
func (p *fakePKI) leaf(ca *x509.Certificate, caKey crypto.Signer, kind, team string, exts ...asn1.ObjectIdentifier) *Identity {
	person := "Farsign Test"
	c, key := p.issue(ca, caKey, pkix.Name{
		ExtraNames:         []pkix.AttributeTypeAndValue{{Type: applecert.OIDUserID, Value: team}},
		CommonName:         kind + ": " + person + " (" + team + ")",
		OrganizationalUnit: []string{team}, Organization: []string{person}, Country: []string{"US"},
	}, false, exts)
	return &Identity{Signer: key, Certificate: c}
}

// Certificates issued by a Developer ID CA or a Worldwide Developer Relations CA
// get spec §4's designated requirements (text and bytes), their team ID in the
// CodeDirectory and the whole chain in the CMS, and the result verifies when the
// root is trusted as Apple's. The same files are refused when the look-alike
// root is judged by the real rule (byte-identical to an Apple root).
func TestAppleIssuedDesignatedRequirements(t *testing.T) {
	pki := newFakePKI(t, "Apple Inc.")
	devidCA, devidKey := pki.intermediate("Developer ID Certification Authority", "Apple Certification Authority", applecert.OIDCADeveloperID)
	wwdrCA, wwdrKey := pki.intermediate("Apple Worldwide Developer Relations Certification Authority", "G3", applecert.OIDCAWWDR)

	for _, tc := range []struct {
		name     string
		id       *Identity
		ca       *x509.Certificate
		kind     requirement.SignerKind
		text     string
		expr     func(ident string) specEnc
		teamInCD string
	}{
		{
			name: "Developer ID", kind: requirement.SignerDeveloperID, ca: devidCA,
			id:   pki.leaf(devidCA, devidKey, "Developer ID Application", "DEVIDTEAM1", applecert.OIDExtDeveloperIDApplication),
			text: `identifier "tool" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = "DEVIDTEAM1"`,
			expr: func(ident string) specEnc {
				return specEnc(nil).
					u32(opAnd).u32(opIdent).str(ident).
					u32(opAnd).u32(opAnchorAppleGeneric).
					u32(opAnd).u32(opCertGeneric, 1).oid(t, applecert.OIDCADeveloperID).u32(matchExists).
					u32(opAnd).u32(opCertGeneric, slotLeaf).oid(t, applecert.OIDExtDeveloperIDApplication).u32(matchExists).
					u32(opCertField, slotLeaf).str("subject.OU").u32(matchEqual).str("DEVIDTEAM1")
			},
			teamInCD: "DEVIDTEAM1",
		},
		{
			name: "Apple Development (WWDR)", kind: requirement.SignerWWDR, ca: wwdrCA,
			id:   pki.leaf(wwdrCA, wwdrKey, "Apple Development", "WWDRTEAM01", applecert.OIDExtIPhoneDeveloper, applecert.OIDExtMacDeveloper),
			text: `identifier "tool" and anchor apple generic and certificate leaf[subject.CN] = "Apple Development: Farsign Test (WWDRTEAM01)" and certificate 1[field.1.2.840.113635.100.6.2.1] /* exists */`,
			expr: func(ident string) specEnc {
				return specEnc(nil).
					u32(opAnd).u32(opIdent).str(ident).
					u32(opAnd).u32(opAnchorAppleGeneric).
					u32(opAnd).u32(opCertField, slotLeaf).str("subject.CN").u32(matchEqual).str("Apple Development: Farsign Test (WWDRTEAM01)").
					u32(opCertGeneric, 1).oid(t, applecert.OIDCAWWDR).u32(matchExists)
			},
			teamInCD: "WWDRTEAM01",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := *tc.id
			id.Chain = []*x509.Certificate{tc.ca, pki.root}
			f, err := resolveIdentity(&id, pki.isApple)
			if err != nil {
				t.Fatal(err)
			}
			if !f.appleSigned || f.teamID != tc.teamInCD || f.warning != "" || f.designated.Kind != tc.kind {
				t.Errorf("facts: apple %v team %q warning %q kind %v", f.appleSigned, f.teamID, f.warning, f.designated.Kind)
			}
			if len(f.chain) != 2 || f.chain[0] != tc.ca || f.chain[1] != pki.root {
				t.Errorf("chain of %d certificates, want the CA then the root", len(f.chain))
			}
			dr := requirement.Designated("tool", f.designated)
			if got := dr.String(); got != tc.text {
				t.Errorf("text\n got %s\nwant %s", got, tc.text)
			}
			wantSet := specDesignatedSet(tc.expr("tool"))
			if got := requirement.DesignatedSet(dr).Bytes(); !bytes.Equal(got, wantSet) {
				t.Errorf("RequirementSet\n got %x\nwant %x", got, wantSet)
			}
			// The chain is counted in the signature size estimate.
			n := int64(1024 + 5*32 + 4096 + len(tc.ca.Raw) + len(pki.root.Raw) + 8192)
			n += 1024 - n%1024
			if got := estimateSize(16386, []blob.HashType{blob.HashSHA256}, nil, nil, f, true); got != n {
				t.Errorf("estimate with chain and time-stamp %d, want %d", got, n)
			}

			// End to end: sign, then read back what was written.
			out, res := signBytes(t, machotest.Exe(machotest.Options{}), "tool", Options{Identity: &id, SigningTime: fixedSigningTime, appleRoots: pki.isApple})
			sig := firstSignature(t, out)
			if got, _ := sig.SuperBlob.Find(blob.SlotRequirements); !bytes.Equal(got, wantSet) {
				t.Errorf("signed RequirementSet\n got %x\nwant %x", got, wantSet)
			}
			if cd := sig.Primary(); cd.TeamID != tc.teamInCD || res.Slices[0].TeamID != tc.teamInCD {
				t.Errorf("CodeDirectory team %q, want %q", cd.TeamID, tc.teamInCD)
			}
			sd, err := cms.Parse(sig.CMS)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []*x509.Certificate{id.Certificate, tc.ca, pki.root} {
				if !containsCert(sd.Certificates, c) {
					t.Errorf("the CMS lacks %q", c.Subject.CommonName)
				}
			}
			p := writeTemp(t, "tool", out)
			rep := mustVerify(t, p, VerifyOptions{Roots: pool(pki.root), At: fixedSigningTime, appleRoots: pki.isApple})
			if c := checkNamed(rep, "designated requirement"); c == nil || c.Err != nil || c.Detail != tc.text {
				t.Errorf("designated requirement check %+v", c)
			}
			if c := checkNamed(rep, "team ID"); c == nil || c.Err != nil || c.Detail != tc.teamInCD {
				t.Errorf("team ID check %+v", c)
			}

			// A look-alike root is not Apple's: the same file fails "anchor apple
			// generic" and its team ID claim, though its x509 chain is fine.
			rep, err = VerifyFile(context.Background(), p, VerifyOptions{Roots: pool(pki.root), At: fixedSigningTime})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"designated requirement", "team ID"} {
				if c := checkNamed(rep, name); c == nil || c.Err == nil {
					t.Errorf("%s accepted a look-alike Apple root: %+v", name, c)
				}
			}
			if c := checkNamed(rep, "certificate chain"); c == nil || c.Err != nil {
				t.Errorf("certificate chain %+v", c)
			}

			// Under the real rule the look-alike chain is signed like a private
			// one: no team ID, the leaf pinned (its O differs from the CA's), and
			// a warning that the "Apple" issuer is not available.
			g, err := resolveIdentity(&id, nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha1.Sum(id.Certificate.Raw)
			if g.appleSigned || g.teamID != "" || g.designated.Kind != requirement.SignerNonApple || g.designated.PinSlot != 0 || !bytes.Equal(g.designated.PinSHA1, sum[:]) {
				t.Errorf("look-alike under the real rule: apple %v team %q designated %+v", g.appleSigned, g.teamID, g.designated)
			}
			if !strings.Contains(g.warning, tc.ca.Subject.CommonName) {
				t.Errorf("warning %q does not name the issuer", g.warning)
			}
		})
	}

	// Without its intermediate a WWDR leaf cannot be chained (Apple's WWDR CAs
	// are not embedded): it is signed like a self-signed one, with a warning
	// saying which CA is missing.
	lone := *pki.leaf(wwdrCA, wwdrKey, "Apple Development", "WWDRTEAM01", applecert.OIDExtIPhoneDeveloper)
	lone.Chain = []*x509.Certificate{pki.root}
	f, err := resolveIdentity(&lone, pki.isApple)
	if err != nil {
		t.Fatal(err)
	}
	if f.appleSigned || f.designated.Kind != requirement.SignerNonApple || !strings.Contains(f.warning, "Apple Worldwide Developer Relations Certification Authority") {
		t.Errorf("unchained Apple Development: apple %v kind %v warning %q", f.appleSigned, f.designated.Kind, f.warning)
	}

	// A Developer ID certificate without a team ID cannot get its requirement.
	noTeam := *pki.leaf(devidCA, devidKey, "Developer ID Application", "X", applecert.OIDExtDeveloperIDApplication)
	nc, _ := pki.issue(devidCA, devidKey, pkix.Name{CommonName: "Developer ID Application: nobody"}, false, []asn1.ObjectIdentifier{applecert.OIDExtDeveloperIDApplication})
	noTeam.Certificate = nc
	noTeam.Chain = []*x509.Certificate{devidCA, pki.root}
	if _, err := resolveIdentity(&noTeam, pki.isApple); err == nil || !strings.Contains(err.Error(), "team ID") {
		t.Errorf("Developer ID without a team ID: %v", err)
	}
}

// An Apple-chained certificate whose CA carries neither marker gets "anchor
// apple", and so does Apple's root itself.
func TestOtherAppleDesignatedRequirement(t *testing.T) {
	pki := newFakePKI(t, "Apple Inc.")
	ca, caKey := pki.intermediate("Apple Application Integration Certification Authority", "Apple Certification Authority", nil)
	id := pki.leaf(ca, caKey, "Some Apple Service", "OTHERTEAM1")
	id.Chain = []*x509.Certificate{ca, pki.root}
	want := specDesignatedSet(specEnc(nil).u32(opAnd).u32(opIdent).str("x").u32(opAnchorApple))
	for _, cert := range []*x509.Certificate{id.Certificate, pki.root} {
		f, err := resolveIdentity(&Identity{Signer: id.Signer, Certificate: cert, Chain: id.Chain}, pki.isApple)
		if err != nil {
			t.Fatal(err)
		}
		dr := requirement.Designated("x", f.designated)
		if !f.appleSigned || dr.String() != `identifier "x" and anchor apple` || !bytes.Equal(requirement.DesignatedSet(dr).Bytes(), want) {
			t.Errorf("%s: apple %v requirement %s", cert.Subject.CommonName, f.appleSigned, dr)
		}
	}
}

// A private CA: the pinned position is the run of issuers sharing the leaf's
// organization (root when all do, per spec §4), and farsign pins the hash of
// the certificate at that position, so the requirement holds for the chain.
func TestPrivateCAPin(t *testing.T) {
	name := func(org, cn string) pkix.Name { return pkix.Name{Organization: []string{org}, CommonName: cn} }
	for _, tc := range []struct {
		name           string
		rootO, interO  string
		wantSlot       int32
		wantPinnedCert int // 0 leaf, 1 intermediate, 2 root
	}{
		{"all the same organization", "Acme", "Acme", requirement.SlotRoot, 2},
		{"root from another organization", "Other", "Acme", 1, 1},
		{"CA from another organization", "Acme", "Other", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := &fakePKI{t: t}
			pki.root, pki.rootKey = pki.issue(nil, nil, name(tc.rootO, "Private Root"), true, nil)
			inter, interKey := pki.issue(pki.root, pki.rootKey, name(tc.interO, "Private Code Signing CA"), true, nil)
			leaf, key := pki.issue(inter, interKey, name("Acme", "Acme Build"), false, nil)
			f, err := resolveIdentity(&Identity{Signer: key, Certificate: leaf, Chain: []*x509.Certificate{pki.root, inter}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			chain := []*x509.Certificate{leaf, inter, pki.root}
			sum := sha1.Sum(chain[tc.wantPinnedCert].Raw)
			if f.appleSigned || f.warning != "" || f.designated.Kind != requirement.SignerNonApple || f.designated.PinSlot != tc.wantSlot || !bytes.Equal(f.designated.PinSHA1, sum[:]) {
				t.Fatalf("designated %+v, want slot %d pinning certificate %d", f.designated, tc.wantSlot, tc.wantPinnedCert)
			}
			dr := requirement.Designated("x", f.designated)
			want := specDesignatedSet(specEnc(nil).u32(opAnd).u32(opIdent).str("x").u32(opAnchorHash, uint32(tc.wantSlot)).data(sum[:]))
			if got := requirement.DesignatedSet(dr).Bytes(); !bytes.Equal(got, want) {
				t.Errorf("RequirementSet\n got %x\nwant %x", got, want)
			}
			ok, why, err := requirement.Eval(dr, &requirement.Context{Identifier: "x", Chain: chain, IsAppleRoot: applecert.IsAppleRoot})
			if err != nil || !ok {
				t.Errorf("the chain does not satisfy its own requirement %s: %s %v", dr, why, err)
			}
		})
	}
}
