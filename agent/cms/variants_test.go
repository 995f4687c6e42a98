package cms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// variant describes a hand-built SignedData, for structures Sign never writes.
type variant struct {
	useSKI       bool
	digestOID    asn1.ObjectIdentifier // SignerInfo digest algorithm
	listedDigest asn1.ObjectIdentifier // SignedData digestAlgorithms entry
	sigOID       asn1.ObjectIdentifier
	contentType  asn1.ObjectIdentifier
	eContent     []byte
	signers      int
	noCerts      bool
	sigParams    []byte // raw AlgorithmIdentifier parameters
}

func buildVariant(t *testing.T, id identity, attrs []byte, v variant) []byte {
	t.Helper()
	if v.digestOID == nil {
		v.digestOID = oidSHA256
	}
	if v.listedDigest == nil {
		v.listedDigest = v.digestOID
	}
	if v.sigOID == nil {
		v.sigOID = oidSHA256WithRSA
	}
	if v.contentType == nil {
		v.contentType = oidData
	}
	if v.signers == 0 {
		v.signers = 1
	}
	sig, err := crypto.SignMessage(id.key, rand.Reader, attrs, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(3)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlgorithmIdentifier(b, v.listedDigest, false) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(v.contentType)
					if v.eContent != nil {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1OctetString(v.eContent) })
					}
				})
				if !v.noCerts {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(id.cert.Raw) })
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for range v.signers {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							if v.useSKI {
								b.AddASN1Int64(3)
								b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(id.cert.SubjectKeyId) })
							} else {
								b.AddASN1Int64(1)
								b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddBytes(id.cert.RawIssuer)
									b.AddASN1BigInt(id.cert.SerialNumber)
								})
							}
							addAlgorithmIdentifier(b, v.digestOID, false)
							b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(setContent(attrs)) })
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1ObjectIdentifier(v.sigOID)
								b.AddBytes(v.sigParams)
							})
							b.AddASN1OctetString(sig)
						})
					}
				})
			})
		})
	})
	return b.BytesOrPanic()
}

func TestParseVariants(t *testing.T) {
	id := selfSigned(t, applecert.RSA2048)
	cd := testCD(t, 64)
	attrs := attrsFor(t, cd)

	// subjectKeyIdentifier signer identification (SignerInfo version 3) and the
	// plain rsaEncryption signature OID (the digest then comes from digestAlgorithm,
	// as in Apple's time-stamp tokens) both verify.
	if len(id.cert.SubjectKeyId) == 0 {
		t.Fatal("test certificate has no subject key identifier")
	}
	for name, v := range map[string]variant{
		"SKI":           {useSKI: true},
		"rsaEncryption": {sigOID: oidRSAEncryption},
	} {
		sd, err := Parse(buildVariant(t, id, attrs, v))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sd.Verify(cd); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
	}

	signed, err := Sign(t.Context(), attrs, id.key, id.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	blob := binary.BigEndian.AppendUint32(nil, 0xfade0b01)
	blob = binary.BigEndian.AppendUint32(blob, uint32(8+len(signed)))
	blob = append(blob, signed...)
	sd, _ := Parse(readTestdata(t, "node-cms.der"))

	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"BlobWrapper":       {blob, "BlobWrapper"},
		"time-stamp token":  {sd.Signer.TimeStamp.Token, "code signatures sign id-data"},
		"embedded content":  {buildVariant(t, id, attrs, variant{eContent: []byte("x")}), "embeds content"},
		"two signers":       {buildVariant(t, id, attrs, variant{signers: 2}), "more than one SignerInfo"},
		"MD5 digest":        {buildVariant(t, id, attrs, variant{digestOID: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}), "unsupported digest algorithm"},
		"unlisted digest":   {buildVariant(t, id, attrs, variant{listedDigest: oidSHA384}), "not listed in digestAlgorithms"},
		"unknown sig alg":   {buildVariant(t, id, attrs, variant{sigOID: asn1.ObjectIdentifier{1, 2, 3}}), "unsupported signature algorithm"},
		"PSS parameters":    {buildVariant(t, id, attrs, variant{sigParams: []byte{0x30, 0x00}}), "unexpected parameters"},
		"not SignedData":    {[]byte{0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}, "not SignedData"},
		"trailing garbage":  {append(bytes.Clone(signed), 0x00), "trailing"},
		"truncated":         {signed[:len(signed)-10], "truncated"},
		"empty":             {nil, "empty input"},
		"oversized":         {make([]byte, MaxSize+1), "more than"},
		"not ASN.1":         {[]byte("MZ this is not a CMS"), "cms:"},
		"ContentInfo only":  {[]byte{0x30, 0x00}, "malformed ContentInfo"},
		"deeply nested BER": {append(bytes.Repeat([]byte{0x30, 0x80}, 100), bytes.Repeat([]byte{0, 0}, 100)...), "nesting"},
	} {
		if _, err := Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want an error containing %q", name, err, tc.want)
		}
	}

	// A CMS without the signer's certificate parses (to be shown) but does not verify.
	noCert, err := Parse(buildVariant(t, id, attrs, variant{noCerts: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := noCert.Verify(cd); !errors.Is(err, ErrNoSignerCertificate) {
		t.Errorf("Verify without the signer certificate = %v", err)
	}
	if _, err := noCert.VerifyChain(id.roots, id.cert.NotBefore); !errors.Is(err, ErrNoSignerCertificate) {
		t.Errorf("VerifyChain without the signer certificate = %v", err)
	}
	// An ECDSA signature algorithm over an RSA key is refused, not misinterpreted.
	mixed, err := Parse(buildVariant(t, id, attrs, variant{sigOID: oidECDSAWithSHA256}))
	if err != nil {
		t.Fatal(err)
	}
	if err := mixed.Verify(cd); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "RSA key") {
		t.Errorf("ECDSA algorithm with an RSA key: %v", err)
	}
}

// Apple's cdhash attributes must name the content Verify is given first.
func TestVerifyCDHashAttributes(t *testing.T) {
	id := selfSigned(t, applecert.ECDSAP256)
	cd := testCD(t, 64)
	other := testCD(t, 64)
	md := sha256.Sum256(cd)
	otherSum := sha256.Sum256(other)
	// message-digest over cd, but 9.2 and 9.1 naming another CodeDirectory.
	attrs, err := buildSignedAttributes(md[:], []CDHash{{crypto.SHA256, otherSum[:]}}, time.Date(2023, 11, 5, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	der, err := Sign(t.Context(), attrs, id.key, id.cert, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.Verify(cd); !errors.Is(err, ErrCDHash) {
		t.Errorf("Verify with a foreign cdhash = %v, want ErrCDHash", err)
	}
}
