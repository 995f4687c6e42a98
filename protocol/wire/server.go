package wire

import (
	"encoding/json"
	"strconv"
)

// ServerMessage is a server→client envelope.
type ServerMessage struct {
	// RequestID is the id of the request this message answers, or nil (JSON
	// null). The farsign relay sets it only on replies to the requester,
	// never on messages pushed to the other peer: one peer's request ids are
	// none of the other's business.
	RequestID *string
	// Type is one of the Type* constants.
	Type string
	// TTL is the session's remaining lifetime in whole seconds, or nil (the
	// field is then omitted). rcodesign requires a non-negative integer.
	TTL *uint64
	// Payload is the raw payload, or nil when absent (omitted). Decode it
	// with the method for Type.
	Payload json.RawMessage
}

// ErrorPayload is the payload of an error message.
type ErrorPayload struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// GreetingPayload is the payload of a greeting (the reply to hello).
type GreetingPayload struct {
	APIs []string `json:"apis"`
	// MOTD is printed by rcodesign as "message from remote server: …" when
	// non-null.
	MOTD *string `json:"motd"`
}

// SessionJoinedPayload is the payload of session-joined: to the joiner, the
// initiator's create-session context; to the initiator, the joiner's
// join-session context.
type SessionJoinedPayload struct {
	Context *string `json:"context"`
}

// PeerMessagePayload is the payload of peer-message: the other peer's
// send-message message, verbatim.
type PeerMessagePayload struct {
	Message string `json:"message"`
}

// EncodedPeerMessagePayload is a peer-message payload whose message is
// already encoded: a relay forwards a send-message's message with it (see
// Request.SendMessageEncoded). It encodes to the same bytes as
// PeerMessagePayload with the decoded message.
type EncodedPeerMessagePayload struct {
	Message EncodedString
}

// EncodedString is a string held as its JSON encoding, exactly the bytes
// EncodeServerMessage writes for the string (a quoted token, with '"', '\\'
// and control characters escaped and nothing else), so writing it is a
// copy. The zero value is the empty string.
type EncodedString struct {
	token []byte // the JSON token, quotes included; nil for ""
	n     int    // the length of the decoded string
}

// Len returns the length in bytes of the string (not of its encoding).
func (s EncodedString) Len() int { return s.n }

func (s EncodedString) appendTo(dst []byte) []byte {
	if s.token == nil {
		return append(dst, '"', '"')
	}
	return append(dst, s.token...)
}

// SessionClosedPayload is the payload of session-closed pushed to a peer.
// rcodesign's signer requires the payload object to be present.
type SessionClosedPayload struct {
	Reason *string `json:"reason"`
}

