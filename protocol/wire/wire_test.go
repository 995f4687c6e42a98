package wire

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func sp(s string) *string { return &s }
func up(v uint64) *uint64 { return &v }
func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// The exact requests rcodesign emits (spec §1.2) must encode byte for byte and
// decode back.
func TestRequestsAsRcodesignSendsThem(t *testing.T) {
	const id = "7c0e1b6a-7f43-4c8e-9f5e-0b5b8d1c2e3f"
	const sid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	tests := []struct {
		api     string
		payload any
		want    string
	}{
		{APIHello, nil, `{"request_id":"` + id + `","api":"hello","payload":null}`},
		{APICreateSession, CreateSession{SessionID: sid, TTL: up(600)},
			`{"request_id":"` + id + `","api":"create-session","payload":{"session_id":"` + sid + `","ttl":600,"context":null}}`},
		{APIJoinSession, JoinSession{SessionID: sid, Context: sp("WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns=")},
			`{"request_id":"` + id + `","api":"join-session","payload":{"session_id":"` + sid + `","context":"WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="}}`},
		{APISendMessage, SendMessage{SessionID: sid, Message: "3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ=="},
			`{"request_id":"` + id + `","api":"send-message","payload":{"session_id":"` + sid + `","message":"3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ=="}}`},
		{APIGoodbye, Goodbye{SessionID: sid, Reason: sp("signing operations completed")},
			`{"request_id":"` + id + `","api":"goodbye","payload":{"session_id":"` + sid + `","reason":"signing operations completed"}}`},
	}
	for _, tc := range tests {
		got, err := EncodeRequest(id, tc.api, tc.payload)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("EncodeRequest(%s):\n got %s\nwant %s", tc.api, got, tc.want)
		}
		r, err := ParseRequest(got)
		if err != nil {
			t.Fatalf("ParseRequest(%s): %v", got, err)
		}
		if deref(r.RequestID) != id || r.API != tc.api {
			t.Errorf("ParseRequest: id %q api %q", deref(r.RequestID), r.API)
		}
		var back any
		switch tc.api {
		case APIHello:
			if r.Payload != nil {
				t.Errorf("hello payload = %s, want nil", r.Payload)
			}
			continue
		case APICreateSession:
			back, err = r.CreateSession()
		case APIJoinSession:
			back, err = r.JoinSession()
		case APISendMessage:
			back, err = r.SendMessage()
		case APIGoodbye:
			back, err = r.Goodbye()
		}
		if err != nil {
			t.Fatalf("decode %s payload: %v", tc.api, err)
		}
		if !reflect.DeepEqual(back, tc.payload) {
			t.Errorf("%s payload round trip: got %+v, want %+v", tc.api, back, tc.payload)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	tests := []struct {
		in, code string
		id       string // request_id expected to survive the error, "" for none
	}{
		{`not json`, CodeRequestJSONParse, ""},
		{`[]`, CodeRequestJSONParse, ""},
		{`"hello"`, CodeRequestJSONParse, ""},
		{`{"request_id":"a","api":"hello"} {}`, CodeRequestJSONParse, ""},
		{`{"request_id":"a","api":"hello","payload":null`, CodeRequestJSONParse, ""},
		{"{\"request_id\":\"a\xff\",\"api\":\"hello\"}", CodeRequestJSONParse, ""},
		{`{"request_id":"a","request_id":"b","api":"hello"}`, CodeRequestJSONParse, ""},
		{`{"request_id":"a","api":"hello","\u0061pi":"goodbye"}`, CodeRequestJSONParse, ""},
		{`{"api":"hello","payload":null}`, CodeNoRequestID, ""},
		{`{"request_id":7,"api":"hello"}`, CodeInvalidRequest, ""},
		{`{"request_id":"` + strings.Repeat("x", 129) + `","api":"hello"}`, CodeInvalidRequest, ""},
		{`{"request_id":"r1","payload":null}`, CodeNoAPI, "r1"},
		{`{"request_id":"r1","api":"","payload":null}`, CodeNoAPI, "r1"},
		{`{"request_id":"r1","api":null}`, CodeNoAPI, "r1"},
		{`{"request_id":"r1","api":["hello"]}`, CodeInvalidRequest, "r1"},
		{`{"request_id":"r1","api":"Hello"}`, CodeUnknownAPI, "r1"},
		{`{"request_id":"r1","API":"hello"}`, CodeNoAPI, "r1"},
		{`{"request_id":"r1","api":"list-sessions","payload":null}`, CodeUnknownAPI, "r1"},
		{`{"request_id":"r1","api":"hello","payload":[]}`, CodeInvalidRequest, "r1"},
		{`{"request_id":"r1","api":"goodbye","payload":{"session_id":"s","session_id":"t"}}`, CodeInvalidPayload, "r1"},
		{`{"request_id":"r1","api":"hello","payload":"x"}`, CodeInvalidRequest, "r1"},
		{`{"request_id":"r1","api":"hello","payload":` + strings.Repeat(" ", MaxMessageSize) + `null}`, CodeMessageTooLarge, ""},
	}
	for _, tc := range tests {
		r, err := ParseRequest([]byte(tc.in))
		var we *Error
		if !errors.As(err, &we) || we.Code != tc.code || !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseRequest(%.80q) error = %v, want code %s", tc.in, err, tc.code)
			continue
		}
		if deref(r.RequestID) != tc.id && !(tc.id == "" && r.RequestID == nil) {
			t.Errorf("ParseRequest(%.80q) kept request_id %q, want %q", tc.in, deref(r.RequestID), tc.id)
		}
	}
}

