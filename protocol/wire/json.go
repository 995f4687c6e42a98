package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every decoding error (*Error unwraps to it).
var ErrMalformed = errors.New("wire: malformed message")

// Unwrap makes every *Error match ErrMalformed.
func (e *Error) Unwrap() error { return ErrMalformed }

// The decoder below is a small strict JSON scanner rather than
// encoding/json: the relay decodes every message it forwards, and the
// reflection- and token-based decoders cost it an order of magnitude more CPU
// than the websocket work around them (docs/benchmarks.md). It accepts
// exactly RFC 8259 JSON (FuzzObjectMatchesEncodingJSON checks it against
// encoding/json) and only splits objects into members; values are decoded
// on demand by the typed accessors.
//
// The relay's hot path is send-message, whose payload is dominated by one
// long opaque string (the peer's base64 ciphertext). Three things keep its
// cost close to one pass over that string: ParseRequest splits the payload
// object during the envelope scan instead of scanning it again (subObject),
// scanString skips 8 plain bytes at a time (specialMask), and the relay
// forwards the message as the JSON token it arrived as when that token is
// already exactly what it would write (EncodedString), instead of unescaping
// and re-escaping it.

// maxDepth bounds nesting in the unknown fields a message may carry.
const maxDepth = 64

// member is one "name": value pair of an object. name is the decoded name;
// val is the raw JSON value (a subslice of the input).
type member struct {
	name []byte
	val  []byte
}

// members is a decoded JSON object: its members in input order, no two with
// the same name.
type members []member

// get returns the raw value of member name, or nil if absent.
func (ms members) get(name string) []byte {
	for _, m := range ms {
		if string(m.name) == name {
			return m.val
		}
	}
	return nil
}

var (
	errSyntax   = errors.New("not valid JSON")
	errNotObj   = errors.New("not a JSON object")
	errTrailing = errors.New("trailing data after the JSON object")
	errDepth    = errors.New("JSON nested too deeply")
)

// object splits one JSON object into its members, rejecting anything that is
// not exactly one object (surrounding whitespace allowed), and duplicate
// member names (encoding/json would silently keep the last one, so two
// parsers could disagree about a message). Names are compared after
// unescaping, so "api" and "\u0061pi" are the same name. data must be valid
// UTF-8 (checkMessage checks). With sub non-nil, the object value of the
// top-level member sub.name is split during the same scan (see subObject).
func object(data []byte, sub *subObject) (members, error) {
	i := skipWS(data, 0)
	if i >= len(data) {
		return nil, errSyntax
	}
	if data[i] != '{' {
		if _, err := skipValue(data, i, 0); err != nil {
			return nil, errSyntax
		}
		return nil, errNotObj
	}
	ms, end, err := parseObject(data, i, 0, true, nil, sub)
	if err != nil {
		return nil, err
	}
	if skipWS(data, end) != len(data) {
		return nil, errTrailing
	}
	return ms, nil
}

// subObject asks parseObject to split the object value of one member (the
// request payload) while it scans the enclosing object, so that a message
// of a few hundred bytes is not scanned twice.
//
// A duplicate name inside that value is not an error of the scan: it is
// recorded in dup and reported by the caller after the checks that come
// before it (ParseRequest answers a duplicate in the payload with
// INVALID_PAYLOAD and the request's request_id, but a syntax error anywhere
// with REQUEST_JSON_PARSE). The scan of the value therefore goes on after a
// duplicate, exactly as far as a scan that does not keep members would.
type subObject struct {
	name string  // the member whose value to split, compared after unescaping
	ms   members // its members, nil if the member is absent or not an object
	dup  error   // the first duplicate name in it, if any (ms is then partial)
}