// EncodeServerMessage encodes a server message. payload is one of the payload
// types of this package, or nil to omit the field (any other value is
// encoded with encoding/json); ttl nil omits ttl.
//
// The payload types of this package are encoded by hand: the relay encodes
// two messages for every message it forwards.
func EncodeServerMessage(requestID *string, typ string, ttl *uint64, payload any) ([]byte, error) {
	size := 64 + len(typ)
	if requestID != nil {
		size += len(*requestID)
	}
	switch p := payload.(type) {
	case PeerMessagePayload:
		size += len(p.Message) + 16
	case EncodedPeerMessagePayload:
		size += len(p.Message.token) + 14 // the token has its quotes
	}
	b := make([]byte, 0, size)
	b = append(b, `{"request_id":`...)
	b = appendOptString(b, requestID)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	if ttl != nil {
		b = append(b, `,"ttl":`...)
		b = strconv.AppendUint(b, *ttl, 10)
	}
	if payload != nil {
		b = append(b, `,"payload":`...)
		switch p := payload.(type) {
		case PeerMessagePayload:
			b = append(b, `{"message":`...)
			b = appendString(b, p.Message)
		case EncodedPeerMessagePayload:
			b = append(b, `{"message":`...)
			b = p.Message.appendTo(b)
		case ErrorPayload:
			b = append(b, `{"code":`...)
			b = appendString(b, p.Code)
			b = append(b, `,"message":`...)
			b = appendString(b, p.Message)
		case SessionJoinedPayload:
			b = append(b, `{"context":`...)
			b = appendOptString(b, p.Context)
		case SessionClosedPayload:
			b = append(b, `{"reason":`...)
			b = appendOptString(b, p.Reason)
		case GreetingPayload:
			b = append(b, `{"apis":`...)
			if p.APIs == nil {
				b = append(b, "null"...)
			} else {
				b = append(b, '[')
				for i, a := range p.APIs {
					if i > 0 {
						b = append(b, ',')
					}
					b = appendString(b, a)
				}
				b = append(b, ']')
			}
			b = append(b, `,"motd":`...)
			b = appendOptString(b, p.MOTD)
		default:
			raw, err := marshal(payload)
			if err != nil {
				return nil, err
			}
			b = append(b, raw...)
			return append(b, '}'), nil
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// ParseServerMessage decodes a server message envelope, with the checks
// rcodesign applies: a known type, request_id a string or null, ttl absent
// or a non-negative integer. Decode the payload with the method for Type.
func ParseServerMessage(data []byte) (ServerMessage, error) {
	var m ServerMessage
	f, perr := checkMessage(data, nil)
	if perr != nil {
		return m, perr
	}
	id, present, err := stringMember(f.get("request_id"))
	if err != nil {
		return m, errorf(CodeInvalidRequest, "request_id must be a string or null")
	}
	if len(id) > MaxRequestIDLen {
		return m, errorf(CodeInvalidRequest, "request_id longer than 128 bytes")
	}
	if present {
		m.RequestID = &id
	}
	typ, present, err := stringMember(f.get("type"))
	switch {
	case err != nil || !present:
		return m, errorf(CodeInvalidRequest, "type must be a string")
	case !knownTypes[typ]:
		return m, errorf(CodeInvalidRequest, "unknown server message type "+quote(typ, 32))
	}
	m.Type = typ
	ttl, present, err := uintMember(f.get("ttl"))
	if err != nil {
		return m, errorf(CodeInvalidRequest, "ttl must be a non-negative integer")
	}
	if present {
		m.TTL = &ttl
	}
	if p := f.get("payload"); !isNull(p) {
		m.Payload = p
	}
	return m, nil
}

func (m ServerMessage) payload(typ string) (members, error) {
	if m.Type != typ {
		return nil, errorf(CodeInvalidPayload, "message is "+quote(m.Type, 32)+", not "+quote(typ, 32))
	}
	if m.Payload == nil {
		return nil, errorf(CodeInvalidPayload, typ+" message without a payload")
	}
	f, err := object(m.Payload, nil)
	if err != nil {
		return nil, errorf(CodeInvalidPayload, typ+" payload: "+err.Error())
	}
	return f, nil
}

func reqString(f members, name string) (string, error) {
	s, present, err := stringMember(f.get(name))
	if err != nil || !present {
		return "", errorf(CodeInvalidPayload, name+" must be a string")
	}
	return s, nil
}

// ErrorReport decodes the payload of an error message.
func (m ServerMessage) ErrorReport() (ErrorPayload, error) {
	var p ErrorPayload
	f, err := m.payload(TypeError)
	if err != nil {
		return p, err
	}
	if p.Code, err = reqString(f, "code"); err != nil {
		return p, err
	}
	p.Message, err = reqString(f, "message")
	return p, err
}

// Greeting decodes the payload of a greeting. Like rcodesign it requires apis,
// an array of strings; it does not check which APIs are listed (see
// CheckGreeting).
func (m ServerMessage) Greeting() (GreetingPayload, error) {
	var p GreetingPayload
	f, err := m.payload(TypeGreeting)
	if err != nil {
		return p, err
	}
	raw := f.get("apis")
	if isNull(raw) || raw[0] != '[' {
		return p, errorf(CodeInvalidPayload, "apis must be an array of strings")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return p, errorf(CodeInvalidPayload, "apis must be an array of strings")
	}
	p.APIs = make([]string, 0, len(list))
	for _, e := range list {
		s, present, err := stringMember(e)
		if err != nil || !present {
			return p, errorf(CodeInvalidPayload, "apis must be an array of strings")
		}
		p.APIs = append(p.APIs, s)
	}
	p.MOTD, err = optString(f, "motd")
	return p, err
}

// CheckGreeting reports an error unless the greeting lists every API a
// remote-signing session needs (hello itself need not be listed).
func (p GreetingPayload) CheckGreeting() error {
	have := map[string]bool{}
	for _, a := range p.APIs {
		have[a] = true
	}
	for _, a := range []string{APICreateSession, APIJoinSession, APISendMessage, APIGoodbye} {
		if !have[a] {
			return errorf(CodeInvalidPayload, "relay does not offer the "+a+" API")
		}
	}
	return nil
}

// SessionJoined decodes the payload of session-joined.
func (m ServerMessage) SessionJoined() (SessionJoinedPayload, error) {
	var p SessionJoinedPayload
	f, err := m.payload(TypeSessionJoined)
	if err != nil {
		return p, err
	}
	p.Context, err = optString(f, "context")
	return p, err
}

// PeerMessage decodes the payload of peer-message.
func (m ServerMessage) PeerMessage() (PeerMessagePayload, error) {
	var p PeerMessagePayload
	f, err := m.payload(TypePeerMessage)
	if err != nil {
		return p, err
	}
	p.Message, err = reqString(f, "message")
	return p, err
}

// SessionClosed decodes the payload of session-closed. A session-closed
// without payload (the reference relay's reply to goodbye) is an error here;
// a caller that accepts it checks m.Payload == nil first.
func (m ServerMessage) SessionClosed() (SessionClosedPayload, error) {
	var p SessionClosedPayload
	f, err := m.payload(TypeSessionClosed)
	if err != nil {
		return p, err
	}
	p.Reason, err = optString(f, "reason")
	return p, err
}
