package requirement

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// String formats e in Apple's requirement language. And/or chains nest to the
// right (as codesign and rcodesign build them) and print without parentheses;
// any other nesting is parenthesized so that Parse(e.String()) rebuilds the same
// tree.
func (e *Expr) String() string {
	var sb strings.Builder
	e.format(&sb)
	return sb.String()
}

func (e *Expr) format(sb *strings.Builder) {
	switch e.Op {
	case OpFalse:
		sb.WriteString("never")
	case OpTrue:
		sb.WriteString("always")
	case OpIdent:
		sb.WriteString("identifier " + quote(e.Str))
	case OpAppleAnchor:
		sb.WriteString("anchor apple")
	case OpAppleGenericAnchor:
		sb.WriteString("anchor apple generic")
	case OpNamedAnchor:
		sb.WriteString("anchor apple named " + quote(e.Str))
	case OpNamedCode:
		sb.WriteString("named code " + quote(e.Str))
	case OpAnchorHash:
		fmt.Fprintf(sb, "certificate %s = H\"%s\"", slotName(e.Slot), hex.EncodeToString(e.Data))
	case OpInfoKeyValue:
		fmt.Fprintf(sb, "info[%s] = %s", e.Str, quote(e.Value))
	case OpAnd, OpOr:
		word := " and "
		if e.Op == OpOr {
			word = " or "
		}
		// Left operands of the same or lower precedence need parentheses to keep
		// the tree shape; right operands only when of lower precedence.
		wrapLeft := e.A.Op == OpOr || e.A.Op == e.Op
		wrapRight := e.Op == OpAnd && e.B.Op == OpOr
		writeOperand(sb, e.A, wrapLeft)
		sb.WriteString(word)
		writeOperand(sb, e.B, wrapRight)
	case OpNot:
		sb.WriteString("! ")
		writeOperand(sb, e.A, e.A.Op == OpAnd || e.A.Op == OpOr)
	case OpCDHash:
		fmt.Fprintf(sb, "cdhash H\"%s\"", hex.EncodeToString(e.Data))
	case OpInfoKeyField:
		fmt.Fprintf(sb, "info [%s]", e.Str)
		e.Match.format(sb)
	case OpEntitlementField:
		fmt.Fprintf(sb, "entitlement [%s]", e.Str)
		e.Match.format(sb)
	case OpCertField:
		fmt.Fprintf(sb, "certificate %s[%s]", slotName(e.Slot), e.Str)
		e.Match.format(sb)
	case OpCertGeneric:
		fmt.Fprintf(sb, "certificate %s[field.%s]", slotName(e.Slot), oidString(e.Data))
		e.Match.format(sb)
	case OpCertPolicy:
		fmt.Fprintf(sb, "certificate %s[policy.%s]", slotName(e.Slot), oidString(e.Data))
		e.Match.format(sb)
	case OpCertFieldDate:
		fmt.Fprintf(sb, "certificate %s[timestamp.%s]", slotName(e.Slot), oidString(e.Data))
		e.Match.format(sb)
	case OpTrustedCert:
		fmt.Fprintf(sb, "certificate %s trusted", slotName(e.Slot))
	case OpTrustedCerts:
		sb.WriteString("anchor trusted")
	case OpPlatform:
		fmt.Fprintf(sb, "platform = %d", e.Platform)
	case OpNotarized:
		sb.WriteString("notarized")
	case OpLegacyDevID:
		sb.WriteString("legacy")
	default:
		fmt.Fprintf(sb, "opcode(%d)", e.Op)
	}
}

func writeOperand(sb *strings.Builder, e *Expr, paren bool) {
	if paren {
		sb.WriteByte('(')
	}
	e.format(sb)
	if paren {
		sb.WriteByte(')')
	}
}

func (m Match) format(sb *strings.Builder) {
	switch m.Op {
	case MatchExists:
		sb.WriteString(" /* exists */")
	case MatchAbsent:
		sb.WriteString(" absent")
	case MatchEqual:
		sb.WriteString(" = " + value(m.Value))
	case MatchContains:
		sb.WriteString(" = *" + value(m.Value) + "*")
	case MatchBeginsWith:
		sb.WriteString(" = " + value(m.Value) + "*")
	case MatchEndsWith:
		sb.WriteString(" = *" + value(m.Value))
	case MatchLessThan:
		sb.WriteString(" < " + value(m.Value))
	case MatchGreaterThan:
		sb.WriteString(" > " + value(m.Value))
	case MatchLessEqual:
		sb.WriteString(" <= " + value(m.Value))
	case MatchGreaterEqual:
		sb.WriteString(" >= " + value(m.Value))
	case MatchOn, MatchBefore, MatchAfter, MatchOnOrBefore, MatchOnOrAfter:
		op := map[MatchOp]string{MatchOn: "=", MatchBefore: "<", MatchAfter: ">", MatchOnOrBefore: "<=", MatchOnOrAfter: ">="}[m.Op]
		fmt.Fprintf(sb, " %s timestamp %s", op, quote(time.Unix(m.Time, 0).UTC().Format(time.RFC3339)))
	}
}