func skipWS(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// parseObject scans the object starting at data[i] == '{' and returns the
// index after it. With keep it also returns the members, and a duplicate
// name is an error, unless dup is non-nil: the first duplicate is then
// stored in *dup, left out of the members, and the scan goes on (see
// subObject). With sub non-nil, the object value of member sub.name is
// split into sub (only the first such member; a second one is a duplicate
// and fails the scan anyway).
func parseObject(data []byte, i, depth int, keep bool, dup *error, sub *subObject) (members, int, error) {
	if depth >= maxDepth {
		return nil, 0, errDepth
	}
	var ms members
	if keep {
		ms = make(members, 0, 4)
	}
	var seen map[string]bool // used once an object has many members
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return ms, i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, 0, errSyntax
		}
		end, escaped, err := scanString(data, i)
		if err != nil {
			return nil, 0, err
		}
		var name []byte
		if keep {
			name = data[i+1 : end-1]
			if escaped {
				s, err := unescape(data[i:end])
				if err != nil {
					return nil, 0, err
				}
				name = []byte(s)
			}
		}
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, 0, errSyntax
		}
		i = skipWS(data, i+1)
		vstart := i
		if sub != nil && sub.ms == nil && i < len(data) && data[i] == '{' && string(name) == sub.name {
			// Split it now, at the depth skipValue would scan it at, so
			// that the same inputs hit errDepth.
			if sub.ms, i, err = parseObject(data, i, depth+1, true, &sub.dup, nil); err != nil {
				return nil, 0, err
			}
		} else if i, err = skipValue(data, i, depth+1); err != nil {
			return nil, 0, err
		}
		if keep {
			if seen == nil && len(ms) >= 16 {
				seen = make(map[string]bool, 2*len(ms))
				for _, m := range ms {
					seen[string(m.name)] = true
				}
			}
			isDup := false
			if seen != nil {
				isDup = seen[string(name)]
				seen[string(name)] = true
			} else {
				for _, m := range ms {
					if bytes.Equal(m.name, name) {
						isDup = true
						break
					}
				}
			}
			switch {
			case !isDup:
				ms = append(ms, member{name: name, val: data[vstart:i]})
			case dup == nil:
				return nil, 0, errors.New("duplicate field " + quote(string(name), 32))
			case *dup == nil:
				*dup = errors.New("duplicate field " + quote(string(name), 32))
			}
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return nil, 0, errSyntax
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return ms, i + 1, nil
		default:
			return nil, 0, errSyntax
		}
	}
}

// skipValue validates the JSON value starting at data[i] and returns the
// index after it.
func skipValue(data []byte, i, depth int) (int, error) {
	if i >= len(data) {
		return 0, errSyntax
	}
	switch c := data[i]; {
	case c == '{':
		_, end, err := parseObject(data, i, depth, false, nil, nil)
		return end, err
	case c == '[':
		if depth >= maxDepth {
			return 0, errDepth
		}
		i = skipWS(data, i+1)
		if i < len(data) && data[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skipValue(data, i, depth+1); err != nil {
				return 0, err
			}
			i = skipWS(data, i)
			if i >= len(data) {
				return 0, errSyntax
			}
			switch data[i] {
			case ',':
				i = skipWS(data, i+1)
			case ']':
				return i + 1, nil
			default:
				return 0, errSyntax
			}
		}
	case c == '"':
		end, _, err := scanString(data, i)
		return end, err
	case c == '-' || ('0' <= c && c <= '9'):
		return scanNumber(data, i)
	case c == 't':
		return literal(data, i, "true")
	case c == 'f':
		return literal(data, i, "false")
	case c == 'n':
		return literal(data, i, "null")
	}
	return 0, errSyntax
}

