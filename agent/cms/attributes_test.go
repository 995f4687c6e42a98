package cms

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Two CodeDirectories (SHA-1 primary, SHA-256 alternate) as codesign writes for old
// deployment targets: both cdhash attributes list both, in slot order; the message
// digest is still SHA-256 of the primary.
func TestSignedAttributesTwoCodeDirectories(t *testing.T) {
	primary := []byte("primary CodeDirectory (SHA-1)")
	alternate := []byte("alternate CodeDirectory (SHA-256)")
	h1 := sha1.Sum(primary)
	h2 := sha256.Sum256(alternate)
	at := time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("x", 3600))
	der, err := SignedAttributes(primary, []CDHash{{crypto.SHA1, h1[:]}, {crypto.SHA256, h2[:]}}, at)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseSignedAttributes(der)
	if err != nil {
		t.Fatalf("ParseSignedAttributes(SignedAttributes(...)): %v", err)
	}
	md := sha256.Sum256(primary)
	if !bytes.Equal(a.MessageDigest, md[:]) {
		t.Error("message digest is not SHA-256 of the primary CodeDirectory")
	}
	if !a.SigningTime.Equal(at.Truncate(time.Second)) {
		t.Errorf("signing time %v, want %v", a.SigningTime, at.Truncate(time.Second))
	}
	if len(a.CDHashes) != 2 || a.CDHashes[0].Hash != crypto.SHA1 || a.CDHashes[1].Hash != crypto.SHA256 ||
		!bytes.Equal(a.CDHashes[0].Digest, h1[:]) || !bytes.Equal(a.CDHashes[1].Digest, h2[:]) {
		t.Errorf("cdhashes %+v", a.CDHashes)
	}
	if len(a.CDHashesPlist.Hashes) != 2 || !bytes.Equal(a.CDHashesPlist.Hashes[1], h2[:20]) {
		t.Errorf("plist hashes %x", a.CDHashesPlist.Hashes)
	}
	if !strings.Contains(string(a.CDHashesPlist.Raw), "\t<array>\n\t\t<data>\n\t\t") {
		t.Errorf("plist is not in Apple's XML layout:\n%s", a.CDHashesPlist.Raw)
	}
}

func TestSignedAttributesTimeEncoding(t *testing.T) {
	cd := []byte("cd")
	sum := sha256.Sum256(cd)
	for _, tc := range []struct {
		at  time.Time
		tag byte
	}{
		{time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), 0x17}, // UTCTime
		{time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), 0x18},      // GeneralizedTime
		{time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC), 0x18},
	} {
		der, err := SignedAttributes(cd, []CDHash{{crypto.SHA256, sum[:]}}, tc.at)
		if err != nil {
			t.Fatal(err)
		}
		a, err := ParseSignedAttributes(der)
		if err != nil {
			t.Fatal(err)
		}
		if !a.SigningTime.Equal(tc.at) {
			t.Errorf("%v round-tripped as %v", tc.at, a.SigningTime)
		}
		for _, attr := range a.Attributes {
			if attr.Type.Equal(oidAttrSigningTime) && attr.Values[0][0] != tc.tag {
				t.Errorf("%v encoded with tag %#x, want %#x", tc.at, attr.Values[0][0], tc.tag)
			}
		}
	}
}

func TestSignedAttributesRejectsBadInput(t *testing.T) {
	cd := []byte("code directory")
	sum := sha256.Sum256(cd)
	s1 := sha1.Sum(cd)
	m5 := md5.Sum(cd)
	good := []CDHash{{crypto.SHA256, sum[:]}}
	now := time.Now()
	for name, tc := range map[string]struct {
		cd       []byte
		cdhashes []CDHash
		at       time.Time
		want     string
	}{
		"empty CD":        {nil, good, now, "empty primary"},
		"no cdhashes":     {cd, nil, now, "at least one"},
		"wrong primary":   {[]byte("other"), good, now, "not the digest of the primary"},
		"short digest":    {cd, []CDHash{{crypto.SHA256, sum[:20]}}, now, "20-byte digest"},
		"MD5":             {cd, []CDHash{{crypto.MD5, m5[:]}}, now, "unsupported hash"},
		"zero time":       {cd, good, time.Time{}, "signing time is required"},
		"too many":        {cd, bytes9(good), now, "at most 8"},
		"sha1 mislabeled": {cd, []CDHash{{crypto.SHA256, append(s1[:], make([]byte, 12)...)}}, now, "not the digest"},
	} {
		if _, err := SignedAttributes(tc.cd, tc.cdhashes, tc.at); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
}

func bytes9(c []CDHash) []CDHash {
	var out []CDHash
	for range 9 {
		out = append(out, c...)
	}
	return out
}

// rebuild re-encodes a parsed attribute list in the given order, without sorting.
func rebuild(t *testing.T, attrs []Attribute, tag cbasn1.Tag) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(a.Type)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, v := range a.Values {
						b.AddBytes(v)
					}
				})
			})
		}
	})
	return b.BytesOrPanic()
}