// value prints a match operand: a quoted string when it is printable text, a
// hex literal otherwise.
func value(b []byte) string {
	if utf8.Valid(b) && printable(string(b)) {
		return quote(string(b))
	}
	return "H\"" + hex.EncodeToString(b) + "\""
}

func printable(s string) bool {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

func quote(s string) string { return strconv.Quote(s) }

func slotName(s int32) string {
	switch s {
	case SlotLeaf:
		return "leaf"
	case SlotRoot:
		return "root"
	}
	return strconv.Itoa(int(s))
}

// Parse compiles a requirement expression from its text form, e.g.
//
//	identifier "com.example.tool" and anchor apple generic
//	certificate root = H"e1c7216e46533c923b7cfc94e86c7043790b96e9"
//	anchor apple generic and certificate leaf[subject.OU] = "ABCDE12345"
//	certificate 1[field.1.2.840.113635.100.6.2.6] exists
//
// "and" binds tighter than "or"; both associate to the right; "!" negates;
// parentheses group. Comments /* ... */ are ignored.
func Parse(text string) (*Expr, error) {
	p := &parser{lx: lexer{src: text}}
	p.next()
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf("unexpected %s after the expression", p.tok)
	}
	return e, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tWord
	tString
	tHash
	tBracket // [ ... ] with its raw content
	tPunct
	tErr
)

type token struct {
	kind tokKind
	text string // word, unquoted string, hex digits of a hash, bracket content, punctuation
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return strconv.Quote(t.text)
	case tHash:
		return "H\"" + t.text + "\""
	case tBracket:
		return "[" + t.text + "]"
	case tErr:
		return t.text
	}
	return strconv.Quote(t.text)
}

type lexer struct {
	src string
	pos int
}

func isWordByte(c byte) bool {
	return c == '.' || c == '_' || c == '-' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (l *lexer) next() token {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.pos++
			continue
		}
		if strings.HasPrefix(l.src[l.pos:], "/*") {
			end := strings.Index(l.src[l.pos+2:], "*/")
			if end < 0 {
				return token{kind: tErr, text: "unterminated comment", pos: l.pos}
			}
			// "/* exists */" is how codesign prints an existence test; keep it.
			if strings.TrimSpace(l.src[l.pos+2:l.pos+2+end]) == "exists" {
				t := token{kind: tWord, text: "exists", pos: l.pos}
				l.pos += end + 4
				return t
			}
			l.pos += end + 4
			continue
		}
		break
	}
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: l.pos}
	}
	start := l.pos
	c := l.src[l.pos]
	switch {
	case c == '"':
		s, n, err := unquotePrefix(l.src[l.pos:])
		if err != nil {
			return token{kind: tErr, text: "bad string literal", pos: start}
		}
		l.pos += n
		return token{kind: tString, text: s, pos: start}
	case c == 'H' && strings.HasPrefix(l.src[l.pos:], "H\""):
		end := strings.IndexByte(l.src[l.pos+2:], '"')
		if end < 0 {
			return token{kind: tErr, text: "unterminated hash literal", pos: start}
		}
		h := l.src[l.pos+2 : l.pos+2+end]
		l.pos += end + 3
		return token{kind: tHash, text: h, pos: start}
	case c == '[':
		end := strings.IndexByte(l.src[l.pos:], ']')
		if end < 0 {
			return token{kind: tErr, text: "unterminated [", pos: start}
		}
		t := token{kind: tBracket, text: l.src[l.pos+1 : l.pos+end], pos: start}
		l.pos += end + 1
		return t
	case strings.HasPrefix(l.src[l.pos:], "<=") || strings.HasPrefix(l.src[l.pos:], ">="):
		l.pos += 2
		return token{kind: tPunct, text: l.src[start:l.pos], pos: start}
	case strings.ContainsRune("()=~<>!*", rune(c)):
		l.pos++
		return token{kind: tPunct, text: string(c), pos: start}
	case isWordByte(c):
		for l.pos < len(l.src) && isWordByte(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tWord, text: l.src[start:l.pos], pos: start}
	}
	return token{kind: tErr, text: fmt.Sprintf("unexpected character %q", c), pos: start}
}

