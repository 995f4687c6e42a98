package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fastPathSeeds aim at what the fast path does differently from the
// reference: the payload split during the envelope scan (duplicates, their
// precedence over other errors, escaped names, depth), the 8-byte string
// scan (specials on both sides of 8-byte boundaries) and the forwarded
// message (escapes, which must still be decoded and re-encoded).
var fastPathSeeds = []string{
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"\/\u0000\ud800\ud83d\ude00\u0041\"\\\b\f\n\r\t"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"` + "\x7f\u00e9\U0001F600" + `"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"` + strings.Repeat("0123456789abcdef", 33) + `\n"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"` + strings.Repeat("A", 13) + "\x01" + `"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"` + strings.Repeat("A", 15) + "\xff" + `"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"AAAAAAA\u12"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":"` + strings.Repeat("A", 20),
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","session_id":"t","message":"m"}}`,
	`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":7}}`,
	`{"request_id":"r","api":"goodbye","payload":{"a":1,"a":2,"b":}}`,
	`{"request_id":"r","api":"nope","payload":{"a":1,"a":2}}`,
	`{"request_id":"r","api":"hello","payload":{"a":1},"payload":{"b":2}}`,
	`{"request_id":"r","api":"hello","payload":null,"\u0070ayload":{"b":2}}`,
	`{"request_id":"r","api":"hello","\u0070ayload":{"\u0061":1,"a":2}}`,
	`{"request_id":"r","api":"hello","payload":{"x":{"a":1,"a":2}}}`,
	`{"request_id":"r","api":"hello","payload":{` + manyMembers(20) + `,"m3":0}}`,
	`{"request_id":7,"api":"hello"}`,
	`{"request_id":"` + strings.Repeat("x", MaxRequestIDLen+1) + `","api":"hello"}`,
	`{"request_id":"r","api":["hello"],"payload":{"a":1,"a":2}}`,
	`{"request_id":"r","api":"hello","payload":[{"a":1,"a":2}]}`,
	`{"request_id":"r","api":"hello","payload":` + strings.Repeat(`{"a":`, maxDepth-1) + `1` + strings.Repeat(`}`, maxDepth-1) + `}`,
	`{"request_id":"r","api":"hello","payload":` + strings.Repeat(`{"a":`, maxDepth) + `1` + strings.Repeat(`}`, maxDepth) + `}`,
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	return b.String()
}

