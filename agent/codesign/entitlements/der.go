package entitlements

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"unicode/utf8"
)

// DER tags of Apple's plist encoding.
const (
	tagBool       = 0x01
	tagInteger    = 0x02
	tagUTF8String = 0x0c
	tagSequence   = 0x30 // arrays, and each dictionary entry
	tagDict       = 0xb0 // [CONTEXT 16] constructed
	tagPlist      = 0x70 // [APPLICATION 16] constructed
)

// DER encodes the dictionary in Apple's DER entitlements form (the payload of the
// 0xfade7172 blob): [APPLICATION 16] { INTEGER 1, dict }, where a dictionary is
// [CONTEXT 16] { SEQUENCE { UTF8String key, value } ... } sorted by key bytes.
// Data, date and real values have no DER form and are rejected, as by codesign.
func (v *Value) DER() ([]byte, error) {
	if v.Kind != Dict {
		return nil, errors.New("entitlements: the root must be a dictionary")
	}
	body, err := v.der()
	if err != nil {
		return nil, err
	}
	inner := append(tlv(tagInteger, []byte{1}), body...)
	return tlv(tagPlist, inner), nil
}

func (v *Value) der() ([]byte, error) {
	switch v.Kind {
	case Bool:
		if v.Bool {
			return tlv(tagBool, []byte{0xff}), nil
		}
		return tlv(tagBool, []byte{0}), nil
	case Integer:
		return tlv(tagInteger, intBytes(v.Int)), nil
	case String:
		return tlv(tagUTF8String, []byte(v.Str)), nil
	case Array:
		var body []byte
		for _, e := range v.Array {
			b, err := e.der()
			if err != nil {
				return nil, err
			}
			body = append(body, b...)
		}
		return tlv(tagSequence, body), nil
	case Dict:
		es := append([]Entry(nil), v.Dict...)
		sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
		var body []byte
		for _, e := range es {
			val, err := e.Value.der()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Key, err)
			}
			entry := append(tlv(tagUTF8String, []byte(e.Key)), val...)
			body = append(body, tlv(tagSequence, entry)...)
		}
		return tlv(tagDict, body), nil
	case Data:
		return nil, errors.New("<data> values cannot be DER-encoded in entitlements")
	case Date:
		return nil, errors.New("<date> values cannot be DER-encoded in entitlements")
	case Real:
		return nil, errors.New("<real> values cannot be DER-encoded in entitlements")
	}
	return nil, errors.New("unknown plist value")
}

// intBytes is the minimal two's-complement encoding of n.
func intBytes(n *big.Int) []byte {
	if n.Sign() == 0 {
		return []byte{0}
	}
	if n.Sign() > 0 {
		b := n.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// Negative: two's complement over enough bytes.
	nb := (n.BitLen() + 8) / 8
	m := new(big.Int).Lsh(big.NewInt(1), uint(nb*8))
	m.Add(m, n)
	b := m.Bytes()
	for len(b) < nb {
		b = append([]byte{0xff}, b...)
	}
	// Minimize: drop redundant leading 0xff.
	for len(b) > 1 && b[0] == 0xff && b[1]&0x80 != 0 {
		b = b[1:]
	}
	return b
}

func tlv(tag byte, body []byte) []byte {
	out := []byte{tag}
	n := len(body)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		out = append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, body...)
}

// ParseDER decodes Apple's DER entitlements. It is strict: definite minimal
// lengths, known tags only, no trailing bytes.
func ParseDER(der []byte) (*Value, error) {
	if len(der) > MaxXMLSize {
		return nil, fmt.Errorf("DER entitlements are %d bytes (limit %d)", len(der), MaxXMLSize)
	}
	tag, body, rest, err := readTLV(der)
	if err != nil {
		return nil, err
	}
	if tag != tagPlist || len(rest) != 0 {
		return nil, errors.New("DER entitlements: expected a single [APPLICATION 16] element")
	}
	tag, ver, body, err := readTLV(body)
	if err != nil {
		return nil, err
	}
	if tag != tagInteger || len(ver) != 1 || ver[0] != 1 {
		return nil, errors.New("DER entitlements: version is not INTEGER 1")
	}
	v, rest, err := parseDERValue(body, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 || v.Kind != Dict {
		return nil, errors.New("DER entitlements: expected one dictionary")
	}
	return v, nil
}

func readTLV(b []byte) (tag byte, body, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("DER entitlements: truncated")
	}
	tag = b[0]
	n := int(b[1])
	hdr := 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return 0, nil, nil, errors.New("DER entitlements: bad length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		if n < 0x80 || (k > 1 && b[2] == 0) {
			return 0, nil, nil, errors.New("DER entitlements: non-minimal length")
		}
		hdr += k
	}
	if n > len(b)-hdr {
		return 0, nil, nil, errors.New("DER entitlements: element longer than its container")
	}
	return tag, b[hdr : hdr+n], b[hdr+n:], nil
}