// unquotePrefix unquotes the Go/C-style string literal at the start of s.
func unquotePrefix(s string) (string, int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			return v, i + 1, err
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

type parser struct {
	lx  lexer
	tok token
}

func (p *parser) next() { p.tok = p.lx.next() }

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("requirement syntax error at offset %d: %s", p.tok.pos, fmt.Sprintf(format, args...))
}

func (p *parser) isWord(w string) bool { return p.tok.kind == tWord && p.tok.text == w }
func (p *parser) isPunct(s string) bool {
	return p.tok.kind == tPunct && p.tok.text == s
}

func (p *parser) or(depth int) (*Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf("expression nested deeper than %d", maxDepth)
	}
	a, err := p.and(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.isWord("or") || p.isPunct("|") {
		p.next()
		b, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpOr, A: a, B: b}, nil
	}
	return a, nil
}

func (p *parser) and(depth int) (*Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf("expression nested deeper than %d", maxDepth)
	}
	a, err := p.unary(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.isWord("and") {
		p.next()
		b, err := p.and(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpAnd, A: a, B: b}, nil
	}
	return a, nil
}

func (p *parser) unary(depth int) (*Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf("expression nested deeper than %d", maxDepth)
	}
	if p.isPunct("!") || p.isWord("not") {
		p.next()
		a, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpNot, A: a}, nil
	}
	if p.isPunct("(") {
		p.next()
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isPunct(")") {
			return nil, p.errorf("expected ) but found %s", p.tok)
		}
		p.next()
		return e, nil
	}
	return p.primary()
}

func (p *parser) primary() (*Expr, error) {
	if p.tok.kind == tErr {
		return nil, p.errorf("%s", p.tok.text)
	}
	if p.tok.kind != tWord {
		return nil, p.errorf("expected a requirement but found %s", p.tok)
	}
	w := p.tok.text
	p.next()
	switch w {
	case "always", "true":
		return &Expr{Op: OpTrue}, nil
	case "never", "false":
		return &Expr{Op: OpFalse}, nil
	case "notarized":
		return &Expr{Op: OpNotarized}, nil
	case "legacy":
		return &Expr{Op: OpLegacyDevID}, nil
	case "identifier":
		if p.isPunct("=") {
			p.next()
		}
		s, err := p.stringValue()
		if err != nil {
			return nil, err
		}
		return Identifier(s), nil
	case "cdhash":
		h, err := p.hash()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpCDHash, Data: h}, nil
	case "platform":
		if !p.isPunct("=") {
			return nil, p.errorf("expected = after platform")
		}
		p.next()
		if p.tok.kind != tWord {
			return nil, p.errorf("expected a platform number")
		}
		n, err := strconv.ParseUint(p.tok.text, 0, 32)
		if err != nil {
			return nil, p.errorf("bad platform number %q", p.tok.text)
		}
		p.next()
		return &Expr{Op: OpPlatform, Platform: uint32(n)}, nil
	case "named":
		if !p.isWord("code") {
			return nil, p.errorf("expected \"code\" after \"named\"")
		}
		p.next()
		s, err := p.stringValue()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpNamedCode, Str: s}, nil
	case "anchor":
		switch {
		case p.isWord("apple"):
			p.next()
			if p.isWord("generic") {
				p.next()
				return AnchorAppleGeneric(), nil
			}
			if p.isWord("named") {
				p.next()
				s, err := p.stringValue()
				if err != nil {
					return nil, err
				}
				return &Expr{Op: OpNamedAnchor, Str: s}, nil
			}
			return AnchorApple(), nil
		case p.isWord("trusted"):
			p.next()
			return &Expr{Op: OpTrustedCerts}, nil
		}
		return p.certificate(SlotRoot)
	case "certificate", "cert":
		if p.tok.kind != tWord {
			return nil, p.errorf("expected a certificate position (leaf, root, anchor or a number) but found %s", p.tok)
		}
		slot, err := parseSlot(p.tok.text)
		if err != nil {
			return nil, p.errorf("%v", err)
		}
		p.next()
		return p.certificate(slot)
	case "info", "entitlement":
		if p.tok.kind != tBracket {
			return nil, p.errorf("expected [key] after %s", w)
		}
		key := p.tok.text
		p.next()
		m, err := p.match()
		if err != nil {
			return nil, err
		}
		op := OpInfoKeyField
		if w == "entitlement" {
			op = OpEntitlementField
		}
		return &Expr{Op: op, Str: key, Match: m}, nil
	}
	return nil, p.errorf("unknown requirement %q", w)
}

