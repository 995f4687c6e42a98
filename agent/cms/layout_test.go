package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testtsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// cmsLayout is a DER ContentInfo/SignedData cut into its encoded fields (each a
// complete TLV), so two CMS blobs can be compared field by field.
type cmsLayout struct {
	contentType, version, digestAlgorithms, encapContentInfo []byte
	certificates                                             [][]byte
	signerVersion, signerID, digestAlgorithm                 []byte
	signedAttrs                                              []byte // with its [0] tag
	signatureAlgorithm, signature                            []byte
	unsignedAttrs                                            []byte // with its [1] tag; nil when absent
}

// splitCMS cuts der into a cmsLayout, failing if anything is left over: whatever is
// not compared field by field cannot hide in the input.
func splitCMS(t *testing.T, der []byte) cmsLayout {
	t.Helper()
	var l cmsLayout
	in := cryptobyte.String(der)
	var ci, explicit, sd, certs, signerInfos, si cryptobyte.String
	var tag cbasn1.Tag
	ok := in.ReadASN1(&ci, cbasn1.SEQUENCE) && in.Empty() &&
		ci.ReadASN1Element((*cryptobyte.String)(&l.contentType), cbasn1.OBJECT_IDENTIFIER) &&
		ci.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) && ci.Empty() &&
		explicit.ReadASN1(&sd, cbasn1.SEQUENCE) && explicit.Empty() &&
		sd.ReadASN1Element((*cryptobyte.String)(&l.version), cbasn1.INTEGER) &&
		sd.ReadASN1Element((*cryptobyte.String)(&l.digestAlgorithms), cbasn1.SET) &&
		sd.ReadASN1Element((*cryptobyte.String)(&l.encapContentInfo), cbasn1.SEQUENCE) &&
		sd.ReadASN1(&certs, cbasn1.Tag(0).ContextSpecific().Constructed()) &&
		sd.ReadASN1(&signerInfos, cbasn1.SET) && sd.Empty() &&
		signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) && signerInfos.Empty() &&
		si.ReadASN1Element((*cryptobyte.String)(&l.signerVersion), cbasn1.INTEGER) &&
		si.ReadASN1Element((*cryptobyte.String)(&l.signerID), cbasn1.SEQUENCE) &&
		si.ReadASN1Element((*cryptobyte.String)(&l.digestAlgorithm), cbasn1.SEQUENCE) &&
		si.ReadASN1Element((*cryptobyte.String)(&l.signedAttrs), cbasn1.Tag(0).ContextSpecific().Constructed()) &&
		si.ReadASN1Element((*cryptobyte.String)(&l.signatureAlgorithm), cbasn1.SEQUENCE) &&
		si.ReadASN1Element((*cryptobyte.String)(&l.signature), cbasn1.OCTET_STRING)
	if !ok {
		t.Fatal("not a SignedData with exactly the fields Apple writes")
	}
	if !si.Empty() {
		if !si.ReadAnyASN1Element((*cryptobyte.String)(&l.unsignedAttrs), &tag) || tag != cbasn1.Tag(1).ContextSpecific().Constructed() || !si.Empty() {
			t.Fatal("SignerInfo has trailing fields other than unsigned attributes")
		}
	}
	for !certs.Empty() {
		var c cryptobyte.String
		if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
			t.Fatal("malformed certificate set")
		}
		l.certificates = append(l.certificates, c)
	}
	return l
}

// nodeChain returns the CA certificates of node's CMS (everything but the leaf).
func nodeChain(sd *SignedData) [][]byte {
	var out [][]byte
	for _, c := range sd.Certificates {
		if c != sd.Signer.SignerCertificate {
			out = append(out, c.Raw)
		}
	}
	return out
}

