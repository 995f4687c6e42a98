// Package requirement implements Apple's code requirement language: the binary
// opcode form stored in signatures (Requirement and RequirementSet blobs), and the
// text form that `codesign -d -r-` prints and `csreq` compiles, e.g.
//
//	identifier "com.example.tool" and anchor apple generic and
//	certificate leaf[subject.OU] = "ABCDE12345"
//
// A designated requirement is what the OS checks when it asks "is this the same
// program as before?" (keychain access, TCC grants, launch constraints), so the one
// embedded at signing time must name the right identifier and signer. Designated
// builds the default one for a signing certificate the way codesign and rcodesign
// do; Parse lets a user state one explicitly.
package requirement

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Op is a requirement opcode (the low 24 bits of the opcode word).
type Op uint32

// Opcodes.
const (
	OpFalse              Op = 0
	OpTrue               Op = 1
	OpIdent              Op = 2
	OpAppleAnchor        Op = 3
	OpAnchorHash         Op = 4
	OpInfoKeyValue       Op = 5
	OpAnd                Op = 6
	OpOr                 Op = 7
	OpCDHash             Op = 8
	OpNot                Op = 9
	OpInfoKeyField       Op = 10
	OpCertField          Op = 11
	OpTrustedCert        Op = 12
	OpTrustedCerts       Op = 13
	OpCertGeneric        Op = 14
	OpAppleGenericAnchor Op = 15
	OpEntitlementField   Op = 16
	OpCertPolicy         Op = 17
	OpNamedAnchor        Op = 18
	OpNamedCode          Op = 19
	OpPlatform           Op = 20
	OpNotarized          Op = 21
	OpCertFieldDate      Op = 22
	OpLegacyDevID        Op = 23
)

const (
	opValueMask = 0x00ffffff
	opFlagMask  = 0xff000000
)

// MatchOp is a match operation (matchType).
type MatchOp uint32

// Match operations.
const (
	MatchExists       MatchOp = 0
	MatchEqual        MatchOp = 1
	MatchContains     MatchOp = 2
	MatchBeginsWith   MatchOp = 3
	MatchEndsWith     MatchOp = 4
	MatchLessThan     MatchOp = 5
	MatchGreaterThan  MatchOp = 6
	MatchLessEqual    MatchOp = 7
	MatchGreaterEqual MatchOp = 8
	MatchOn           MatchOp = 9
	MatchBefore       MatchOp = 10
	MatchAfter        MatchOp = 11
	MatchOnOrBefore   MatchOp = 12
	MatchOnOrAfter    MatchOp = 13
	MatchAbsent       MatchOp = 14
)

// isDate reports whether the match takes an i64 timestamp operand.
func (m MatchOp) isDate() bool { return m >= MatchOn && m <= MatchOnOrAfter }

// hasValue reports whether the match takes a data operand.
func (m MatchOp) hasValue() bool { return m >= MatchEqual && m <= MatchGreaterEqual }

// Match is the comparison at the end of a field expression.
type Match struct {
	Op    MatchOp
	Value []byte // for equal, contains, begins/ends with, <, >, <=, >=
	Time  int64  // Unix seconds, for the date comparisons
}

// Certificate slots.
const (
	SlotLeaf = 0
	SlotRoot = -1
)

// Expr is one node of a requirement expression tree.
//
// Which fields are used depends on Op: A and B for and/or (A only for not); Str
// for identifiers, keys, certificate field names and named anchors/code; Data for
// hashes and OIDs (raw DER content bytes); Slot for certificate positions; Match
// for field comparisons; Platform for the platform opcode.
type Expr struct {
	Op Op
	// OpFlags are the opcode's high-byte flags, kept so decoded expressions
	// re-encode identically.
	OpFlags  uint32
	A, B     *Expr
	Str      string
	Value    string // the value of the legacy info[key] = value form
	Data     []byte
	Slot     int32
	Match    Match
	Platform uint32
}

// Constructors for the common expressions.

// And joins expressions, nesting to the right: And(a, b, c) = a and (b and c).
func And(es ...*Expr) *Expr {
	if len(es) == 1 {
		return es[0]
	}
	return &Expr{Op: OpAnd, A: es[0], B: And(es[1:]...)}
}

