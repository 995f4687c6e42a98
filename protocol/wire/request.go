package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
)

// Request is a client→server envelope.
type Request struct {
	// RequestID is nil when the client sent JSON null, which the reference
	// relay accepts; an absent request_id is an error (NO_REQUEST_ID).
	RequestID *string
	// API is one of the API* constants.
	API string
	// Payload is the raw payload object, or nil when it was null or absent.
	Payload json.RawMessage

	payloadMembers members // Payload split by ParseRequest
}

// ParseRequest decodes a client request envelope. The payload is checked to
// be an object or null; decode it with the method for its API
// (CreateSession, JoinSession, SendMessage, Goodbye).
//
// On error the returned *Error carries the code to reply with, and the
// returned Request holds whatever was decoded before the problem (in
// particular RequestID, so a relay can echo it in its error reply).
func ParseRequest(data []byte) (Request, error) {
	var r Request
	sub := subObject{name: "payload"}
	f, perr := checkMessage(data, &sub)
	if perr != nil {
		return r, perr
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
		// checkMessage split p (the first member named payload, the only
		// one since duplicates fail) while it scanned the envelope.
		if sub.dup != nil {
			return r, errorf(CodeInvalidPayload, "payload: "+sub.dup.Error())
		}
		r.Payload, r.payloadMembers = p, sub.ms
	}
	return r, nil
}

func knownAPI(api string) bool {
	switch api {
	case APIHello, APICreateSession, APIJoinSession, APISendMessage, APIGoodbye:
		return true
	}
	return false
}

// CreateSession is the create-session payload. Marshalled, it has rcodesign's
// field order and serializes absent optional values as null, as rcodesign does.
type CreateSession struct {
	SessionID string `json:"session_id"`
	// TTL is the requested lifetime in seconds; nil when the client sent
	// null or nothing (the relay then grants its maximum). rcodesign always
	// sends 600.
	TTL *uint64 `json:"ttl"`
	// Context is forwarded verbatim to the joiner; rcodesign sends null.
	Context *string `json:"context"`
}

// JoinSession is the join-session payload.
type JoinSession struct {
	SessionID string `json:"session_id"`
	// Context is forwarded verbatim to the initiator: std-base64 of the
	// scheme's join context for rcodesign.
	Context *string `json:"context"`
}

// SendMessage is the send-message payload.
type SendMessage struct {
	SessionID string `json:"session_id"`
	// Message is forwarded verbatim to the peer: std-base64 of an AEAD
	// ciphertext for rcodesign. The relay does not interpret it.
	Message string `json:"message"`
}

// Goodbye is the goodbye payload.
type Goodbye struct {
	SessionID string  `json:"session_id"`
	Reason    *string `json:"reason"`
}

// payload returns the payload's members, or an error if the payload is
// missing (every API but hello needs one).
func (r Request) payload() (members, error) {
	if r.Payload == nil {
		return nil, errorf(CodeInvalidPayload, r.API+" requires a payload object")
	}
	if r.payloadMembers != nil {
		return r.payloadMembers, nil
	}
	f, err := object(r.Payload, nil)
	if err != nil {
		return nil, errorf(CodeInvalidPayload, "payload: "+err.Error())
	}
	return f, nil
}

func sessionID(f members) (string, error) {
	id, present, err := stringMember(f.get("session_id"))
	switch {
	case err != nil:
		return "", errorf(CodeInvalidPayload, "session_id must be a string")
	case !present:
		return "", errorf(CodeInvalidPayload, "payload is missing session_id")
	case id == "" || len(id) > MaxSessionIDLen:
		return "", errorf(CodeInvalidSessionID, "session_id must be 1 to 128 bytes")
	}
	return id, nil
}

func optString(f members, name string) (*string, error) {
	s, present, err := stringMember(f.get(name))
	if err != nil {
		return nil, errorf(CodeInvalidPayload, name+" must be a string or null")
	}
	if !present {
		return nil, nil
	}
	return &s, nil
}

// CreateSession decodes a create-session payload.
func (r Request) CreateSession() (CreateSession, error) {
	var p CreateSession
	f, err := r.payload()
	if err != nil {
		return p, err
	}
	if p.SessionID, err = sessionID(f); err != nil {
		return p, err
	}
	ttl, present, err := uintMember(f.get("ttl"))
	if err != nil {
		return p, errorf(CodeInvalidPayload, "ttl must be a non-negative integer or null")
	}
	if present {
		p.TTL = &ttl
	}
	p.Context, err = optString(f, "context")
	return p, err
}

