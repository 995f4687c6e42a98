package wire

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"
)

// This file keeps the decoder as it was before the send-message fast path
// (commit 3cfed4c): byte-at-a-time string scanning, the payload object
// scanned a second time by ParseRequest, and the forwarded message
// unescaped and re-escaped. FuzzFastPathMatchesReference checks that the
// fast path decides, decodes and forwards exactly as it did. Keep it as it
// is; it is the specification the fast path is held to.

func refObject(data []byte) (members, error) {
	i := skipWS(data, 0)
	if i >= len(data) {
		return nil, errSyntax
	}
	if data[i] != '{' {
		if _, err := refSkipValue(data, i, 0); err != nil {
			return nil, errSyntax
		}
		return nil, errNotObj
	}
	ms, end, err := refParseObject(data, i, 0, true)
	if err != nil {
		return nil, err
	}
	if skipWS(data, end) != len(data) {
		return nil, errTrailing
	}
	return ms, nil
}

func refParseObject(data []byte, i, depth int, keep bool) (members, int, error) {
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
		end, escaped, err := refScanString(data, i)
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
		if i, err = refSkipValue(data, i, depth+1); err != nil {
			return nil, 0, err
		}
		if keep {
			if seen == nil && len(ms) >= 16 {
				seen = make(map[string]bool, 2*len(ms))
				for _, m := range ms {
					seen[string(m.name)] = true
				}
			}
			dup := false
			if seen != nil {
				dup = seen[string(name)]
				seen[string(name)] = true
			} else {
				for _, m := range ms {
					if bytes.Equal(m.name, name) {
						dup = true
						break
					}
				}
			}
			if dup {
				return nil, 0, errors.New("duplicate field " + quote(string(name), 32))
			}
			ms = append(ms, member{name: name, val: data[vstart:i]})
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

func refSkipValue(data []byte, i, depth int) (int, error) {
	if i >= len(data) {
		return 0, errSyntax
	}
	switch c := data[i]; {
	case c == '{':
		_, end, err := refParseObject(data, i, depth, false)
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
			if i, err = refSkipValue(data, i, depth+1); err != nil {
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
		end, _, err := refScanString(data, i)
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

func refScanString(data []byte, i int) (end int, escaped bool, err error) {
	for i++; i < len(data); i++ {
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
	}
	return 0, false, errSyntax
}

// refParseRequest is ParseRequest as it was: checkMessage with the byte
// scanner, then the payload scanned again.
func refParseRequest(data []byte) (Request, error) {
	var r Request
	if len(data) > MaxMessageSize {
		return r, errorf(CodeMessageTooLarge, "message of "+strconv.Itoa(len(data))+" bytes exceeds the limit of "+strconv.Itoa(MaxMessageSize))
	}
	if !utf8.Valid(data) {
		return r, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: not valid UTF-8")
	}
	f, err := refObject(data)
	if err != nil {
		return r, errorf(CodeRequestJSONParse, "failed to parse JSON in message body: "+err.Error())
	}
	rid := f.get("request_id")
	if rid == nil {
		return r, errorf(CodeNoRequestID, "request is missing request_id field")
	}
	id, present, err := stringMember(rid)
	if err != nil {
		return r, errorf(CodeInvalidRequest, "request_id must be a string or null")
	}
	if len(id) > MaxRequestIDLen {
		return r, errorf(CodeInvalidRequest, "request_id longer than 128 bytes")
	}
	if present {
		r.RequestID = &id
	}
	api, present, err := stringMember(f.get("api"))
	switch {
	case err != nil:
		return r, errorf(CodeInvalidRequest, "api must be a string")
	case !present || api == "":
		return r, errorf(CodeNoAPI, "no API method specified")
	case !knownAPI(api):
		return r, errorf(CodeUnknownAPI, "unrecognized API method: "+quote(api, MaxAPILen))
	}
	r.API = api
	if p := f.get("payload"); !isNull(p) {
		if p[0] != '{' {
			return r, errorf(CodeInvalidRequest, "payload must be an object or null")
		}
		ms, err := refObject(p)
		if err != nil {
			return r, errorf(CodeInvalidPayload, "payload: "+err.Error())
		}
		r.Payload, r.payloadMembers = p, ms
	}
	return r, nil
}

// refSendMessage is Request.SendMessage as it was.
func refSendMessage(r Request) (SendMessage, error) {
	var p SendMessage
	f, err := r.payload()
	if err != nil {
		return p, err
	}
	if p.SessionID, err = sessionID(f); err != nil {
		return p, err
	}
	m, present, err := stringMember(f.get("message"))
	switch {
	case err != nil:
		return p, errorf(CodeInvalidPayload, "message must be a string")
	case !present:
		return p, errorf(CodeInvalidPayload, "payload is missing message")
	}
	p.Message = m
	return p, nil
}
