package cms

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"howett.net/plist"
)

// CDHash is one CodeDirectory's digest for Apple's cdhash attributes.
type CDHash struct {
	// Hash is the CodeDirectory's own hash type (SHA-1 for a legacy primary
	// CodeDirectory, SHA-256 for modern ones).
	Hash crypto.Hash
	// Digest is the full digest of the CodeDirectory blob with Hash.
	Digest []byte
}

// MaxSignedAttributesSize bounds the signed attributes ParseSignedAttributes accepts.
// Apple's are about 470 bytes for one CodeDirectory; each more adds under 150.
const MaxSignedAttributesSize = 16 << 10

// maxCodeDirectories bounds how many cdhashes one signature may list. Apple writes at
// most two (SHA-1 + SHA-256); rcodesign allows a few more digest types.
const maxCodeDirectories = 8

// cdhashTruncatedLen is the length of the cdhashes in Apple's 9.1 plist.
const cdhashTruncatedLen = 20

// SignedAttributes returns the DER of the signed attributes as a universal SET (tag
// 0x31): content-type (id-data), signing-time, message-digest (SHA-256 of primaryCD),
// 1.2.840.113635.100.9.2 (one value per CodeDirectory, in slot order) and
// 1.2.840.113635.100.9.1 (Apple's XML plist of 20-byte truncated cdhashes), sorted as
// a DER SET OF. This is exactly the message a (remote) signer signs.
//
// primaryCD is the slot-0 CodeDirectory blob; cdhashes lists every CodeDirectory in
// slot order, so cdhashes[0] must be primaryCD's own digest — that is checked, as it
// catches a CodeDirectory changed after it was hashed.
func SignedAttributes(primaryCD []byte, cdhashes []CDHash, signingTime time.Time) ([]byte, error) {
	if len(primaryCD) == 0 {
		return nil, errors.New("cms: empty primary CodeDirectory")
	}
	if len(cdhashes) == 0 {
		return nil, errors.New("cms: at least one cdhash is required")
	}
	if err := checkCDHashes(cdhashes); err != nil {
		return nil, err
	}
	h := cdhashes[0].Hash.New()
	h.Write(primaryCD)
	if !bytes.Equal(h.Sum(nil), cdhashes[0].Digest) {
		return nil, errors.New("cms: cdhashes[0] is not the digest of the primary CodeDirectory")
	}
	md := sha256.Sum256(primaryCD)
	return buildSignedAttributes(md[:], cdhashes, signingTime)
}

func checkCDHashes(cdhashes []CDHash) error {
	if len(cdhashes) > maxCodeDirectories {
		return fmt.Errorf("cms: %d cdhashes; at most %d CodeDirectories are supported", len(cdhashes), maxCodeDirectories)
	}
	for i, c := range cdhashes {
		if _, ok := oidForHash(c.Hash); !ok {
			return fmt.Errorf("cms: cdhashes[%d]: unsupported hash %v", i, c.Hash)
		}
		if len(c.Digest) != c.Hash.Size() {
			return fmt.Errorf("cms: cdhashes[%d]: %d-byte digest for %v (want %d bytes)", i, len(c.Digest), c.Hash, c.Hash.Size())
		}
	}
	return nil
}

// buildSignedAttributes encodes the Apple attribute set from an already computed
// message digest. Split out so tests can rebuild golden sets whose CodeDirectory bytes
// are not at hand.
func buildSignedAttributes(messageDigest []byte, cdhashes []CDHash, signingTime time.Time) ([]byte, error) {
	if signingTime.IsZero() {
		return nil, errors.New("cms: signing time is required")
	}
	if err := checkCDHashes(cdhashes); err != nil {
		return nil, err
	}
	t := signingTime.UTC().Truncate(time.Second)

	attrs := [][]byte{
		encodeAttribute(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }),
		encodeAttribute(oidAttrSigningTime, func(b *cryptobyte.Builder) { addTime(b, t) }),
		encodeAttribute(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(messageDigest) }),
		encodeAttribute(oidAttrAppleCDHashes, func(b *cryptobyte.Builder) {
			for _, c := range cdhashes {
				oid, _ := oidForHash(c.Hash)
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oid)
					b.AddASN1OctetString(c.Digest)
				})
			}
		}),
		encodeAttribute(oidAttrAppleCDHashesPlist, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(cdhashesPlist(cdhashes))
		}),
	}
	for _, a := range attrs {
		if a == nil {
			return nil, errors.New("cms: encoding signed attributes failed")
		}
	}
	return encodeSetOf(attrs)
}