// FuzzFastPathMatchesReference holds the decoder to the one it replaced
// (reference_test.go) on arbitrary input: the same objects accepted and split
// the same way, the same request errors (code and text) and decoded values,
// and, for the message a relay forwards, the same bytes on the wire.
func FuzzFastPathMatchesReference(f *testing.F) {
	for _, seeds := range [][]string{requestSeeds, objectSeeds, serverSeeds, fastPathSeeds} {
		for _, s := range seeds {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The scanner on its own (ParseServerMessage and the payload
		// accessors use it as it is).
		ms, err := object(data, nil)
		rms, rerr := refObject(data)
		if fmt.Sprint(err) != fmt.Sprint(rerr) || !equalMembers(ms, rms) {
			t.Fatalf("object(%q) = %q, %v; reference %q, %v", data, ms, err, rms, rerr)
		}

		r, err := ParseRequest(data)
		ref, rerr := refParseRequest(data)
		if !sameError(err, rerr) {
			t.Fatalf("ParseRequest(%q) error = %v, reference %v", data, err, rerr)
		}
		if !reflect.DeepEqual(r.RequestID, ref.RequestID) || r.API != ref.API ||
			!bytes.Equal(r.Payload, ref.Payload) || (r.Payload == nil) != (ref.Payload == nil) ||
			!equalMembers(r.payloadMembers, ref.payloadMembers) || (r.payloadMembers == nil) != (ref.payloadMembers == nil) {
			t.Fatalf("ParseRequest(%q) = %+v, reference %+v", data, r, ref)
		}
		if err != nil {
			return
		}
		// Every decoder on every request, whatever its api: they read
		// only the payload.
		for _, dec := range []func(Request) (any, error){
			func(r Request) (any, error) { return r.CreateSession() },
			func(r Request) (any, error) { return r.JoinSession() },
			func(r Request) (any, error) { return r.Goodbye() },
		} {
			v, err := dec(r)
			rv, rerr := dec(ref)
			if !sameError(err, rerr) || !reflect.DeepEqual(v, rv) {
				t.Fatalf("payload of %q = %+v, %v; reference %+v, %v", data, v, err, rv, rerr)
			}
		}
		want, werr := refSendMessage(ref)
		got, err := r.SendMessage()
		if !sameError(err, werr) || got != want {
			t.Fatalf("SendMessage of %q = %+v, %v; reference %+v, %v", data, got, err, want, werr)
		}
		enc, err := r.SendMessageEncoded()
		if !sameError(err, werr) || enc.SessionID != want.SessionID {
			t.Fatalf("SendMessageEncoded of %q = %+v, %v; reference %+v, %v", data, enc, err, want, werr)
		}
		if err != nil {
			return
		}
		if enc.Message.Len() != len(want.Message) {
			t.Fatalf("SendMessageEncoded of %q = %q (length %d); reference %+v", data, enc.Message.token, enc.Message.Len(), want)
		}
		ttl := uint64(599)
		fwd, err := EncodeServerMessage(nil, TypePeerMessage, &ttl, EncodedPeerMessagePayload{Message: enc.Message})
		if err != nil {
			t.Fatal(err)
		}
		rfwd, err := EncodeServerMessage(nil, TypePeerMessage, &ttl, PeerMessagePayload{Message: want.Message})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fwd, rfwd) {
			t.Fatalf("forwarded message of %q:\n got %q\nwant %q", data, fwd, rfwd)
		}
	})
}

func equalMembers(a, b members) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].name, b[i].name) || !bytes.Equal(a[i].val, b[i].val) {
			return false
		}
	}
	return true
}

// sameError reports whether a and b are both nil or both *Error with the
// same code and text.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ea, eb *Error
	return errors.As(a, &ea) && errors.As(b, &eb) && *ea == *eb
}

// isSpecial is what specialMask looks for, byte by byte.
func isSpecial(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }

// TestSpecialMask checks specialMask's lowest set bit against isSpecial for
// every byte value at every position of the word, among fillers next to
// each threshold, and with every other byte value at every later position
// (a special byte must be found whatever follows it, and a plain byte must
// never be taken for one whatever precedes it).
func TestSpecialMask(t *testing.T) {
	first := func(w [8]byte) int {
		for i, c := range w {
			if isSpecial(c) {
				return i
			}
		}
		return 8
	}
	check := func(w [8]byte) {
		v := uint64(0)
		for i, c := range w {
			v |= uint64(c) << (8 * i)
		}
		m := specialMask(v)
		got := bits.TrailingZeros64(m) / 8
		if m&^0x8080808080808080 != 0 || got != first(w) {
			t.Fatalf("specialMask(% x) = %#016x: first special at %d, want %d", w, m, got, first(w))
		}
	}
	for _, fill := range []byte{'A', ' ', '!', '#', '[', ']', 0x7f, 0x80, 0xa2, 0xdc, 0xff} {
		var w [8]byte
		for i := range w {
			w[i] = fill
		}
		check(w)
		pairs := fill == 'A' || fill == 0xff // all pairs take a while; two fillers suffice
		for p := range 8 {
			for c := range 256 {
				w[p] = byte(c)
				check(w)
				for q := p + 1; pairs && q < 8; q++ {
					for d := range 256 {
						w[q] = byte(d)
						check(w)
					}
					w[q] = fill
				}
			}
			w[p] = fill
		}
	}
}

