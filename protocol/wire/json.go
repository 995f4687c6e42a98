package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every decoding error (*Error unwraps to it).
var ErrMalformed = errors.New("wire: malformed message")

// Unwrap makes every *Error match ErrMalformed.
func (e *Error) Unwrap() error { return ErrMalformed }

// object splits one JSON object into its members, rejecting anything that is
// not exactly one object, and duplicate member names (encoding/json would
// silently keep the last one, so two parsers could disagree on a message).
// Member names are compared after unescaping, so "api" and "\u0061pi" are
// the same name.
func object(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage, 4)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not valid JSON")
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("not valid JSON")
		}
		if _, dup := m[key]; dup {
			return nil, errors.New("duplicate field " + quote(key, 32))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errors.New("not valid JSON")
		}
		m[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// stringMember decodes a JSON string member. present is false for an absent member or
// null; a value of any other type is an error.
func stringMember(raw json.RawMessage) (s string, present bool, err error) {
	if isNull(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, errors.New("not a string")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, errors.New("not a string")
	}
	return s, true, nil
}

// uintMember decodes a JSON non-negative integer member: digits only, so 600.0,
// 6e2, -1 and "600" are all refused, as rcodesign's u64 refuses them.
func uintMember(raw json.RawMessage) (v uint64, present bool, err error) {
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

// marshal encodes v compactly, without HTML escaping (so base64 and other
// strings travel the way the peer wrote them) and without a trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkMessage applies the checks common to both directions.
func checkMessage(data []byte) (map[string]json.RawMessage, *Error) {
	if len(data) > MaxMessageSize {
		return nil, errorf(CodeMessageTooLarge, "message of "+strconv.Itoa(len(data))+" bytes exceeds the limit of "+strconv.Itoa(MaxMessageSize))
	}
	if !utf8.Valid(data) {
		return nil, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: not valid UTF-8")
	}
	f, err := object(data)
	if err != nil {
		return nil, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: "+err.Error())
	}
	return f, nil
}