func TestParseSignedAttributesStrict(t *testing.T) {
	node, _ := parseNode(t)
	golden := node.Signer.SignedAttrs.Raw // Apple's own DER
	if golden[1] != 0x82 {
		t.Fatalf("node's attributes have a %#x length form; the cases below assume 0x82", golden[1])
	}
	a, err := ParseSignedAttributes(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rebuild(t, a.Attributes, cbasn1.SET), golden) {
		t.Fatal("test helper rebuild does not round-trip")
	}
	attrs := a.Attributes
	swap := append([]Attribute(nil), attrs...)
	swap[0], swap[1] = swap[1], swap[0]
	dup := append(append([]Attribute(nil), attrs...), attrs[0])
	var noDigest, noType []Attribute
	for _, x := range attrs {
		if !x.Type.Equal(oidAttrMessageDigest) {
			noDigest = append(noDigest, x)
		}
		if !x.Type.Equal(oidAttrContentType) {
			noType = append(noType, x)
		}
	}
	withType := func(oid asn1.ObjectIdentifier) []Attribute {
		out := append([]Attribute(nil), attrs...)
		v, _ := asn1.Marshal(oid)
		out[0] = Attribute{Type: oidAttrContentType, Values: [][]byte{v}}
		return out
	}
	mutatedPlist := append([]Attribute(nil), attrs...)
	for i, x := range mutatedPlist {
		if x.Type.Equal(oidAttrAppleCDHashesPlist) {
			v := bytes.Clone(x.Values[0])
			v[bytes.Index(v, []byte("<data>"))+9] ^= 0x01 // a base64 character
			mutatedPlist[i] = Attribute{Type: x.Type, Values: [][]byte{v}}
		}
	}
	indefinite := append([]byte{0x31, 0x80}, golden[4:]...)
	indefinite = append(indefinite, 0, 0)

	for name, tc := range map[string]struct {
		der  []byte
		want string
	}{
		"unsorted":           {rebuild(t, swap, cbasn1.SET), "DER SET OF order"},
		"duplicate":          {rebuild(t, dup, cbasn1.SET), "DER SET OF order"},
		"no message digest":  {rebuild(t, noDigest, cbasn1.SET), "lack the message-digest"},
		"no content type":    {rebuild(t, noType, cbasn1.SET), "lack the content-type"},
		"TSTInfo type":       {rebuild(t, withType(oidTSTInfo), cbasn1.SET), "not id-data"},
		"plist mismatch":     {rebuild(t, mutatedPlist, cbasn1.SET), "plist"},
		"[0] tag":            {rebuild(t, attrs, cbasn1.Tag(0).ContextSpecific().Constructed()), "not a DER SET"},
		"BER indefinite":     {indefinite, "not a DER SET"},
		"trailing byte":      {append(bytes.Clone(golden), 0), "trailing bytes"},
		"truncated":          {golden[:len(golden)-1], "not a DER SET"},
		"empty":              {nil, "not a DER SET"},
		"random":             {[]byte("hello, please sign me"), "not a DER SET"},
		"oversized":          {make([]byte, MaxSignedAttributesSize+1), "more than"},
		"empty set":          {[]byte{0x31, 0x00}, "lack the message-digest"},
		"attribute no value": {[]byte{0x31, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03, 0x31, 0x00}, "has no value"},
	} {
		if _, err := ParseSignedAttributes(tc.der); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
	// Duplicates are refused by type, not only by ordering (the lenient parser used
	// inside SignerInfos checks this too).
	if _, err := parseAttributeSet(rebuild(t, dup, cbasn1.SET), false); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("lenient parse of a duplicate attribute: %v", err)
	}
}

// FuzzParseSignedAttributes feeds the parser a signer sees before signing. Seeds:
// Apple's attributes from node, and in testdata/fuzz/FuzzParseSignedAttributes
// attribute sets SignedAttributes made (one and two CodeDirectories).
func FuzzParseSignedAttributes(f *testing.F) {
	sd, err := Parse(readTestdata(f, "node-cms.der"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sd.Signer.SignedAttrs.Raw)
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := ParseSignedAttributes(der)
		if err != nil {
			return
		}
		// Accepted input is canonical DER: re-encoding the parsed list in order
		// reproduces it exactly.
		if got := rebuild(t, a.Attributes, cbasn1.SET); !bytes.Equal(got, der) {
			t.Fatalf("accepted non-canonical input\n in %x\nout %x", der, got)
		}
		if a.MessageDigest == nil || !a.ContentType.Equal(oidData) {
			t.Fatal("accepted attributes without message digest or id-data content type")
		}
	})
}

func TestDescribe(t *testing.T) {
	sd, _ := parseNode(t)
	got := sd.Signer.Describe()
	want := "content type:   id-data (a detached code signature)\n" +
		"signing time:   2026-09-21T16:44:02Z\n" +
		"message digest: " + nodeCDSHA256 + "\n" +
		"cdhash 0:       sha256 " + nodeCDSHA256 + "\n"
	if got != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", got, want)
	}
}