// Or joins expressions, nesting to the right.
func Or(es ...*Expr) *Expr {
	if len(es) == 1 {
		return es[0]
	}
	return &Expr{Op: OpOr, A: es[0], B: Or(es[1:]...)}
}

// Identifier matches the code's signing identifier.
func Identifier(id string) *Expr { return &Expr{Op: OpIdent, Str: id} }

// AnchorApple requires the chain to end in an Apple root and be Apple's own code.
func AnchorApple() *Expr { return &Expr{Op: OpAppleAnchor} }

// AnchorAppleGeneric requires the chain to end in an Apple root.
func AnchorAppleGeneric() *Expr { return &Expr{Op: OpAppleGenericAnchor} }

// CertificateHash pins the certificate at slot to a SHA-1 hash of its DER.
func CertificateHash(slot int32, sha1 []byte) *Expr {
	return &Expr{Op: OpAnchorHash, Slot: slot, Data: append([]byte(nil), sha1...)}
}

// CertificateField compares a named certificate field (e.g. "subject.OU").
func CertificateField(slot int32, field string, m Match) *Expr {
	return &Expr{Op: OpCertField, Slot: slot, Str: field, Match: m}
}

// CertificateExtension tests a certificate extension by OID (dotted form).
func CertificateExtension(slot int32, oid string, m Match) (*Expr, error) {
	der, err := encodeOID(oid)
	if err != nil {
		return nil, err
	}
	return &Expr{Op: OpCertGeneric, Slot: slot, Data: der, Match: m}, nil
}

// Equal is the "= value" match.
func Equal(v string) Match { return Match{Op: MatchEqual, Value: []byte(v)} }

// Exists is the "exists" match.
func Exists() Match { return Match{Op: MatchExists} }

// maxDepth bounds nesting when decoding and parsing: real requirements nest a
// handful of levels, and untrusted input must not exhaust the stack.
const maxDepth = 256

// ErrMalformed is wrapped by decoding errors.
var ErrMalformed = errors.New("malformed code requirement")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Encode appends the binary opcode form of e to dst.
func (e *Expr) Encode(dst []byte) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(e.Op)|e.OpFlags&opFlagMask)
	switch e.Op {
	case OpIdent, OpNamedAnchor, OpNamedCode:
		dst = appendData(dst, []byte(e.Str))
	case OpAnchorHash:
		dst = be.AppendUint32(dst, uint32(e.Slot))
		dst = appendData(dst, e.Data)
	case OpInfoKeyValue:
		dst = appendData(dst, []byte(e.Str))
		dst = appendData(dst, []byte(e.Value))
	case OpAnd, OpOr:
		dst = e.A.Encode(dst)
		dst = e.B.Encode(dst)
	case OpNot:
		dst = e.A.Encode(dst)
	case OpCDHash:
		dst = appendData(dst, e.Data)
	case OpInfoKeyField, OpEntitlementField:
		dst = appendData(dst, []byte(e.Str))
		dst = e.Match.encode(dst)
	case OpCertField:
		dst = be.AppendUint32(dst, uint32(e.Slot))
		dst = appendData(dst, []byte(e.Str))
		dst = e.Match.encode(dst)
	case OpTrustedCert:
		dst = be.AppendUint32(dst, uint32(e.Slot))
	case OpCertGeneric, OpCertPolicy, OpCertFieldDate:
		dst = be.AppendUint32(dst, uint32(e.Slot))
		dst = appendData(dst, e.Data)
		dst = e.Match.encode(dst)
	case OpPlatform:
		dst = be.AppendUint32(dst, e.Platform)
	}
	return dst
}

func (m Match) encode(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Op))
	switch {
	case m.Op.hasValue():
		dst = appendData(dst, m.Value)
	case m.Op.isDate():
		dst = binary.BigEndian.AppendUint64(dst, uint64(m.Time))
	}
	return dst
}

// appendData writes a length-prefixed byte string padded to a multiple of 4.
func appendData(dst, data []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, data...)
	if pad := (4 - len(data)%4) % 4; pad > 0 {
		dst = append(dst, make([]byte, pad)...)
	}
	return dst
}