// Sign, given the signed attributes of Apple's own signature on node and node's
// certificate chain, writes the SignedData Apple's codesign wrote, field for field:
// versions, digest algorithm sets with their NULL parameters, detached id-data,
// certificate set, signed attributes and signature algorithm are byte-identical to
// Apple's (after its BER is converted to DER). The fields that must differ, because
// the key and certificate are ours, are checked against values computed here
// independently: the issuer-and-serial signer identifier, and the RSA PKCS #1 v1.5
// signature, which is deterministic.
func TestSignMatchesAppleLayout(t *testing.T) {
	node, _ := parseNode(t)
	apple := splitCMS(t, node.Raw)
	attrs := node.Signer.SignedAttrs.Raw
	id := selfSigned(t, applecert.RSA2048)
	var chain = node.Certificates[:0:0]
	for _, c := range node.Certificates {
		if c != node.Signer.SignerCertificate {
			chain = append(chain, c)
		}
	}
	der, err := Sign(context.Background(), attrs, id.key, id.cert, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := splitCMS(t, der)

	for _, f := range []struct {
		name        string
		got, apples []byte
	}{
		{"content type", ours.contentType, apple.contentType},
		{"SignedData version", ours.version, apple.version},
		{"digestAlgorithms", ours.digestAlgorithms, apple.digestAlgorithms},
		{"encapContentInfo", ours.encapContentInfo, apple.encapContentInfo},
		{"SignerInfo version", ours.signerVersion, apple.signerVersion},
		{"SignerInfo digestAlgorithm", ours.digestAlgorithm, apple.digestAlgorithm},
		{"signed attributes", ours.signedAttrs, apple.signedAttrs},
		{"signatureAlgorithm", ours.signatureAlgorithm, apple.signatureAlgorithm},
	} {
		if !bytes.Equal(f.got, f.apples) {
			t.Errorf("%s differs from Apple's\n got %x\nwant %x", f.name, f.got, f.apples)
		}
	}
	// The signed attributes are the input, untouched, under the [0] tag.
	if !bytes.Equal(ours.signedAttrs[1:], attrs[1:]) || ours.signedAttrs[0] != 0xa0 {
		t.Error("the embedded signed attributes are not the bytes that were signed")
	}

	// Certificates: Apple's CAs plus our leaf, in DER SET OF order.
	want := append(nodeChain(node), id.cert.Raw)
	if len(ours.certificates) != len(want) {
		t.Fatalf("%d certificates, want %d", len(ours.certificates), len(want))
	}
	for _, w := range want {
		found := false
		for _, c := range ours.certificates {
			found = found || bytes.Equal(c, w)
		}
		if !found {
			t.Errorf("certificate set lacks %x…", w[:16])
		}
	}
	for i := 1; i < len(ours.certificates); i++ {
		if bytes.Compare(ours.certificates[i-1], ours.certificates[i]) >= 0 {
			t.Error("certificate set not in DER SET OF order")
		}
	}
	if len(apple.certificates) != len(want) {
		t.Errorf("Apple's CMS has %d certificates, ours %d", len(apple.certificates), len(want))
	}

	// Signer identifier: issuerAndSerialNumber of our certificate.
	sid, err := asn1.Marshal(struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}{asn1.RawValue{FullBytes: id.cert.RawIssuer}, id.cert.SerialNumber})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.signerID, sid) {
		t.Errorf("signer identifier\n got %x\nwant %x", ours.signerID, sid)
	}
	// Signature: PKCS #1 v1.5 over SHA-256 of the attributes, computed here.
	digest := sha256.Sum256(attrs)
	wantSig, err := rsa.SignPKCS1v15(nil, id.key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var sig cryptobyte.String
	s := cryptobyte.String(ours.signature)
	if !s.ReadASN1(&sig, cbasn1.OCTET_STRING) || !bytes.Equal(sig, wantSig) {
		t.Errorf("signature is not RSA PKCS #1 v1.5 SHA-256 over the attributes")
	}
	if ours.unsignedAttrs != nil {
		t.Error("unsigned attributes without a time-stamper")
	}
	// Deterministic: the same inputs give the same bytes.
	again, err := Sign(context.Background(), attrs, id.key, id.cert, chain, nil)
	if err != nil || !bytes.Equal(again, der) {
		t.Errorf("Sign is not deterministic for RSA: %v", err)
	}

	// Round trip: Parse keeps the exact bytes, and the certificate verifies the
	// signature over Apple's attributes.
	sd, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sd.Raw, der) || !bytes.Equal(sd.Signer.SignedAttrs.Raw, attrs) || !sd.Signer.SignerCertificate.Equal(id.cert) {
		t.Error("Parse does not round-trip Sign's output")
	}
	if !bytes.Equal(sd.Signer.MessageDigest, node.Signer.MessageDigest) {
		t.Error("message digest changed")
	}

	// With node's CodeDirectory (the npm fixture): our CMS verifies over Apple's real
	// content, in Verify and in openssl.
	t.Run("node CodeDirectory", func(t *testing.T) {
		cd, _ := nodeSignature(t)
		if err := sd.Verify(cd); err != nil {
			t.Fatalf("Verify(node CodeDirectory): %v", err)
		}
		dir := t.TempDir()
		cmsPath, cdPath := writeFile(t, dir, "cms.der", der), writeFile(t, dir, "cd.bin", cd)
		out, err := openssl(t, "cms", "-verify", "-inform", "DER", "-in", cmsPath, "-content", cdPath, "-binary", "-noverify", "-out", os.DevNull)
		if err != nil || !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify: %v\n%s", err, out)
		}
	})
}