// addTime writes a CMS Time: UTCTime for 1950–2049 as RFC 5652 §11.3 requires (and as
// Apple and rcodesign write it), GeneralizedTime outside that range.
func addTime(b *cryptobyte.Builder, t time.Time) {
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

// encodeAttribute encodes Attribute ::= SEQUENCE { attrType OID, attrValues SET }.
// values adds the value(s) to the SET.
func encodeAttribute(oid asn1.ObjectIdentifier, values func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, values)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil
	}
	return out
}

// encodeSetOf wraps DER elements in a universal SET, sorted as DER requires (X.690
// §11.6: by encoding, compared as octet strings).
func encodeSetOf(elems [][]byte) ([]byte, error) {
	sorted := append([][]byte(nil), elems...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, e := range sorted {
			b.AddBytes(e)
		}
	})
	return b.Bytes()
}

// cdhashesPlist renders Apple's cdhashes plist byte-for-byte as codesign and rcodesign
// write it: Apple's XML writer layout, one <data> per CodeDirectory in slot order,
// each the digest truncated to 20 bytes.
func cdhashesPlist(cdhashes []CDHash) []byte {
	var s strings.Builder
	s.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" +
		"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" +
		"<plist version=\"1.0\">\n<dict>\n\t<key>cdhashes</key>\n\t<array>\n")
	for _, c := range cdhashes {
		s.WriteString("\t\t<data>\n\t\t")
		s.WriteString(base64.StdEncoding.EncodeToString(c.Digest[:cdhashTruncatedLen]))
		s.WriteString("\n\t\t</data>\n")
	}
	s.WriteString("\t</array>\n</dict>\n</plist>\n")
	return []byte(s.String())
}

// Attribute is one CMS attribute as encoded.
type Attribute struct {
	Type asn1.ObjectIdentifier
	// Values holds the DER encoding of each value, in encoded order.
	Values [][]byte
}

// CDHashesPlist is Apple's 1.2.840.113635.100.9.1 attribute.
type CDHashesPlist struct {
	// Raw is the plist exactly as signed.
	Raw []byte
	// Hashes are the decoded <data> entries: 20-byte truncated cdhashes in slot order.
	Hashes [][]byte
}

// SignedAttrs is a parsed set of CMS signed attributes. (The name differs from the
// SignedAttributes constructor only because Go needs it to.)
type SignedAttrs struct {
	// Raw is the DER of the set as a universal SET (tag 0x31): for a SignerInfo,
	// the original bytes with the [0] tag swapped, never re-encoded. It is what
	// the signature covers.
	Raw []byte
	// ContentType is the content-type attribute (id-data for code signatures).
	ContentType asn1.ObjectIdentifier
	// SigningTime is the signing-time attribute, zero when absent.
	SigningTime time.Time
	// MessageDigest is the message-digest attribute: for code signatures, the
	// SHA-256 of the primary CodeDirectory.
	MessageDigest []byte
	// CDHashes is Apple's 9.2 attribute: each CodeDirectory's full digest.
	CDHashes []CDHash
	// CDHashesPlist is Apple's 9.1 attribute, nil when absent.
	CDHashesPlist *CDHashesPlist
	// Attributes lists every attribute, recognised or not, in encoded order.
	Attributes []Attribute
}

// ParseSignedAttributes parses a DER universal SET of signed attributes: what a
// signer is asked to sign. The signer uses it to describe a request and to refuse
// anything that isn't one, so it is strict: DER only (sorted, minimal lengths, no
// trailing bytes), at most MaxSignedAttributesSize bytes, each attribute type at most
// once, content-type id-data and a message digest present, and Apple's two cdhash
// attributes consistent with each other.
func ParseSignedAttributes(der []byte) (*SignedAttrs, error) {
	if len(der) > MaxSignedAttributesSize {
		return nil, fmt.Errorf("cms: signed attributes are %d bytes, more than the %d allowed", len(der), MaxSignedAttributesSize)
	}
	a, err := parseAttributeSet(der, true)
	if err != nil {
		return nil, err
	}
	if a.ContentType == nil {
		return nil, errors.New("cms: signed attributes lack the content-type attribute")
	}
	if !a.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("cms: signed attributes have content type %v, not id-data as code signatures do", a.ContentType)
	}
	return a, nil
}

