package sjs

// The CBOR glue between this package and github.com/fxamacker/cbor/v2.
//
// fxamacker does the parsing: well-formedness, heads, lengths, UTF-8, nesting and
// element bounds. What it cannot express directly is the exact set of shapes
// rcodesign's minicbor decoder accepts, so fields are first taken as raw items
// and each is checked for its CBOR major type before it is decoded. Without that,
// fxamacker would quietly turn null into "", nil or 0 and see through tags, all
// of which rcodesign rejects.
//
// One difference remains, in the sealed publickey0 message only (the join string
// itself forbids tags outright): fxamacker strips the self-described CBOR tag
// 55799 before any field or element check sees the item, so a field or a byte
// wrapped in it is accepted where rcodesign would refuse it. RFC 8949 §3.4.6
// defines that tag as a no-op marker and the value is still type-checked, so
// this costs nothing but exactness.

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// CBOR major types, from the top three bits of an item's initial byte.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

var (
	// joinDecMode decodes the join string container and both scheme payloads.
	// rcodesign accepts only definite-length arrays and strings there, and no
	// tags; the container nests two arrays deep and holds at most three items
	// per array, so the library's minimum bounds are ample.
	joinDecMode = mustDecMode(cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	})

	// messageDecMode decodes the sealed publickey0 message. rcodesign accepts
	// indefinite-length arrays there and skips any extra trailing items whatever
	// they hold (tags, maps, indefinite strings), so those are allowed; the
	// bounds still cap nesting and array sizes (the largest honest array is a
	// maxChallenge-byte challenge).
	messageDecMode = mustDecMode(cbor.DecOptions{
		MaxNestedLevels:  16,
		MaxArrayElements: maxChallenge,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthAllowed,
		TagsMd:           cbor.TagsAllowed,
		UTF8:             cbor.UTF8RejectInvalid,
	})

	// encMode writes what minicbor writes: definite lengths and shortest-form
	// heads (fxamacker always uses the shortest head). Nil slices would encode
	// as null; the validation before every Marshal makes them impossible, and
	// encoding them as empty is the safer fallback.
	encMode = mustEncMode()
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	dm, err := o.DecMode()
	if err != nil {
		panic("sjs: " + err.Error())
	}
	return dm
}

func mustEncMode() cbor.EncMode {
	o := cbor.CoreDetEncOptions()
	o.NilContainers = cbor.NilContainerAsEmpty
	em, err := o.EncMode()
	if err != nil {
		panic("sjs: " + err.Error())
	}
	return em
}

// cborNull is the encoding of null, which minicbor writes for a Rust None.
var cborNull = []byte{0xf6}

// errTruncated is reported when the input ends inside an item.
var errTruncated = errors.New("truncated CBOR")

// truncation reports fxamacker's "input ended inside an item" as errTruncated,
// which Unmarshal turns into advice for the person who pasted the join string.
func truncation(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errTruncated
	}
	return err
}

// head returns the major type of the encoded item raw and whether its length is
// indefinite. raw is one complete item, as fxamacker hands them out.
func head(raw []byte) (major byte, indefinite bool, err error) {
	if len(raw) == 0 {
		return 0, false, errTruncated
	}
	return raw[0] >> 5, raw[0]&0x1f == 31, nil
}

// expect checks that raw is a definite-length item of major type want.
func expect(raw []byte, want byte) error {
	major, indefinite, err := head(raw)
	switch {
	case err != nil:
		return err
	case major != want:
		return fmt.Errorf("expected %s, found %s", majorName(want), typeName(raw))
	case indefinite:
		return fmt.Errorf("indefinite-length %s not allowed", majorName(want))
	}
	return nil
}

// typeName names the type of the (non-empty) encoded item raw.
func typeName(raw []byte) string {
	if bytes.Equal(raw, cborNull) {
		return "null"
	}
	return majorName(raw[0] >> 5)
}

