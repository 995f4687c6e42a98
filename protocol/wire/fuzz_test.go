package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
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

var serverSeeds = []string{
	`{"request_id": "r", "type": "greeting", "payload": {"apis": ["create-session", "goodbye", "hello", "join-session", "send-message"], "motd": null}}`,
	`{"request_id": "r", "type": "session-created", "ttl": 600}`,
	`{"request_id": "r", "type": "session-joined", "payload": {"context": "Qt44"}, "ttl": 598}`,
	`{"request_id": null, "type": "peer-message", "payload": {"message": "bXNn"}, "ttl": 1700000600}`,
	`{"request_id": "r", "type": "message-sent", "payload": 1700000600}`,
	`{"request_id": null, "type": "session-closed", "payload": {"reason": "peer disconnected"}}`,
	`{"request_id": null, "type": "error", "payload": {"code": "SESSION_JOIN_FAILED", "message": "m"}}`,
	`{"type":"session-created","ttl":-1}`,
	`{"type":"greeting","payload":{"apis":[1]}}`,
}

var objectSeeds = []string{
	`{"a":1e5,"b":-0.5E-3,"c":[true,false,null,{}],"d":"\u00e9\ud83d\ude00\n"}`,
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":"\x"}`, `{"a":"` + "\x01" + `"}`,
	`{"a" : [ ] , "b" : { } }`, `{"a":[1,]}`, `{,}`, `{"a":1,}`, `{"a"}`, "{\"a\":\"\xff\"}",
	`{"\u0061":1,"a":2}`, `{"a":"\ud800"}`, `  {}  `, `{} x`, `tru`, `[`, `{"a":[[[[[[]]]]]]}`,
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
	for _, s := range serverSeeds {
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

// FuzzObjectMatchesEncodingJSON checks the hand-written scanner against
// encoding/json: it accepts exactly the valid JSON objects (within the depth
// limit, without duplicate names) and splits them into the same members.
func FuzzObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // checkMessage rejects it before object runs
		}
		ms, err := object(data, nil)
		var ref map[string]json.RawMessage
		refErr := json.Unmarshal(data, &ref)
		valid := json.Valid(data)
		if err == nil {
			if !valid || refErr != nil || ref == nil {
				t.Fatalf("object accepted %q, encoding/json does not (%v)", data, refErr)
			}
			if len(ms) != len(ref) {
				t.Fatalf("object found %d members, encoding/json %d (duplicates must be refused)", len(ms), len(ref))
			}
			for _, m := range ms {
				r, ok := ref[string(m.name)]
				if !ok || !bytes.Equal(bytes.TrimSpace(r), m.val) {
					t.Fatalf("member %q = %q, encoding/json has %q", m.name, m.val, r)
				}
			}
			return
		}
		if errors.Is(err, errDepth) {
			return
		}
		if strings.HasPrefix(err.Error(), "duplicate field") {
			return
		}
		if valid && refErr == nil && ref != nil {
			t.Fatalf("object refused %q (%v), encoding/json accepts it", data, err)
		}
	})
}