// TestScanStringAlignment puts each kind of byte at each position 0..16 of
// string bodies of every length up to 24, with the string starting at each
// offset 0..7 of the buffer, so that every byte is met both inside an
// 8-byte load and in the byte-wise tail, on both sides of a load boundary.
func TestScanStringAlignment(t *testing.T) {
	type kind struct {
		name string
		ins  string // inserted at the position
		// the outcome, given the offset of the opening quote o, the
		// position p and the body length n (excluding ins)
		end     func(o, p, n int) int
		escaped bool
	}
	closedAt := func(o, p, n int) int { return o + 1 + p + 1 } // ins closes the string
	whole := func(k int) func(o, p, n int) int {               // the whole body plus ins
		return func(o, p, n int) int { return o + 1 + n + k + 1 }
	}
	fails := func(o, p, n int) int { return -1 }
	kinds := []kind{
		{"quote", `"`, closedAt, false},
		{"escaped quote", `\"`, whole(2), true},
		{"escaped backslash", `\\`, whole(2), true},
		{"escaped slash", `\/`, whole(2), true},
		{"newline escape", `\n`, whole(2), true},
		{"unicode escape", `\u00e9`, whole(6), true},
		{"uppercase hex", `\uABCD`, whole(6), true},
		{"bad escape", `\x`, fails, false},
		{"short unicode escape", `\u12G4`, fails, false},
		{"NUL", "\x00", fails, false},
		{"newline", "\n", fails, false},
		{"0x1f", "\x1f", fails, false},
		{"space", " ", whole(1), false},
		{"DEL", "\x7f", whole(1), false},
		{"0x80", "\x80", whole(1), false},
		{"0xff", "\xff", whole(1), false},
		{"2-byte UTF-8", "é", whole(2), false},
		{"4-byte UTF-8", "\U0001F600", whole(4), false},
	}
	for _, k := range kinds {
		for o := range 8 {
			for n := 0; n <= 24; n++ {
				for p := 0; p <= min(n, 16); p++ {
					body := strings.Repeat("A", p) + k.ins + strings.Repeat("B", n-p)
					buf := []byte(strings.Repeat(" ", o) + `"` + body + `"` + " ,")
					end, escaped, err := scanString(buf, o)
					rend, rescaped, rerr := refScanString(buf, o)
					want := k.end(o, p, n)
					switch {
					case want < 0 && err == nil:
						t.Fatalf("%s at %d of %d (offset %d): scanString(%q) = %d, want an error", k.name, p, n, o, buf, end)
					case want >= 0 && (err != nil || end != want || escaped != k.escaped):
						t.Fatalf("%s at %d of %d (offset %d): scanString(%q) = %d, %v, %v; want %d, %v", k.name, p, n, o, buf, end, escaped, err, want, k.escaped)
					case end != rend || escaped != rescaped || (err == nil) != (rerr == nil):
						t.Fatalf("%s at %d of %d (offset %d): scanString(%q) = %d, %v, %v; reference %d, %v, %v", k.name, p, n, o, buf, end, escaped, err, rend, rescaped, rerr)
					}
					// Cut anywhere before its closing quote, the string is
					// unterminated (no load may read past the input).
					for cut := o + 1; cut < len(buf)-2; cut++ {
						if want >= 0 && cut >= want {
							break
						}
						if _, _, err := scanString(buf[:cut:cut], o); err == nil {
							t.Fatalf("%s at %d of %d (offset %d): scanString(%q) accepted an unterminated string", k.name, p, n, o, buf[:cut])
						}
					}
				}
			}
		}
	}
}