func TestParseRequestTolerates(t *testing.T) {
	// Unknown fields at both levels, a null request_id (the reference relay
	// accepts it), no payload for hello, whitespace and escapes.
	for _, in := range []string{
		`{"request_id":null,"api":"hello","payload":null}`,
		`{"request_id":"x","api":"hello"}`,
		` { "request_id" : "x" , "api" : "hello" , "payload" : { "extra" : [1,2] } , "action":"y" } `,
		`{"request_id":"x","api":"hel\u006co","payload":null}`,
	} {
		r, err := ParseRequest([]byte(in))
		if err != nil || r.API != APIHello {
			t.Errorf("ParseRequest(%s) = %+v, %v; want hello", in, r, err)
		}
	}
	r, err := ParseRequest([]byte(`{"request_id":"x","api":"send-message","payload":{"session_id":"s1","message":"m","future":{"a":1}},"future":true}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.SendMessage()
	if err != nil || m.SessionID != "s1" || m.Message != "m" {
		t.Errorf("SendMessage with unknown fields = %+v, %v", m, err)
	}
}

func TestPayloadErrors(t *testing.T) {
	tests := []struct {
		api, payload, code string
	}{
		{APICreateSession, `null`, CodeInvalidPayload},
		{APICreateSession, `{"ttl":600}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":null,"ttl":600}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":5,"ttl":600}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"","ttl":600}`, CodeInvalidSessionID},
		{APICreateSession, `{"session_id":"` + strings.Repeat("a", 129) + `"}`, CodeInvalidSessionID},
		{APICreateSession, `{"session_id":"s","ttl":-1}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"s","ttl":600.0}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"s","ttl":6e2}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"s","ttl":"600"}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"s","ttl":18446744073709551616}`, CodeInvalidPayload},
		{APICreateSession, `{"session_id":"s","ttl":600,"context":1}`, CodeInvalidPayload},
		{APIJoinSession, `{"session_id":"s","context":{}}`, CodeInvalidPayload},
		{APISendMessage, `{"session_id":"s"}`, CodeInvalidPayload},
		{APISendMessage, `{"session_id":"s","message":null}`, CodeInvalidPayload},
		{APISendMessage, `{"session_id":"s","message":["x"]}`, CodeInvalidPayload},
		{APIGoodbye, `{"session_id":"s","reason":false}`, CodeInvalidPayload},
		{APIGoodbye, `{"reason":"x"}`, CodeInvalidPayload},
	}
	for _, tc := range tests {
		in := `{"request_id":"r","api":"` + tc.api + `","payload":` + tc.payload + `}`
		r, err := ParseRequest([]byte(in))
		if err != nil {
			t.Fatalf("ParseRequest(%s): %v", in, err)
		}
		switch tc.api {
		case APICreateSession:
			_, err = r.CreateSession()
		case APIJoinSession:
			_, err = r.JoinSession()
		case APISendMessage:
			_, err = r.SendMessage()
		case APIGoodbye:
			_, err = r.Goodbye()
		}
		var we *Error
		if !errors.As(err, &we) || we.Code != tc.code {
			t.Errorf("%s payload %.60s: error = %v, want code %s", tc.api, tc.payload, err, tc.code)
		}
	}
}

func TestOptionalFields(t *testing.T) {
	r, err := ParseRequest([]byte(`{"request_id":"r","api":"create-session","payload":{"session_id":"s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CreateSession()
	if err != nil || c.TTL != nil || c.Context != nil {
		t.Errorf("absent ttl/context = %+v, %v; want nils", c, err)
	}
	r, _ = ParseRequest([]byte(`{"request_id":"r","api":"create-session","payload":{"session_id":"s","ttl":0,"context":""}}`))
	c, err = r.CreateSession()
	if err != nil || c.TTL == nil || *c.TTL != 0 || c.Context == nil || *c.Context != "" {
		t.Errorf("ttl 0 / empty context = %+v, %v; want present zero values", c, err)
	}
}

// The messages the reference relay emits (spec §1.3) must all parse, since
// farsign clients talk to it too.
func TestReferenceRelayMessages(t *testing.T) {
	msgs := []string{
		`{"request_id": "r", "type": "greeting", "payload": {"apis": ["create-session", "goodbye", "hello", "join-session", "send-message"], "motd": null}}`,
		`{"request_id": "r", "type": "session-created", "ttl": 600}`,
		`{"request_id": "r", "type": "session-joined", "payload": {"context": null}, "ttl": 598}`,
		`{"request_id": "r", "type": "session-joined", "payload": {"context": "Qt44"}, "ttl": 598}`,
		`{"request_id": "r", "type": "peer-message", "payload": {"message": "bXNn"}, "ttl": 1700000600}`,
		`{"request_id": "r", "type": "message-sent", "payload": 1700000600}`,
		`{"request_id": "r", "type": "session-closed"}`,
		`{"request_id": "r", "type": "session-closed", "payload": {"reason": "signing operations completed"}}`,
		`{"request_id": null, "type": "session-closed", "payload": {"reason": "peer disconnected"}}`,
		`{"request_id": null, "type": "error", "payload": {"code": "SESSION_JOIN_FAILED", "message": "failed to join session; invalid or expired session id?"}}`,
	}
	for _, in := range msgs {
		m, err := ParseServerMessage([]byte(in))
		if err != nil {
			t.Errorf("ParseServerMessage(%s): %v", in, err)
			continue
		}
		switch m.Type {
		case TypeGreeting:
			g, err := m.Greeting()
			if err != nil || g.CheckGreeting() != nil || g.MOTD != nil || len(g.APIs) != 5 {
				t.Errorf("greeting: %+v, %v", g, err)
			}
		case TypeSessionJoined:
			if _, err := m.SessionJoined(); err != nil {
				t.Errorf("session-joined: %v", err)
			}
		case TypePeerMessage:
			p, err := m.PeerMessage()
			if err != nil || p.Message != "bXNn" || m.TTL == nil || *m.TTL != 1700000600 {
				t.Errorf("peer-message: %+v, %v", p, err)
			}
		case TypeSessionClosed:
			if m.Payload == nil {
				if _, err := m.SessionClosed(); err == nil {
					t.Errorf("session-closed without payload decoded without error")
				}
				continue
			}
			if p, err := m.SessionClosed(); err != nil || p.Reason == nil {
				t.Errorf("session-closed: %+v, %v", p, err)
			}
		case TypeError:
			e, err := m.ErrorReport()
			if err != nil || e.Code != CodeSessionJoinFailed {
				t.Errorf("error: %+v, %v", e, err)
			}
		}
	}
}

func TestParseServerMessageErrors(t *testing.T) {
	for _, in := range []string{
		`{"request_id":"r","type":"session-created","ttl":-2}`,
		`{"request_id":"r","type":"session-created","ttl":598.5}`,
		`{"request_id":"r","type":"session-created","ttl":"598"}`,
		`{"request_id":"r","type":"session-expired"}`,
		`{"request_id":"r"}`,
		`{"request_id":1,"type":"greeting"}`,
		`{"request_id":"r","type":"greeting","type":"error"}`,
		`[{"type":"greeting"}]`,
	} {
		if _, err := ParseServerMessage([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseServerMessage(%s) error = %v, want ErrMalformed", in, err)
		}
	}
	bad := []struct{ in, method string }{
		{`{"request_id":"r","type":"greeting","payload":{"apis":"create-session"}}`, "greeting"},
		{`{"request_id":"r","type":"greeting","payload":{"apis":["create-session",1]}}`, "greeting"},
		{`{"request_id":"r","type":"greeting","payload":{"motd":null}}`, "greeting"},
		{`{"request_id":"r","type":"peer-message","payload":{"message":null}}`, "peer"},
		{`{"request_id":"r","type":"peer-message"}`, "peer"},
		{`{"request_id":"r","type":"error","payload":{"code":"X"}}`, "error"},
		{`{"request_id":"r","type":"session-joined","payload":{"context":5}}`, "joined"},
		{`{"request_id":"r","type":"message-sent","payload":{"context":"x"}}`, "joined"},
	}
	for _, tc := range bad {
		m, err := ParseServerMessage([]byte(tc.in))
		if err != nil {
			t.Fatalf("ParseServerMessage(%s): %v", tc.in, err)
		}
		switch tc.method {
		case "greeting":
			_, err = m.Greeting()
		case "peer":
			_, err = m.PeerMessage()
		case "error":
			_, err = m.ErrorReport()
		case "joined":
			_, err = m.SessionJoined()
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s payload of %s: error = %v, want ErrMalformed", tc.method, tc.in, err)
		}
	}
	g := GreetingPayload{APIs: []string{"hello", "create-session", "join-session", "send-message"}}
	if g.CheckGreeting() == nil {
		t.Errorf("CheckGreeting accepted a greeting without goodbye")
	}
}

func TestEncodeServerMessage(t *testing.T) {
	tests := []struct {
		id      *string
		typ     string
		ttl     *uint64
		payload any
		want    string
	}{
		{sp("r"), TypeGreeting, nil, GreetingPayload{APIs: APIs()},
			`{"request_id":"r","type":"greeting","payload":{"apis":["create-session","goodbye","hello","join-session","send-message"],"motd":null}}`},
		{sp("r"), TypeSessionCreated, up(600), nil, `{"request_id":"r","type":"session-created","ttl":600}`},
		{sp("r"), TypeMessageSent, up(0), nil, `{"request_id":"r","type":"message-sent","ttl":0}`},
		{nil, TypePeerMessage, up(12), PeerMessagePayload{Message: "a+b/c=<&>"},
			`{"request_id":null,"type":"peer-message","ttl":12,"payload":{"message":"a+b/c=<&>"}}`},
		{nil, TypeSessionClosed, nil, SessionClosedPayload{Reason: sp("peer disconnected")},
			`{"request_id":null,"type":"session-closed","payload":{"reason":"peer disconnected"}}`},
		{nil, TypeError, nil, ErrorPayload{Code: CodeRequestJSONParse, Message: "m"},
			`{"request_id":null,"type":"error","payload":{"code":"REQUEST_JSON_PARSE","message":"m"}}`},
	}
	for _, tc := range tests {
		got, err := EncodeServerMessage(tc.id, tc.typ, tc.ttl, tc.payload)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("EncodeServerMessage:\n got %s\nwant %s", got, tc.want)
		}
		if _, err := ParseServerMessage(got); err != nil {
			t.Errorf("ParseServerMessage(%s): %v", got, err)
		}
	}
}

func TestNewRequestID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewRequestID()
		if !re.MatchString(id) {
			t.Fatalf("NewRequestID() = %q, not a lowercase UUIDv4", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestAPIsIsACopy(t *testing.T) {
	a := APIs()
	a[0] = "mutated"
	if APIs()[0] != APICreateSession {
		t.Fatal("APIs() shares its backing array")
	}
}
