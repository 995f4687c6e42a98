package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var requestSeeds = []string{
	`{"request_id":"7c0e1b6a-7f43-4c8e-9f5e-0b5b8d1c2e3f","api":"hello","payload":null}`,
	`{"request_id":"r","api":"create-session","payload":{"session_id":"3f2504e0-4f89-41d3-9a0c-0305e82c3301","ttl":600,"context":null}}`,
	`{"request_id":"r","api":"join-session","payload":{"session_id":"3f25","context":"WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"3f25","message":"3sIbyIjO"}}`,
	`{"request_id":"r","api":"goodbye","payload":{"session_id":"3f25","reason":"signing operations completed"}}`,
	`{"request_id":null,"api":"goodbye","payload":{"session_id":"3f25","reason":null}}`,
	`{"request_id":"r","api":"create-session","payload":{"session_id":"s","ttl":600.0}}`,
	`{"request_id":"r","request_id":"r","api":"hello"}`,
	`{"request_id":"r","api":"hello","payload":{"a":[{"b":{}}]}} `,
	`{"api":"hello"}`,
	"{\"request_id\":\"\\ud800\",\"api\":\"hello\"}",
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"\u0000\n"}}`,
	``,
	`{`,
	`null`,
}

// FuzzParseRequest checks that request decoding never panics, that every
// error is a coded *Error, and that whatever decodes re-encodes to a message
// that decodes to the same values (what the relay forwards is what it read).
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) || we.Code == "" {
				t.Fatalf("error without code: %v", err)
			}
			return
		}
		if r.Payload != nil && !json.Valid(r.Payload) {
			t.Fatalf("payload is not valid JSON: %q", r.Payload)
		}
		var payload any
		switch r.API {
		case APIHello:
		case APICreateSession:
			payload, err = r.CreateSession()
		case APIJoinSession:
			payload, err = r.JoinSession()
		case APISendMessage:
			payload, err = r.SendMessage()
		case APIGoodbye:
			payload, err = r.Goodbye()
		default:
			t.Fatalf("accepted unknown api %q", r.API)
		}
		if err != nil {
			var we *Error
			if !errors.As(err, &we) || we.Code == "" {
				t.Fatalf("payload error without code: %v", err)
			}
			return
		}
		id := ""
		if r.RequestID != nil {
			id = *r.RequestID
		}
		enc, err := EncodeRequest(id, r.API, payload)
		if err != nil {
			t.Fatalf("EncodeRequest: %v", err)
		}
		r2, err := ParseRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request %s does not parse: %v", enc, err)
		}
		var payload2 any
		switch r2.API {
		case APICreateSession:
			payload2, err = r2.CreateSession()
		case APIJoinSession:
			payload2, err = r2.JoinSession()
		case APISendMessage:
			payload2, err = r2.SendMessage()
		case APIGoodbye:
			payload2, err = r2.Goodbye()
		}
		if err != nil || !reflect.DeepEqual(payload, payload2) {
			t.Fatalf("round trip changed the payload: %+v -> %+v (%v)", payload, payload2, err)
		}
	})
}

// FuzzParseServerMessage does the same for the client side: decoding a server
// message and each payload never panics, and errors are ErrMalformed.
func FuzzParseServerMessage(f *testing.F) {
	for _, s := range []string{
		`{"request_id": "r", "type": "greeting", "payload": {"apis": ["create-session", "goodbye", "hello", "join-session", "send-message"], "motd": null}}`,
		`{"request_id": "r", "type": "session-created", "ttl": 600}`,
		`{"request_id": "r", "type": "session-joined", "payload": {"context": "Qt44"}, "ttl": 598}`,
		`{"request_id": null, "type": "peer-message", "payload": {"message": "bXNn"}, "ttl": 1700000600}`,
		`{"request_id": "r", "type": "message-sent", "payload": 1700000600}`,
		`{"request_id": null, "type": "session-closed", "payload": {"reason": "peer disconnected"}}`,
		`{"request_id": null, "type": "error", "payload": {"code": "SESSION_JOIN_FAILED", "message": "m"}}`,
		`{"type":"session-created","ttl":-1}`,
		`{"type":"greeting","payload":{"apis":[1]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseServerMessage(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error is not ErrMalformed: %v", err)
			}
			return
		}
		if !knownTypes[m.Type] {
			t.Fatalf("accepted unknown type %q", m.Type)
		}
		var payload any
		switch m.Type {
		case TypeGreeting:
			payload, err = m.Greeting()
		case TypeSessionJoined:
			payload, err = m.SessionJoined()
		case TypePeerMessage:
			payload, err = m.PeerMessage()
		case TypeSessionClosed:
			payload, err = m.SessionClosed()
		case TypeError:
			payload, err = m.ErrorReport()
		default:
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("payload error is not ErrMalformed: %v", err)
			}
			return
		}
		enc, err := EncodeServerMessage(m.RequestID, m.Type, m.TTL, payload)
		if err != nil {
			t.Fatalf("EncodeServerMessage: %v", err)
		}
		m2, err := ParseServerMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded %s does not parse: %v", enc, err)
		}
		if !reflect.DeepEqual(m.RequestID, m2.RequestID) || !reflect.DeepEqual(m.TTL, m2.TTL) || m.Type != m2.Type {
			t.Fatalf("round trip changed the envelope: %+v -> %+v", m, m2)
		}
	})
}
