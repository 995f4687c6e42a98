package requirement

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/farsign/farsign/agent/codesign/blob"
)

// Requirement kinds (the word after a Requirement blob's header).
const (
	// KindExpression is the opcode expression form described in this package.
	KindExpression = 1
)

// Requirement types in a RequirementSet.
type Type uint32

// Requirement types.
const (
	TypeHost       Type = 1
	TypeGuest      Type = 2
	TypeDesignated Type = 3
	TypeLibrary    Type = 4
	TypePlugin     Type = 5
)

func (t Type) String() string {
	switch t {
	case TypeHost:
		return "host"
	case TypeGuest:
		return "guest"
	case TypeDesignated:
		return "designated"
	case TypeLibrary:
		return "library"
	case TypePlugin:
		return "plugin"
	}
	return fmt.Sprintf("type%d", uint32(t))
}

func parseType(s string) (Type, bool) {
	for t := TypeHost; t <= TypePlugin; t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// Requirement is one Requirement blob. Expr is nil when Kind is not the
// expression form; Raw then holds the undecoded payload after the kind word.
type Requirement struct {
	Kind uint32
	Expr *Expr
	Raw  []byte
}

// Bytes returns the Requirement blob (magic 0xfade0c00).
func (r *Requirement) Bytes() []byte {
	payload := binary.BigEndian.AppendUint32(nil, r.Kind)
	if r.Expr != nil {
		payload = r.Expr.Encode(payload)
	} else {
		payload = append(payload, r.Raw...)
	}
	return blob.Wrap(blob.MagicRequirement, payload)
}

func (r *Requirement) String() string {
	if r.Expr == nil {
		return fmt.Sprintf("/* requirement of kind %d, %d bytes */", r.Kind, len(r.Raw))
	}
	return r.Expr.String()
}

// ParseRequirement decodes a Requirement blob.
func ParseRequirement(data []byte) (*Requirement, error) {
	p, err := blob.Unwrap(data, blob.MagicRequirement)
	if err != nil {
		return nil, err
	}
	if len(p) < 4 {
		return nil, malformed("requirement blob has no kind")
	}
	r := &Requirement{Kind: binary.BigEndian.Uint32(p)}
	if r.Kind != KindExpression {
		r.Raw = append([]byte(nil), p[4:]...)
		return r, nil
	}
	e, rest, err := Decode(p[4:])
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d bytes follow the requirement expression", len(rest))
	}
	r.Expr = e
	return r, nil
}

// SetEntry is one requirement in a RequirementSet.
type SetEntry struct {
	Type        Type
	Requirement *Requirement
}

// Set is a RequirementSet: at most one requirement per type.
type Set struct {
	Entries []SetEntry
}

// EmptySetBytes is the empty RequirementSet every ad-hoc signature carries.
var EmptySetBytes = []byte{0xfa, 0xde, 0x0c, 0x01, 0, 0, 0, 0x0c, 0, 0, 0, 0}

// Designated returns the designated requirement, or nil.
func (s *Set) Designated() *Requirement {
	for _, e := range s.Entries {
		if e.Type == TypeDesignated {
			return e.Requirement
		}
	}
	return nil
}

// Bytes returns the RequirementSet blob (magic 0xfade0c01), entries sorted by type.
func (s *Set) Bytes() []byte {
	es := append([]SetEntry(nil), s.Entries...)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Type < es[j].Type })
	blobs := make([][]byte, len(es))
	for i, e := range es {
		blobs[i] = e.Requirement.Bytes()
	}
	payload := binary.BigEndian.AppendUint32(nil, uint32(len(es)))
	off := 12 + 8*len(es)
	for i, e := range es {
		payload = binary.BigEndian.AppendUint32(payload, uint32(e.Type))
		payload = binary.BigEndian.AppendUint32(payload, uint32(off))
		off += len(blobs[i])
	}
	for _, b := range blobs {
		payload = append(payload, b...)
	}
	return blob.Wrap(blob.MagicRequirementSet, payload)
}

// String formats the set as codesign does: one "type => expression" per line.
func (s *Set) String() string {
	var lines []string
	for _, e := range s.Entries {
		lines = append(lines, e.Type.String()+" => "+e.Requirement.String())
	}
	return strings.Join(lines, "\n")
}

// maxSetEntries bounds a RequirementSet's index (five types exist).
const maxSetEntries = 64