func parseSlot(s string) (int32, error) {
	switch s {
	case "leaf":
		return SlotLeaf, nil
	case "root", "anchor":
		return SlotRoot, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad certificate position %q (want leaf, root, anchor or a number)", s)
	}
	return int32(n), nil
}

// certificate parses what follows "certificate <slot>": "= H"..."", "trusted" or
// "[field] match".
func (p *parser) certificate(slot int32) (*Expr, error) {
	switch {
	case p.isPunct("="):
		p.next()
		h, err := p.hash()
		if err != nil {
			return nil, err
		}
		return CertificateHash(slot, h), nil
	case p.isWord("trusted"):
		p.next()
		return &Expr{Op: OpTrustedCert, Slot: slot}, nil
	case p.tok.kind == tBracket:
		field := p.tok.text
		p.next()
		m, err := p.match()
		if err != nil {
			return nil, err
		}
		for prefix, op := range map[string]Op{"field.": OpCertGeneric, "policy.": OpCertPolicy, "timestamp.": OpCertFieldDate} {
			if strings.HasPrefix(field, prefix) {
				der, err := encodeOID(strings.TrimPrefix(field, prefix))
				if err != nil {
					return nil, p.errorf("%v", err)
				}
				return &Expr{Op: op, Slot: slot, Data: der, Match: m}, nil
			}
		}
		return CertificateField(slot, field, m), nil
	}
	return nil, p.errorf("expected = H\"...\", trusted or [field] after the certificate position, found %s", p.tok)
}

func (p *parser) hash() ([]byte, error) {
	if p.tok.kind != tHash {
		return nil, p.errorf("expected a hash literal H\"...\" but found %s", p.tok)
	}
	h, err := hex.DecodeString(p.tok.text)
	if err != nil {
		return nil, p.errorf("bad hash literal: %v", err)
	}
	p.next()
	return h, nil
}

func (p *parser) stringValue() (string, error) {
	switch p.tok.kind {
	case tString, tWord:
		s := p.tok.text
		p.next()
		return s, nil
	}
	return "", p.errorf("expected a string but found %s", p.tok)
}

// operand reads a match operand: a string, a bare word or a hash literal.
func (p *parser) operand() ([]byte, error) {
	switch p.tok.kind {
	case tString, tWord:
		s := p.tok.text
		p.next()
		return []byte(s), nil
	case tHash:
		return p.hash()
	}
	return nil, p.errorf("expected a value but found %s", p.tok)
}

func (p *parser) match() (Match, error) {
	switch {
	case p.isWord("exists"):
		p.next()
		return Exists(), nil
	case p.isWord("absent"):
		p.next()
		return Match{Op: MatchAbsent}, nil
	case p.isPunct("~"):
		p.next()
		v, err := p.operand()
		return Match{Op: MatchContains, Value: v}, err
	case p.isPunct("=") || p.isPunct("<") || p.isPunct(">") || p.isPunct("<=") || p.isPunct(">="):
		op := p.tok.text
		p.next()
		if p.isWord("timestamp") {
			p.next()
			s, err := p.stringValue()
			if err != nil {
				return Match{}, err
			}
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return Match{}, p.errorf("bad timestamp %q: want RFC 3339", s)
			}
			mo := map[string]MatchOp{"=": MatchOn, "<": MatchBefore, ">": MatchAfter, "<=": MatchOnOrBefore, ">=": MatchOnOrAfter}[op]
			return Match{Op: mo, Time: t.Unix()}, nil
		}
		if op != "=" {
			v, err := p.operand()
			mo := map[string]MatchOp{"<": MatchLessThan, ">": MatchGreaterThan, "<=": MatchLessEqual, ">=": MatchGreaterEqual}[op]
			return Match{Op: mo, Value: v}, err
		}
		lead := false
		if p.isPunct("*") {
			lead = true
			p.next()
		}
		v, err := p.operand()
		if err != nil {
			return Match{}, err
		}
		trail := false
		if p.isPunct("*") {
			trail = true
			p.next()
		}
		switch {
		case lead && trail:
			return Match{Op: MatchContains, Value: v}, nil
		case lead:
			return Match{Op: MatchEndsWith, Value: v}, nil
		case trail:
			return Match{Op: MatchBeginsWith, Value: v}, nil
		}
		return Match{Op: MatchEqual, Value: v}, nil
	}
	// A bare field test means "exists", as in csreq.
	return Exists(), nil
}
