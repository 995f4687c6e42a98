// Package wire is the JSON protocol between a remote-signing client (initiator
// or signer) and the relay, exactly as rcodesign and its reference relay speak
// it: one JSON object per websocket text message, client requests
// {"request_id","api","payload"} and server messages
// {"request_id","type","ttl","payload"}.
//
// Decoding is strict where sloppiness would hide bugs or let a peer confuse
// the other side: exact field names (no case folding), no duplicate keys,
// exact JSON types (a ttl of 600.0 or "600" is an error, as it is for
// rcodesign), valid UTF-8, bounded sizes. It is tolerant where the protocol
// needs room to grow: unknown fields are ignored, as rcodesign ignores them.
//
// Decoding never panics and never allocates much more than its input (see
// FuzzParseRequest and FuzzParseServerMessage).
package wire

// APIs a client calls (the request "api" field).
const (
	APIHello         = "hello"
	APICreateSession = "create-session"
	APIJoinSession   = "join-session"
	APISendMessage   = "send-message"
	APIGoodbye       = "goodbye"
)

// APIs returns every API, sorted, as the reference relay lists them in its
// greeting. rcodesign requires create-session, join-session, send-message and
// goodbye to be present.
func APIs() []string {
	return []string{APICreateSession, APIGoodbye, APIHello, APIJoinSession, APISendMessage}
}

// Server message types (the "type" field). rcodesign fails on any other value.
const (
	TypeError          = "error"
	TypeGreeting       = "greeting"
	TypeSessionCreated = "session-created"
	TypeSessionJoined  = "session-joined"
	TypeMessageSent    = "message-sent"
	TypePeerMessage    = "peer-message"
	TypeSessionClosed  = "session-closed"
)

// knownTypes is the closed set of server message types.
var knownTypes = map[string]bool{
	TypeError: true, TypeGreeting: true, TypeSessionCreated: true, TypeSessionJoined: true,
	TypeMessageSent: true, TypePeerMessage: true, TypeSessionClosed: true,
}

// Error codes carried by an "error" message. The first seven are the reference
// relay's and keep their meaning; the others are farsign's. relay/doc.go says
// when the farsign relay sends each one.
const (
	CodeRequestJSONParse   = "REQUEST_JSON_PARSE"
	CodeNoRequestID        = "NO_REQUEST_ID"
	CodeNoAPI              = "NO_API"
	CodeUnknownAPI         = "UNKNOWN_API"
	CodeSessionJoinFailed  = "SESSION_JOIN_FAILED"
	CodeNotSessionMember   = "NOT_SESSION_MEMBER"
	CodeMessageSendFailure = "MESSAGE_SEND_FAILURE"
	// CodeUnhandledException is what the reference relay sends for any
	// server-side exception. farsign never sends it; clients may receive it.
	CodeUnhandledException = "UNHANDLED_EXCEPTION"

	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeInvalidPayload   = "INVALID_PAYLOAD"
	CodeMessageTooLarge  = "MESSAGE_TOO_LARGE"
	CodeRateLimited      = "RATE_LIMITED"
	CodeInvalidSessionID = "INVALID_SESSION_ID"
	CodeSessionExists    = "SESSION_EXISTS"
	CodeTooManySessions  = "TOO_MANY_SESSIONS"
	CodeSessionNotFound  = "SESSION_NOT_FOUND"
	CodeSessionExpired   = "SESSION_EXPIRED"
	CodeInternalError    = "INTERNAL_ERROR"
)

// Size limits applied while decoding.
const (
	// MaxMessageSize is the largest message either side decodes. No client of
	// this protocol legitimately comes near it: the reference deployment
	// (API Gateway) refuses anything over 128 KiB, which is the farsign
	// relay's default limit too.
	MaxMessageSize = 1 << 20
	// MaxRequestIDLen bounds request_id (rcodesign sends 36-character UUIDs).
	// A relay echoes it back, so it must be bounded.
	MaxRequestIDLen = 128
	// MaxSessionIDLen bounds session_id (rcodesign sends 36-character UUIDs).
	MaxSessionIDLen = 128
	// MaxAPILen bounds the api name.
	MaxAPILen = 64
)

// Error is a protocol violation found while decoding. Code is the error code a
// relay replies with; Msg explains it to a person and never quotes more than
// a bounded, sanitized piece of the input.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

func errorf(code, msg string) *Error { return &Error{Code: code, Msg: msg} }