// parseAttributeSet parses a universal SET of attributes. strict additionally demands
// DER ordering; both modes reject duplicate attribute types and malformed values of
// the attributes this package interprets.
func parseAttributeSet(der []byte, strict bool) (*SignedAttrs, error) {
	in := cryptobyte.String(der)
	var set cryptobyte.String
	if !in.ReadASN1(&set, cbasn1.SET) {
		return nil, errors.New("cms: signed attributes are not a DER SET")
	}
	if !in.Empty() {
		return nil, errors.New("cms: trailing bytes after the signed attributes")
	}
	a := &SignedAttrs{Raw: der}
	var prev []byte
	seen := map[string]bool{}
	for !set.Empty() {
		var elem cryptobyte.String
		if !set.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
			return nil, errors.New("cms: malformed attribute")
		}
		if strict && prev != nil && bytes.Compare(prev, elem) >= 0 {
			return nil, errors.New("cms: signed attributes are not in DER SET OF order")
		}
		prev = elem
		attr, err := parseAttribute(elem)
		if err != nil {
			return nil, err
		}
		key := attr.Type.String()
		if seen[key] {
			return nil, fmt.Errorf("cms: attribute %v appears twice", attr.Type)
		}
		seen[key] = true
		a.Attributes = append(a.Attributes, attr)
		if err := a.interpret(attr); err != nil {
			return nil, err
		}
	}
	if a.MessageDigest == nil {
		return nil, errors.New("cms: signed attributes lack the message-digest attribute")
	}
	if a.CDHashesPlist != nil && a.CDHashes != nil {
		if len(a.CDHashesPlist.Hashes) != len(a.CDHashes) {
			return nil, fmt.Errorf("cms: cdhashes plist lists %d hashes but the 9.2 attribute %d", len(a.CDHashesPlist.Hashes), len(a.CDHashes))
		}
		for i, h := range a.CDHashesPlist.Hashes {
			if subtle.ConstantTimeCompare(h, a.CDHashes[i].Digest[:cdhashTruncatedLen]) != 1 {
				return nil, fmt.Errorf("cms: cdhashes plist entry %d does not match the 9.2 attribute", i)
			}
		}
	}
	return a, nil
}

func parseAttribute(elem cryptobyte.String) (Attribute, error) {
	var seq, values cryptobyte.String
	var attr Attribute
	if !elem.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&attr.Type) ||
		!seq.ReadASN1(&values, cbasn1.SET) || !seq.Empty() {
		return attr, errors.New("cms: malformed attribute")
	}
	for !values.Empty() {
		var v cryptobyte.String
		if !values.ReadAnyASN1Element(&v, nil) {
			return attr, fmt.Errorf("cms: malformed value in attribute %v", attr.Type)
		}
		attr.Values = append(attr.Values, v)
	}
	if len(attr.Values) == 0 {
		return attr, fmt.Errorf("cms: attribute %v has no value", attr.Type)
	}
	return attr, nil
}

// interpret fills the typed fields for the attributes this package knows.
func (a *SignedAttrs) interpret(attr Attribute) error {
	single := func(name string) (cryptobyte.String, error) {
		if len(attr.Values) != 1 {
			return nil, fmt.Errorf("cms: %s attribute has %d values, want 1", name, len(attr.Values))
		}
		return cryptobyte.String(attr.Values[0]), nil
	}
	switch {
	case attr.Type.Equal(oidAttrContentType):
		v, err := single("content-type")
		if err != nil {
			return err
		}
		var oid asn1.ObjectIdentifier
		if !v.ReadASN1ObjectIdentifier(&oid) || !v.Empty() {
			return errors.New("cms: malformed content-type attribute")
		}
		a.ContentType = oid
	case attr.Type.Equal(oidAttrSigningTime):
		v, err := single("signing-time")
		if err != nil {
			return err
		}
		t, err := readTime(&v)
		if err != nil || !v.Empty() {
			return errors.New("cms: malformed signing-time attribute")
		}
		a.SigningTime = t
	case attr.Type.Equal(oidAttrMessageDigest):
		v, err := single("message-digest")
		if err != nil {
			return err
		}
		var d []byte
		if !v.ReadASN1Bytes(&d, cbasn1.OCTET_STRING) || !v.Empty() {
			return errors.New("cms: malformed message-digest attribute")
		}
		if len(d) < 20 || len(d) > 64 {
			return fmt.Errorf("cms: %d-byte message digest", len(d))
		}
		a.MessageDigest = d
	case attr.Type.Equal(oidAttrAppleCDHashes):
		if len(attr.Values) > maxCodeDirectories {
			return fmt.Errorf("cms: %d cdhashes; at most %d are supported", len(attr.Values), maxCodeDirectories)
		}
		for i, raw := range attr.Values {
			v := cryptobyte.String(raw)
			var seq cryptobyte.String
			var oid asn1.ObjectIdentifier
			var d []byte
			if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() || !seq.ReadASN1ObjectIdentifier(&oid) ||
				!seq.ReadASN1Bytes(&d, cbasn1.OCTET_STRING) || !seq.Empty() {
				return fmt.Errorf("cms: malformed cdhash %d in attribute 1.2.840.113635.100.9.2", i)
			}
			h, ok := hashForOID(oid)
			if !ok {
				return fmt.Errorf("cms: cdhash %d uses unsupported digest algorithm %v", i, oid)
			}
			if len(d) != h.Size() {
				return fmt.Errorf("cms: cdhash %d is %d bytes, want %d for %v", i, len(d), h.Size(), h)
			}
			a.CDHashes = append(a.CDHashes, CDHash{Hash: h, Digest: d})
		}
	case attr.Type.Equal(oidAttrAppleCDHashesPlist):
		v, err := single("cdhashes plist")
		if err != nil {
			return err
		}
		var raw []byte
		if !v.ReadASN1Bytes(&raw, cbasn1.OCTET_STRING) || !v.Empty() {
			return errors.New("cms: malformed cdhashes plist attribute")
		}
		hashes, err := parseCDHashesPlist(raw)
		if err != nil {
			return err
		}
		a.CDHashesPlist = &CDHashesPlist{Raw: raw, Hashes: hashes}
	}
	return nil
}