// The relay forwards the message as it arrived when the token is already
// what it would write, and re-encodes it otherwise; either way the peer gets
// the bytes PeerMessagePayload would give it.
func TestSendMessageEncoded(t *testing.T) {
	tests := []struct {
		token string // the message as sent
		want  string // the message as forwarded
		alias bool   // forwarded from the input, without a copy
	}{
		{`"3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ=="`, `"3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ=="`, true},
		{`""`, `""`, true},
		{"\"a\x7f\u00e9\U0001F600<&>\"", "\"a\x7f\u00e9\U0001F600<&>\"", true},
		{`"a\/b"`, `"a/b"`, false},
		{`"\u0041\u00e9"`, "\"A\u00e9\"", false},
		{`"\u0000\u001f\b\f"`, `"\u0000\u001f\u0008\u000c"`, false},
		{`"\n\r\t\"\\"`, `"\n\r\t\"\\"`, false},
		// A lone surrogate is not a string: it decodes to U+FFFD, as
		// encoding/json does, and is forwarded as such (rcodesign's
		// serde_json would refuse the escape).
		{`"\ud800x"`, "\"\uFFFDx\"", false},
		{`"\ud83d\ude00"`, "\"\U0001F600\"", false},
		{`"` + strings.Repeat("A", 512) + `\n"`, `"` + strings.Repeat("A", 512) + `\n"`, false},
	}
	for _, tc := range tests {
		in := []byte(`{"request_id":"r","api":"send-message","payload":{"session_id":"s","message":` + tc.token + `}}`)
		r, err := ParseRequest(in)
		if err != nil {
			t.Fatalf("ParseRequest(%s): %v", in, err)
		}
		p, err := r.SendMessageEncoded()
		if err != nil {
			t.Fatalf("SendMessageEncoded(%s): %v", tc.token, err)
		}
		plain, err := r.SendMessage()
		if err != nil {
			t.Fatal(err)
		}
		if p.SessionID != "s" || string(p.Message.token) != tc.want || p.Message.Len() != len(plain.Message) {
			t.Errorf("SendMessageEncoded(%s) = %q (length %d), want %s (length %d)", tc.token, p.Message.token, p.Message.Len(), tc.want, len(plain.Message))
		}
		inInput := len(p.Message.token) > 0 && &p.Message.token[0] == &in[bytes.LastIndex(in, []byte(tc.token))]
		if inInput != tc.alias {
			t.Errorf("SendMessageEncoded(%s): forwarded from the input = %v, want %v", tc.token, inInput, tc.alias)
		}
		ttl := uint64(1)
		got, _ := EncodeServerMessage(nil, TypePeerMessage, &ttl, EncodedPeerMessagePayload{Message: p.Message})
		want, _ := EncodeServerMessage(nil, TypePeerMessage, &ttl, PeerMessagePayload{Message: plain.Message})
		if !bytes.Equal(got, want) || !json.Valid(got) || !utf8.Valid(got) {
			t.Errorf("forwarding %s:\n got %s\nwant %s", tc.token, got, want)
		}
		m, err := ParseServerMessage(got)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := m.PeerMessage(); err != nil || back.Message != plain.Message {
			t.Errorf("forwarded %s decodes to %q, %v; want %q", tc.token, back.Message, err, plain.Message)
		}
	}

	// The same errors as SendMessage.
	for _, payload := range []string{
		`null`, `{}`, `{"session_id":"s"}`, `{"session_id":"s","message":null}`, `{"session_id":"s","message":5}`,
		`{"session_id":"s","message":["x"]}`, `{"session_id":7,"message":"m"}`, `{"session_id":"","message":"m"}`,
	} {
		in := `{"request_id":"r","api":"send-message","payload":` + payload + `}`
		r, err := ParseRequest([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.SendMessageEncoded()
		_, want := r.SendMessage()
		if want == nil || !sameError(err, want) {
			t.Errorf("SendMessageEncoded(%s) error = %v, want %v", payload, err, want)
		}
	}

	// The zero value is the empty string.
	got, _ := EncodeServerMessage(nil, TypePeerMessage, nil, EncodedPeerMessagePayload{})
	if string(got) != `{"request_id":null,"type":"peer-message","payload":{"message":""}}` {
		t.Errorf("zero EncodedString encodes as %s", got)
	}
}

// A duplicate name in the payload is found during the envelope scan but
// answered as before: after the envelope's own checks, with the request's
// request_id, and only if the whole message is valid JSON.
func TestPayloadDuplicatePrecedence(t *testing.T) {
	tests := []struct {
		in, code, id, msg string
	}{
		{`{"request_id":"r1","api":"goodbye","payload":{"session_id":"s","session_id":"t"}}`, CodeInvalidPayload, "r1", `payload: duplicate field "session_id"`},
		{`{"request_id":"r1","api":"goodbye","payload":{"a":1,"\u0061":2,"b":3,"b":4}}`, CodeInvalidPayload, "r1", `payload: duplicate field "a"`},
		{`{"request_id":"r1","api":"hello","payload":{` + manyMembers(20) + `,"m17":0}}`, CodeInvalidPayload, "r1", `payload: duplicate field "m17"`},
		{`{"request_id":"r1","api":"goodbye","payload":{"a":1,"a":2,"b":}}`, CodeRequestJSONParse, "", "failed to parse JSON in message body: not valid JSON"},
		{`{"request_id":"r1","api":"goodbye","payload":{"a":1,"a":2}} x`, CodeRequestJSONParse, "", "failed to parse JSON in message body: trailing data after the JSON object"},
		{`{"request_id":"r1","api":"goodbye","payload":{"a":1,"a":2},"api":"hello"}`, CodeRequestJSONParse, "", `failed to parse JSON in message body: duplicate field "api"`},
		{`{"request_id":"r1","api":"list","payload":{"a":1,"a":2}}`, CodeUnknownAPI, "r1", `unrecognized API method: "list"`},
		{`{"api":"hello","payload":{"a":1,"a":2}}`, CodeNoRequestID, "", "request is missing request_id field"},
		{`{"request_id":"r1","api":"hello","payload":{"a":1},"payload":{"b":2}}`, CodeRequestJSONParse, "", `failed to parse JSON in message body: duplicate field "payload"`},
	}
	for _, tc := range tests {
		r, err := ParseRequest([]byte(tc.in))
		var we *Error
		if !errors.As(err, &we) || we.Code != tc.code || we.Msg != tc.msg {
			t.Errorf("ParseRequest(%.80s) error = %v, want %s: %s", tc.in, err, tc.code, tc.msg)
		}
		if deref(r.RequestID) != tc.id && !(tc.id == "" && r.RequestID == nil) {
			t.Errorf("ParseRequest(%.80s) kept request_id %q, want %q", tc.in, deref(r.RequestID), tc.id)
		}
		if _, rerr := refParseRequest([]byte(tc.in)); !sameError(err, rerr) {
			t.Errorf("ParseRequest(%.80s) error = %v, reference %v", tc.in, err, rerr)
		}
	}

	// Accepted: duplicates deeper in the payload are not looked for (as
	// before), and an escaped "payload" name is still the payload.
	for _, in := range []string{
		`{"request_id":"r","api":"hello","payload":{"x":{"a":1,"a":2}}}`,
		`{"request_id":"r","api":"goodbye","\u0070ayload":{"session_id":"s"}}`,
	} {
		r, err := ParseRequest([]byte(in))
		ref, _ := refParseRequest([]byte(in))
		if err != nil || r.Payload == nil || !equalMembers(r.payloadMembers, ref.payloadMembers) {
			t.Errorf("ParseRequest(%s) = %+v, %v; reference %+v", in, r, err, ref)
		}
	}
}

// The payload, split during the envelope scan, hits the depth limit at the
// same nesting as before.
func TestPayloadDepth(t *testing.T) {
	for depth := maxDepth - 3; depth <= maxDepth+1; depth++ {
		in := []byte(`{"request_id":"r","api":"hello","payload":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth) + `}`)
		_, err := ParseRequest(in)
		_, rerr := refParseRequest(in)
		if !sameError(err, rerr) {
			t.Errorf("payload nested %d deep: error = %v, reference %v", depth, err, rerr)
		}
		if (err == nil) != (depth < maxDepth) {
			t.Errorf("payload nested %d deep: error = %v, want one only from depth %d", depth, err, maxDepth)
		}
	}
}