// JoinSession decodes a join-session payload.
func (r Request) JoinSession() (JoinSession, error) {
	var p JoinSession
	f, err := r.payload()
	if err != nil {
		return p, err
	}
	if p.SessionID, err = sessionID(f); err != nil {
		return p, err
	}
	p.Context, err = optString(f, "context")
	return p, err
}

// SendMessage decodes a send-message payload.
func (r Request) SendMessage() (SendMessage, error) {
	var p SendMessage
	var raw []byte
	var err error
	if p.SessionID, raw, err = r.sendMessage(); err != nil {
		return p, err
	}
	m, _, err := stringMember(raw)
	if err != nil {
		return p, errorf(CodeInvalidPayload, "message must be a string")
	}
	p.Message = m
	return p, nil
}

// SendMessageEncoded is a send-message payload decoded for forwarding (see
// Request.SendMessageEncoded).
type SendMessageEncoded struct {
	SessionID string
	// Message is the message as the peer will receive it, in JSON.
	Message EncodedString
}

// SendMessageEncoded decodes a send-message payload for a relay, which
// forwards the message without looking at it: it makes the same checks and
// returns the same errors as SendMessage, but keeps the message encoded
// (see EncodedString), so that forwarding it in an
// EncodedPeerMessagePayload neither unescapes nor re-escapes it.
//
// The message may share memory with the data given to ParseRequest.
func (r Request) SendMessageEncoded() (SendMessageEncoded, error) {
	var p SendMessageEncoded
	var raw []byte
	var err error
	if p.SessionID, raw, err = r.sendMessage(); err != nil {
		return p, err
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		// Escaped: decode and re-encode, so that the peer receives
		// exactly the bytes PeerMessagePayload would give it: \/ becomes
		// /, \u0041 becomes A, and a lone surrogate escape (which a strict
		// decoder may refuse) becomes U+FFFD, as it always has. Forwarding
		// the token as sent would change all three. rcodesign's base64
		// messages never get here.
		m, err := unescape(raw)
		if err != nil {
			return p, errorf(CodeInvalidPayload, "message must be a string")
		}
		p.Message = EncodedString{token: appendString(nil, m), n: len(m)}
	} else {
		// A string token without escapes holds no '"', '\\' or control
		// byte (scanString refused them), which is all appendString
		// escapes: the token is already its encoding.
		p.Message = EncodedString{token: raw, n: len(raw) - 2}
	}
	return p, nil
}

// sendMessage does the checks SendMessage and SendMessageEncoded share and
// returns the session id and the raw message token, a JSON string. As
// SendMessage always has, it returns the session id with an error about
// the message.
func (r Request) sendMessage() (sid string, message []byte, err error) {
	f, err := r.payload()
	if err != nil {
		return "", nil, err
	}
	if sid, err = sessionID(f); err != nil {
		return "", nil, err
	}
	raw := f.get("message")
	switch {
	case isNull(raw):
		return sid, nil, errorf(CodeInvalidPayload, "payload is missing message")
	case raw[0] != '"':
		return sid, nil, errorf(CodeInvalidPayload, "message must be a string")
	}
	return sid, raw, nil
}

// Goodbye decodes a goodbye payload.
func (r Request) Goodbye() (Goodbye, error) {
	var p Goodbye
	f, err := r.payload()
	if err != nil {
		return p, err
	}
	if p.SessionID, err = sessionID(f); err != nil {
		return p, err
	}
	p.Reason, err = optString(f, "reason")
	return p, err
}

// EncodeRequest encodes a client request the way rcodesign does: compact,
// fields request_id, api, payload in that order, payload null when nil.
// payload is one of the payload types of this package (or nil for hello).
func EncodeRequest(requestID, api string, payload any) ([]byte, error) {
	return marshal(struct {
		RequestID string `json:"request_id"`
		API       string `json:"api"`
		Payload   any    `json:"payload"`
	}{requestID, api, payload})
}

// NewRequestID returns a fresh random UUIDv4 in lowercase hyphenated form, as
// rcodesign uses for request_id and session_id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