func literal(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// scanString validates the string starting at data[i] == '"' and returns the
// index after its closing quote and whether it contains escapes.
//
// Plain bytes (everything but '"', '\\' and control characters; UTF-8 was
// checked for the whole message beforehand) are skipped 8 at a time: a
// send-message is mostly one long base64 string, and this loop is where
// the relay spends most of its decoding time.
func scanString(data []byte, i int) (end int, escaped bool, err error) {
	i++
	for {
		for len(data)-i >= 8 {
			if m := specialMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8 // the first special byte
				break
			}
			i += 8
		}
		if i >= len(data) {
			return 0, false, errSyntax
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c < 0x20:
			return 0, false, errSyntax
		case c == '\\':
			escaped = true
			i++
			if i >= len(data) {
				return 0, false, errSyntax
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-i < 5 || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return 0, false, errSyntax
				}
				i += 4
			default:
				return 0, false, errSyntax
			}
		}
		i++
	}
}

// specialMask returns, for the 8 bytes of v (the first byte in the low
// bits), a mask with bit 7 of each byte set where scanString must stop: '"',
// '\\' or a byte below 0x20. The mask may also mark bytes after the first
// marked one, never before it (the subtractions only borrow upward from a
// byte that matches), so its lowest set bit locates the first special byte
// exactly; TestSpecialMask checks every byte value at every position.
func specialMask(v uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := v ^ (ones * '"')  // zero bytes where v has '"'
	b := v ^ (ones * '\\') // zero bytes where v has '\\'
	// x-ones &^ x has bit 7 set in the bytes of x that are zero; v-0x20s
	// &^ v in the bytes of v below 0x20 (bytes >= 0x80 are masked by &^ v).
	return ((q-ones)&^q | (b-ones)&^b | (v-ones*0x20)&^v) & highs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) (int, error) {
	digits := func(i int) int {
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i
	}
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(i)
	default:
		return 0, errSyntax
	}
	if i < len(data) && data[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, errSyntax
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, errSyntax
		}
		i = j
	}
	return i, nil
}

// unescape decodes a scanned JSON string with escapes (rare in this
// protocol, so encoding/json does it).
func unescape(raw []byte) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

func isNull(raw []byte) bool { return raw == nil || string(raw) == "null" }

// stringMember decodes a JSON string member. present is false for an absent
// member or null; a value of any other type is an error.
func stringMember(raw []byte) (s string, present bool, err error) {
	if isNull(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, errors.New("not a string")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true, nil
	}
	s, err = unescape(raw)
	if err != nil {
		return "", false, errors.New("not a string")
	}
	return s, true, nil
}

// uintMember decodes a JSON non-negative integer member: digits only, so 600.0,
// 6e2, -1 and "600" are all refused, as rcodesign's u64 refuses them.
func uintMember(raw []byte) (v uint64, present bool, err error) {
	if isNull(raw) {
		return 0, false, nil
	}
	if raw[0] < '0' || raw[0] > '9' {
		return 0, false, errors.New("not a non-negative integer")
	}
	v, err = strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, false, errors.New("not a non-negative integer")
	}
	return v, true, nil
}

// quote returns s as a Go-quoted string cut to at most max runes, for error
// messages that mention client input without echoing unbounded or invisible
// bytes.
func quote(s string, max int) string {
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return strconv.Quote(string(r[:max])) + "…"
	}
	return strconv.Quote(s)
}

// appendString appends s as a JSON string. Only what JSON requires is
// escaped (", \ and control characters), so strings travel as the peer
// wrote them; s must be valid UTF-8 (everything decoded here is).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendOptString(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	return appendString(dst, *s)
}

// marshal encodes v compactly, without HTML escaping and without a trailing
// newline: the fallback for payload types without a hand-written encoder.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkMessage applies the checks common to both directions and splits the
// envelope (and, with sub, its payload; see subObject).
func checkMessage(data []byte, sub *subObject) (members, *Error) {
	if len(data) > MaxMessageSize {
		return nil, errorf(CodeMessageTooLarge, "message of "+strconv.Itoa(len(data))+" bytes exceeds the limit of "+strconv.Itoa(MaxMessageSize))
	}
	if !utf8.Valid(data) {
		return nil, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: not valid UTF-8")
	}
	f, err := object(data, sub)
	if err != nil {
		return nil, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: "+err.Error())
	}
	return f, nil
}