func majorName(m byte) string {
	switch m {
	case majorUint:
		return "unsigned integer"
	case majorNegInt:
		return "negative integer"
	case majorBytes:
		return "byte string"
	case majorText:
		return "text string"
	case majorArray:
		return "array"
	case majorMap:
		return "map"
	case majorTag:
		return "tag"
	default:
		return "simple value"
	}
}

// decodeArray decodes raw, which must be a definite array of exactly n items,
// into its items.
func decodeArray(raw []byte, n int) ([]cbor.RawMessage, error) {
	if err := expect(raw, majorArray); err != nil {
		return nil, err
	}
	var items []cbor.RawMessage
	if err := joinDecMode.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	if len(items) != n {
		return nil, fmt.Errorf("array has %d items, want %d", len(items), n)
	}
	return items, nil
}

// decodeText decodes raw, which must be a definite, valid UTF-8 text string of at
// most max bytes.
func decodeText(raw []byte, max int) (string, error) {
	if err := expect(raw, majorText); err != nil {
		return "", err
	}
	var s string
	if err := joinDecMode.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	if len(s) > max {
		return "", fmt.Errorf("text string of %d bytes exceeds the limit of %d", len(s), max)
	}
	return s, nil
}

// decodeBytes decodes raw, which must be a definite byte string of at most max
// bytes. The result is never nil, so decoded values compare equal to the ones
// they were encoded from.
func decodeBytes(raw []byte, max int) ([]byte, error) {
	if err := expect(raw, majorBytes); err != nil {
		return nil, err
	}
	b := []byte{}
	if err := joinDecMode.Unmarshal(raw, &b); err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("byte string of %d bytes exceeds the limit of %d", len(b), max)
	}
	return b, nil
}

// vecU8 is a byte slice that encodes as a CBOR array of unsigned integers, one
// per byte: minicbor's encoding of a Rust Vec<u8> without the `bytes` attribute.
type vecU8 []byte

// MarshalCBOR implements cbor.Marshaler.
func (a vecU8) MarshalCBOR() ([]byte, error) {
	v := make([]uint, len(a))
	for i, c := range a {
		v[i] = uint(c)
	}
	return encMode.Marshal(v)
}

// decodeVecU8 decodes what minicbor accepts for a Rust Vec<u8>, a definite or
// indefinite array of unsigned integers each at most 255, and leniently also a
// definite byte string. At most max elements are accepted.
func decodeVecU8(raw []byte, max int) ([]byte, error) {
	major, _, err := head(raw)
	if err != nil {
		return nil, err
	}
	if major == majorBytes {
		return decodeBytes(raw, max)
	}
	if major != majorArray {
		return nil, fmt.Errorf("expected array, found %s", typeName(raw))
	}
	// Decoded generically, each element's Go type tells its CBOR type exactly:
	// uint64 only for an unsigned integer (null is nil, a tag is a cbor.Tag or a
	// time or big number, a negative integer is int64). Boxing a uint64 below
	// 256 in an interface does not allocate.
	var v []any
	if err := messageDecMode.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if len(v) > max {
		return nil, fmt.Errorf("array of %d items exceeds the limit of %d", len(v), max)
	}
	b := make([]byte, len(v))
	for i, e := range v {
		n, ok := e.(uint64)
		if !ok {
			return nil, fmt.Errorf("array item %d is not an unsigned integer", i)
		}
		if n > 0xff {
			return nil, fmt.Errorf("array item %d: %d does not fit in a byte", i, n)
		}
		b[i] = byte(n)
	}
	return b, nil
}

// nullableText is a string that encodes as null when empty, as minicbor encodes a
// Rust Option<String> that is None.
type nullableText string

// MarshalCBOR implements cbor.Marshaler.
func (t nullableText) MarshalCBOR() ([]byte, error) {
	if t == "" {
		return bytes.Clone(cborNull), nil
	}
	return encMode.Marshal(string(t))
}