// parseCDHashesPlist decodes the cdhashes array of Apple's 9.1 plist.
func parseCDHashesPlist(raw []byte) ([][]byte, error) {
	var doc struct {
		CDHashes [][]byte `plist:"cdhashes"`
	}
	if _, err := plist.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("cms: cdhashes plist: %v", err)
	}
	if len(doc.CDHashes) == 0 {
		return nil, errors.New("cms: cdhashes plist has no cdhashes")
	}
	if len(doc.CDHashes) > maxCodeDirectories {
		return nil, fmt.Errorf("cms: cdhashes plist lists %d hashes; at most %d are supported", len(doc.CDHashes), maxCodeDirectories)
	}
	for i, h := range doc.CDHashes {
		if len(h) != cdhashTruncatedLen {
			return nil, fmt.Errorf("cms: cdhashes plist entry %d is %d bytes, want %d", i, len(h), cdhashTruncatedLen)
		}
	}
	return doc.CDHashes, nil
}

// readTime reads a CMS Time (UTCTime or GeneralizedTime).
func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("malformed GeneralizedTime")
		}
	default:
		return t, errors.New("not a time")
	}
	return t.UTC(), nil
}

// Describe renders the attributes for a person deciding whether to sign them: the
// signing time, the digest of the CodeDirectory being signed, every cdhash, and any
// attribute this package does not interpret (by OID).
func (a *SignedAttrs) Describe() string {
	var s strings.Builder
	line := func(k, v string) { fmt.Fprintf(&s, "%-15s %s\n", k+":", v) }
	if a.ContentType.Equal(oidData) {
		line("content type", "id-data (a detached code signature)")
	} else {
		line("content type", a.ContentType.String())
	}
	if !a.SigningTime.IsZero() {
		line("signing time", a.SigningTime.UTC().Format(time.RFC3339))
	}
	line("message digest", fmt.Sprintf("%x", a.MessageDigest))
	for i, c := range a.CDHashes {
		line(fmt.Sprintf("cdhash %d", i), fmt.Sprintf("%s %x", hashName(c.Hash), c.Digest))
	}
	if a.CDHashes == nil && a.CDHashesPlist != nil {
		for i, h := range a.CDHashesPlist.Hashes {
			line(fmt.Sprintf("cdhash %d", i), fmt.Sprintf("%x (truncated)", h))
		}
	}
	for _, attr := range a.Attributes {
		switch {
		case attr.Type.Equal(oidAttrContentType), attr.Type.Equal(oidAttrSigningTime), attr.Type.Equal(oidAttrMessageDigest),
			attr.Type.Equal(oidAttrAppleCDHashes), attr.Type.Equal(oidAttrAppleCDHashesPlist):
		default:
			line("other attribute", attr.Type.String())
		}
	}
	return s.String()
}

func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "sha1"
	case crypto.SHA256:
		return "sha256"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return h.String()
}
