package session

import (
	"crypto"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/farsign/farsign/agent/cms"
)

// Description is what a signer shows a person before signing a request.
type Description struct {
	// Attributes is the parsed request when it is a DER SET of CMS signed
	// attributes (what code signing asks for), nil otherwise.
	Attributes *cms.SignedAttrs
	// NotAttributes says why the request is not CMS signed attributes; nil
	// when it is.
	NotAttributes error
	// Lines describe the request for a person, one fact a line.
	Lines []string
}

// Names of the attributes a code signature carries, for display.
var attributeNames = []struct {
	oid  asn1.ObjectIdentifier
	name string
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}, "content type"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}, "message digest"},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}, "signing time"},
	{asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 9, 1}, "CodeDirectory hashes plist"},
	{asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 9, 2}, "CodeDirectory hashes"},
}

func knownAttribute(oid asn1.ObjectIdentifier) bool {
	for _, a := range attributeNames {
		if a.oid.Equal(oid) {
			return true
		}
	}
	return false
}

// maxPreview is how many bytes of a request that is not CMS signed attributes
// are shown in hex.
const maxPreview = 32

// Describe explains a sign request's message. It never fails: a message that is
// not CMS signed attributes is described as opaque data, with the reason in
// NotAttributes, so that the policy can refuse it with an explanation.
//
// CMS signed attributes are what a code signature's signer signs: the SHA-256
// of the primary CodeDirectory (message digest), the signing time, and Apple's
// cdhash attributes listing every CodeDirectory's hash. A CodeDirectory hash is
// what `codesign -dvvv` prints as CDHash, so the key holder can compare it with
// the binary the CI job says it is signing. (The binary's identifier lives in
// the CodeDirectory itself, which the signed attributes only hash; it is not
// part of the request.)
func Describe(msg []byte) Description {
	attrs, err := cms.ParseSignedAttributes(msg)
	if err != nil {
		sum := sha256.Sum256(msg)
		preview := msg
		if len(preview) > maxPreview {
			preview = preview[:maxPreview]
		}
		more := ""
		if len(msg) > maxPreview {
			more = "…"
		}
		return Description{
			NotAttributes: err,
			Lines: []string{
				fmt.Sprintf("opaque data, %d bytes (not CMS signed attributes: %v)", len(msg), err),
				"SHA-256: " + hex.EncodeToString(sum[:]),
				"starts with: " + hex.EncodeToString(preview) + more,
			},
		}
	}
	d := Description{Attributes: attrs}
	d.Lines = append(d.Lines, fmt.Sprintf("CMS signed attributes of a code signature, %d bytes", len(msg)))
	d.Lines = append(d.Lines, fmt.Sprintf("message digest: %s (the primary CodeDirectory's SHA-256)", hex.EncodeToString(attrs.MessageDigest)))
	if attrs.SigningTime.IsZero() {
		d.Lines = append(d.Lines, "signing time: (none)")
	} else {
		d.Lines = append(d.Lines, "signing time: "+attrs.SigningTime.UTC().Format(time.RFC3339))
	}
	for i, h := range attrs.CDHashes {
		d.Lines = append(d.Lines, fmt.Sprintf("CodeDirectory %d hash (%s): %s", i, hashName(h.Hash), hex.EncodeToString(h.Digest)))
	}
	if p := attrs.CDHashesPlist; p != nil {
		if len(attrs.CDHashes) > 0 {
			// The parser checked the plist against the full hashes above.
			d.Lines = append(d.Lines, fmt.Sprintf("cdhashes plist: %d entries, matching the hashes above", len(p.Hashes)))
		} else {
			for i, h := range p.Hashes {
				d.Lines = append(d.Lines, fmt.Sprintf("CodeDirectory %d hash (truncated, from the cdhashes plist): %s", i, hex.EncodeToString(h)))
			}
		}
	}
	for _, a := range attrs.Attributes {
		if !knownAttribute(a.Type) {
			d.Lines = append(d.Lines, fmt.Sprintf("other attribute: %v (%d value(s))", a.Type, len(a.Values)))
		}
	}
	return d
}

func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA1:
		return "SHA-1"
	case crypto.SHA256:
		return "SHA-256"
	case crypto.SHA384:
		return "SHA-384"
	case crypto.SHA512:
		return "SHA-512"
	}
	return h.String()
}