func parseDERValue(b []byte, depth int) (*Value, []byte, error) {
	if depth > maxDepth {
		return nil, nil, fmt.Errorf("DER entitlements: nested deeper than %d", maxDepth)
	}
	tag, body, rest, err := readTLV(b)
	if err != nil {
		return nil, nil, err
	}
	switch tag {
	case tagBool:
		if len(body) != 1 || (body[0] != 0 && body[0] != 0xff) {
			return nil, nil, errors.New("DER entitlements: bad BOOLEAN")
		}
		return &Value{Kind: Bool, Bool: body[0] == 0xff}, rest, nil
	case tagInteger:
		if len(body) == 0 || len(body) > 9 || (len(body) > 1 && (body[0] == 0 && body[1]&0x80 == 0 || body[0] == 0xff && body[1]&0x80 != 0)) {
			return nil, nil, errors.New("DER entitlements: bad INTEGER")
		}
		n := new(big.Int).SetBytes(body)
		if body[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(body))))
		}
		return &Value{Kind: Integer, Int: n}, rest, nil
	case tagUTF8String:
		if !utf8.Valid(body) {
			return nil, nil, errors.New("DER entitlements: invalid UTF-8 string")
		}
		return &Value{Kind: String, Str: string(body)}, rest, nil
	case tagSequence:
		v := &Value{Kind: Array}
		for len(body) > 0 {
			e, r, err := parseDERValue(body, depth+1)
			if err != nil {
				return nil, nil, err
			}
			v.Array = append(v.Array, e)
			body = r
		}
		return v, rest, nil
	case tagDict:
		v := &Value{Kind: Dict}
		prev := ""
		for len(body) > 0 {
			t, entry, r, err := readTLV(body)
			if err != nil {
				return nil, nil, err
			}
			if t != tagSequence {
				return nil, nil, errors.New("DER entitlements: dictionary entry is not a SEQUENCE")
			}
			kt, key, vr, err := readTLV(entry)
			if err != nil {
				return nil, nil, err
			}
			if kt != tagUTF8String || !utf8.Valid(key) {
				return nil, nil, errors.New("DER entitlements: dictionary key is not a UTF8String")
			}
			if len(v.Dict) > 0 && string(key) <= prev {
				return nil, nil, errors.New("DER entitlements: dictionary keys are not sorted and unique")
			}
			prev = string(key)
			val, after, err := parseDERValue(vr, depth+1)
			if err != nil {
				return nil, nil, err
			}
			if len(after) != 0 {
				return nil, nil, errors.New("DER entitlements: extra data in a dictionary entry")
			}
			v.Dict = append(v.Dict, Entry{Key: string(key), Value: val})
			body = r
		}
		return v, rest, nil
	}
	return nil, nil, fmt.Errorf("DER entitlements: unexpected tag %#x", tag)
}

// Executable segment flags implied by entitlements (CS_EXECSEG_*).
var execSegEntitlements = []struct {
	key  string
	flag uint64
}{
	{"get-task-allow", 0x10},
	{"run-unsigned-code", 0x10},
	{"com.apple.private.cs.debugger", 0x20},
	{"dynamic-codesigning", 0x40},
	{"com.apple.private.skip-library-validation", 0x80},
	{"com.apple.private.amfi.can-load-cdhash", 0x100},
	{"com.apple.private.amfi.can-execute-cdhash", 0x200},
}

// ExecSegFlags returns the CodeDirectory executable segment flags these
// entitlements imply (top-level keys set to true). The com.apple.security.*
// keys do not map to flags.
func (v *Value) ExecSegFlags() uint64 {
	var f uint64
	for _, m := range execSegEntitlements {
		if e := v.Get(m.key); e != nil && e.Kind == Bool && e.Bool {
			f |= m.flag
		}
	}
	return f
}