// With a time-stamp, the one unsigned attribute is laid out as in Apple's CMS: the
// same attribute type, one value, a token over SHA-256 of the signature.
func TestSignTimestampLayoutMatchesApple(t *testing.T) {
	node, _ := parseNode(t)
	apple := splitCMS(t, node.Raw)
	tsa := testtsa.New(t)
	id := selfSigned(t, applecert.RSA2048)
	der, err := Sign(context.Background(), node.Signer.SignedAttrs.Raw, id.key, id.cert, nil, &HTTPTimestamper{URL: tsa.URL()})
	if err != nil {
		t.Fatal(err)
	}
	ours := splitCMS(t, der)
	attrType := func(l cmsLayout) (typ []byte, values int) {
		s := cryptobyte.String(l.unsignedAttrs)
		var set, attr, vals cryptobyte.String
		var oid cryptobyte.String
		if !s.ReadASN1(&set, cbasn1.Tag(1).ContextSpecific().Constructed()) || !s.Empty() ||
			!set.ReadASN1(&attr, cbasn1.SEQUENCE) || !set.Empty() ||
			!attr.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) || !attr.ReadASN1(&vals, cbasn1.SET) || !attr.Empty() {
			t.Fatalf("unsigned attributes are not one Attribute: %x", l.unsignedAttrs)
		}
		for !vals.Empty() {
			var v cryptobyte.String
			if !vals.ReadASN1Element(&v, cbasn1.SEQUENCE) {
				t.Fatal("attribute value is not a ContentInfo")
			}
			values++
		}
		return oid, values
	}
	gotType, gotN := attrType(ours)
	wantType, wantN := attrType(apple)
	if !bytes.Equal(gotType, wantType) || gotN != 1 || wantN != 1 {
		t.Errorf("time-stamp attribute %x with %d values; Apple's is %x with %d", gotType, gotN, wantType, wantN)
	}
	sd, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.VerifyTimestamp(tsa.Roots()); err != nil {
		t.Errorf("VerifyTimestamp: %v", err)
	}
	if sum := sha256.Sum256(sd.Signer.Signature); !bytes.Equal(sd.Signer.TimeStamp.MessageImprint, sum[:]) {
		t.Error("token does not time-stamp SHA-256 of the signature")
	}
}

// ECDSA keys: the same layout with ecdsa-with-SHA256, whose AlgorithmIdentifier has
// no parameters (RFC 5758 §3.2), and an ASN.1 signature over the attributes.
func TestSignECDSALayout(t *testing.T) {
	node, _ := parseNode(t)
	apple := splitCMS(t, node.Raw)
	attrs := node.Signer.SignedAttrs.Raw
	id := selfSigned(t, applecert.ECDSAP256)
	der, err := Sign(context.Background(), attrs, id.key, id.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ours := splitCMS(t, der)
	ecdsaWithSHA256 := []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	if !bytes.Equal(ours.signatureAlgorithm, ecdsaWithSHA256) {
		t.Errorf("signatureAlgorithm %x, want %x", ours.signatureAlgorithm, ecdsaWithSHA256)
	}
	if !bytes.Equal(ours.digestAlgorithms, apple.digestAlgorithms) || !bytes.Equal(ours.digestAlgorithm, apple.digestAlgorithm) ||
		!bytes.Equal(ours.signedAttrs, apple.signedAttrs) || !bytes.Equal(ours.encapContentInfo, apple.encapContentInfo) {
		t.Error("ECDSA CMS differs from Apple's layout outside the signature algorithm")
	}
	var sig cryptobyte.String
	s := cryptobyte.String(ours.signature)
	digest := sha256.Sum256(attrs)
	if !s.ReadASN1(&sig, cbasn1.OCTET_STRING) || !ecdsa.VerifyASN1(id.cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("signature is not ECDSA over SHA-256 of the attributes")
	}
	if len(ours.certificates) != 1 || !bytes.Equal(ours.certificates[0], id.cert.Raw) {
		t.Error("certificate set is not the leaf alone")
	}
}