// Decode reads one expression from the front of b and returns the rest.
func Decode(b []byte) (*Expr, []byte, error) {
	return decode(b, 0)
}

type reader struct{ b []byte }

func (r *reader) u32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, malformed("truncated (need 4 bytes, have %d)", len(r.b))
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *reader) data() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	padded := (uint64(n) + 3) &^ 3
	if uint64(len(r.b)) < uint64(n) {
		return nil, malformed("data of %d bytes, only %d left", n, len(r.b))
	}
	v := r.b[:n:n]
	if padded > uint64(len(r.b)) {
		return nil, malformed("data of %d bytes lacks its padding", n)
	}
	r.b = r.b[padded:]
	return v, nil
}

func decode(b []byte, depth int) (*Expr, []byte, error) {
	if depth > maxDepth {
		return nil, nil, malformed("expression nested deeper than %d", maxDepth)
	}
	r := &reader{b: b}
	w, err := r.u32()
	if err != nil {
		return nil, nil, err
	}
	e := &Expr{Op: Op(w & opValueMask), OpFlags: w & opFlagMask}
	var d []byte
	switch e.Op {
	case OpFalse, OpTrue, OpAppleAnchor, OpTrustedCerts, OpAppleGenericAnchor, OpNotarized, OpLegacyDevID:
	case OpIdent, OpNamedAnchor, OpNamedCode:
		if d, err = r.data(); err == nil {
			e.Str = string(d)
		}
	case OpAnchorHash:
		var s uint32
		if s, err = r.u32(); err == nil {
			e.Slot = int32(s)
			if d, err = r.data(); err == nil {
				e.Data = append([]byte(nil), d...)
			}
		}
	case OpInfoKeyValue:
		if d, err = r.data(); err == nil {
			e.Str = string(d)
			if d, err = r.data(); err == nil {
				e.Value = string(d)
			}
		}
	case OpAnd, OpOr:
		var rest []byte
		if e.A, rest, err = decode(r.b, depth+1); err == nil {
			e.B, rest, err = decode(rest, depth+1)
		}
		r.b = rest
	case OpNot:
		e.A, r.b, err = decode(r.b, depth+1)
	case OpCDHash:
		if d, err = r.data(); err == nil {
			e.Data = append([]byte(nil), d...)
		}
	case OpInfoKeyField, OpEntitlementField:
		if d, err = r.data(); err == nil {
			e.Str = string(d)
			e.Match, err = r.match()
		}
	case OpCertField:
		var s uint32
		if s, err = r.u32(); err == nil {
			e.Slot = int32(s)
			if d, err = r.data(); err == nil {
				e.Str = string(d)
				e.Match, err = r.match()
			}
		}
	case OpTrustedCert:
		var s uint32
		s, err = r.u32()
		e.Slot = int32(s)
	case OpCertGeneric, OpCertPolicy, OpCertFieldDate:
		var s uint32
		if s, err = r.u32(); err == nil {
			e.Slot = int32(s)
			if d, err = r.data(); err == nil {
				e.Data = append([]byte(nil), d...)
				e.Match, err = r.match()
			}
		}
	case OpPlatform:
		e.Platform, err = r.u32()
	default:
		return nil, nil, malformed("unknown opcode %d", e.Op)
	}
	if err != nil {
		return nil, nil, err
	}
	return e, r.b, nil
}

func (r *reader) match() (Match, error) {
	t, err := r.u32()
	if err != nil {
		return Match{}, err
	}
	m := Match{Op: MatchOp(t)}
	switch {
	case m.Op == MatchExists || m.Op == MatchAbsent:
	case m.Op.hasValue():
		v, err := r.data()
		if err != nil {
			return Match{}, err
		}
		m.Value = append([]byte(nil), v...)
	case m.Op.isDate():
		hi, err := r.u32()
		if err != nil {
			return Match{}, err
		}
		lo, err := r.u32()
		if err != nil {
			return Match{}, err
		}
		m.Time = int64(uint64(hi)<<32 | uint64(lo))
	default:
		return Match{}, malformed("unknown match type %d", t)
	}
	return m, nil
}