// ParseSet decodes a RequirementSet blob.
func ParseSet(data []byte) (*Set, error) {
	p, err := blob.Unwrap(data, blob.MagicRequirementSet)
	if err != nil {
		return nil, err
	}
	b := data[:8+len(p)]
	if len(p) < 4 {
		return nil, malformed("requirement set has no count")
	}
	n := binary.BigEndian.Uint32(p)
	if n > maxSetEntries || 12+8*uint64(n) > uint64(len(b)) {
		return nil, malformed("requirement set claims %d entries in %d bytes", n, len(b))
	}
	s := &Set{}
	seen := map[Type]bool{}
	for i := uint32(0); i < n; i++ {
		t := Type(binary.BigEndian.Uint32(b[12+8*i:]))
		off := binary.BigEndian.Uint32(b[16+8*i:])
		if seen[t] {
			return nil, malformed("requirement set lists %s twice", t)
		}
		seen[t] = true
		if uint64(off) >= uint64(len(b)) {
			return nil, malformed("requirement %s at offset %d is outside the %d-byte set", t, off, len(b))
		}
		r, err := ParseRequirement(b[off:])
		if err != nil {
			return nil, fmt.Errorf("%s requirement: %w", t, err)
		}
		s.Entries = append(s.Entries, SetEntry{Type: t, Requirement: r})
	}
	return s, nil
}

// ParseSetText parses requirements in text form. Either a bare expression (taken
// as the designated requirement) or entries of "type => expression", as printed by
// `codesign -d -r-`, where type is host, guest, designated, library or plugin.
func ParseSetText(text string) (*Set, error) {
	locs := typedRE.FindAllStringSubmatchIndex(text, -1)
	if len(locs) == 0 {
		e, err := Parse(text)
		if err != nil {
			return nil, err
		}
		return &Set{Entries: []SetEntry{{Type: TypeDesignated, Requirement: &Requirement{Kind: KindExpression, Expr: e}}}}, nil
	}
	if strings.TrimSpace(text[:locs[0][0]]) != "" {
		return nil, fmt.Errorf("requirements text: unexpected %q before %q", strings.TrimSpace(text[:locs[0][0]]), text[locs[0][0]:locs[0][1]])
	}
	s := &Set{}
	seen := map[Type]bool{}
	for i, loc := range locs {
		t, _ := parseType(text[loc[2]:loc[3]])
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		if seen[t] {
			return nil, fmt.Errorf("requirement type %s given twice", t)
		}
		seen[t] = true
		e, err := Parse(text[loc[1]:end])
		if err != nil {
			return nil, fmt.Errorf("%s requirement: %w", t, err)
		}
		s.Entries = append(s.Entries, SetEntry{Type: t, Requirement: &Requirement{Kind: KindExpression, Expr: e}})
	}
	return s, nil
}

var typedRE = regexp.MustCompile(`\b(host|guest|designated|library|plugin)\s*=>`)

// encodeOID converts dotted OID text to DER content bytes (no tag or length),
// which is how requirements store OIDs.
func encodeOID(s string) ([]byte, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("bad OID %q", s)
	}
	arcs := make([]*big.Int, len(parts))
	for i, p := range parts {
		v, ok := new(big.Int).SetString(p, 10)
		if !ok || v.Sign() < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		arcs[i] = v
	}
	if arcs[0].Cmp(big.NewInt(2)) > 0 || (arcs[0].Cmp(big.NewInt(2)) < 0 && arcs[1].Cmp(big.NewInt(40)) >= 0) {
		return nil, fmt.Errorf("bad OID %q", s)
	}
	first := new(big.Int).Mul(arcs[0], big.NewInt(40))
	first.Add(first, arcs[1])
	out := base128(nil, first)
	for _, a := range arcs[2:] {
		out = base128(out, a)
	}
	return out, nil
}

func base128(dst []byte, v *big.Int) []byte {
	if v.Sign() == 0 {
		return append(dst, 0)
	}
	var groups []byte
	x := new(big.Int).Set(v)
	m := big.NewInt(0x7f)
	for x.Sign() > 0 {
		groups = append(groups, byte(new(big.Int).And(x, m).Int64()))
		x.Rsh(x, 7)
	}
	for i := len(groups) - 1; i >= 0; i-- {
		b := groups[i]
		if i > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
	}
	return dst
}

// oidString renders DER OID content bytes as dotted text, or as hex when they are
// not a valid encoding.
func oidString(b []byte) string {
	var arcs []*big.Int
	cur := new(big.Int)
	started := false
	for i, c := range b {
		if !started && c == 0x80 {
			return "H" + strconv.Quote(fmt.Sprintf("%x", b))
		}
		started = true
		cur.Lsh(cur, 7)
		cur.Or(cur, big.NewInt(int64(c&0x7f)))
		if c&0x80 == 0 {
			arcs = append(arcs, cur)
			cur = new(big.Int)
			started = false
		} else if i == len(b)-1 {
			return "H" + strconv.Quote(fmt.Sprintf("%x", b))
		}
	}
	if len(arcs) == 0 {
		return "H\"\""
	}
	var sb strings.Builder
	first := arcs[0]
	switch {
	case first.Cmp(big.NewInt(80)) >= 0:
		sb.WriteString("2." + new(big.Int).Sub(first, big.NewInt(80)).String())
	case first.Cmp(big.NewInt(40)) >= 0:
		sb.WriteString("1." + new(big.Int).Sub(first, big.NewInt(40)).String())
	default:
		sb.WriteString("0." + first.String())
	}
	for _, a := range arcs[1:] {
		sb.WriteString("." + a.String())
	}
	return sb.String()
}
