package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
)

// posted is one message the core posted.
type posted struct {
	conn string
	msg  map[string]any
	raw  string
}

// recorder is a Poster that records every post in one global order, so tests
// can check the order across connections, and fails posts on demand.
type recorder struct {
	mu     sync.Mutex
	log    []posted
	fail   map[string]error // conn -> error Post returns
	closed []string
}

func newRecorder() *recorder { return &recorder{fail: map[string]error{}} }

func (r *recorder) Post(_ context.Context, conn string, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.fail[conn]; err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		panic(fmt.Sprintf("core posted invalid JSON %q", msg))
	}
	r.log = append(r.log, posted{conn, m, string(msg)})
	return nil
}

func (r *recorder) Close(_ context.Context, conn string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = append(r.closed, conn)
	r.fail[conn] = relay.ErrGone
	return nil
}

// take returns and clears everything posted so far.
func (r *recorder) take() []posted {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.log
	r.log = nil
	return l
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	h     *relay.Handler
	store *memstore.Store
	rec   *recorder
	clock *clock
	reqN  int
}

func newFixture(t *testing.T, mod func(*relay.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: memstore.New(), rec: newRecorder(), clock: &clock{t: time.Unix(1_700_000_000, 250_000_000)}}
	cfg := relay.Config{Store: f.store, Poster: f.rec, Now: f.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	h, err := relay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

const (
	sid  = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	sid2 = "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"
)

// send sends a request from conn and returns what was posted because of it.
func (f *fixture) send(conn, api string, payload any) []posted {
	f.t.Helper()
	f.reqN++
	msg, err := wire.EncodeRequest(fmt.Sprintf("req-%s-%d", conn, f.reqN), api, payload)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.raw(conn, string(msg))
}

func (f *fixture) raw(conn, msg string) []posted {
	f.t.Helper()
	if err := f.h.Message(f.t.Context(), conn, []byte(msg)); err != nil {
		f.t.Logf("Message returned %v", err)
	}
	return f.rec.take()
}

func sp(s string) *string { return &s }
func up(v uint64) *uint64 { return &v }

// expect checks the posted messages: conn, type and selected fields, in order.
type want struct {
	conn, typ string
	fields    map[string]any // top-level fields ("ttl", "request_id") and "payload.x"
}

func check(t *testing.T, got []posted, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("posted %d messages, want %d:\n%s", len(got), len(wants), dump(got))
	}
	for i, w := range wants {
		g := got[i]
		if g.conn != w.conn || g.msg["type"] != w.typ {
			t.Fatalf("message %d: %s got %v, want %s got %s\n%s", i, g.conn, g.msg["type"], w.conn, w.typ, dump(got))
		}
		for k, v := range w.fields {
			var have any
			var ok bool
			if p, found := strings.CutPrefix(k, "payload."); found {
				pm, _ := g.msg["payload"].(map[string]any)
				have, ok = pm[p]
			} else {
				have, ok = g.msg[k]
			}
			if v == absent {
				if ok {
					t.Errorf("message %d (%s): %s present (%v), want absent", i, g.raw, k, have)
				}
				continue
			}
			if !ok || fmt.Sprint(have) != fmt.Sprint(v) {
				t.Errorf("message %d (%s): %s = %v, want %v", i, g.raw, k, have, v)
			}
		}
	}
}

type absentT struct{}

var absent = absentT{}

func dump(l []posted) string {
	var b strings.Builder
	for _, p := range l {
		fmt.Fprintf(&b, "  -> %s: %s\n", p.conn, p.raw)
	}
	return b.String()
}

func errCode(code string) want {
	return want{typ: wire.TypeError, fields: map[string]any{"payload.code": code}}
}

func to(conn string, w want) want { w.conn = conn; return w }

// pair creates sid from "a" and joins it from "b".
func (f *fixture) pair() {
	f.t.Helper()
	check(f.t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600)}),
		want{"a", wire.TypeSessionCreated, nil})
	check(f.t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("ctx-b")}),
		want{"b", wire.TypeSessionJoined, nil}, want{"a", wire.TypeSessionJoined, nil})
}

func TestFullSession(t *testing.T) {
	f := newFixture(t, func(c *relay.Config) { c.MOTD = "be nice" })
	ctx := t.Context()
	for _, c := range []string{"a", "b"} {
		if err := f.h.Connect(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	check(t, f.send("a", wire.APIHello, nil), want{"a", wire.TypeGreeting, map[string]any{
		"request_id": "req-a-1", "payload.apis": "[create-session goodbye hello join-session send-message]",
		"payload.motd": "be nice", "ttl": absent}})

	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600), Context: sp("ctx-a")}),
		want{"a", wire.TypeSessionCreated, map[string]any{"request_id": "req-a-2", "ttl": 600, "payload": absent}})

	// Two seconds later the signer joins: the reply to the joiner comes first
	// and carries the initiator's context; the initiator's copy carries the
	// joiner's context and not the joiner's request id.
	f.clock.Add(2 * time.Second)
	check(t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("WGmv9FBU")}),
		want{"b", wire.TypeSessionJoined, map[string]any{"request_id": "req-b-3", "payload.context": "ctx-a", "ttl": 598}},
		want{"a", wire.TypeSessionJoined, map[string]any{"request_id": nil, "payload.context": "WGmv9FBU", "ttl": 598}})

	// Messages both ways: ack to the sender first, then the verbatim message.
	for i, dir := range [][2]string{{"a", "b"}, {"b", "a"}, {"a", "b"}} {
		msg := fmt.Sprintf("3sIbyIjO+/=%d", i)
		check(t, f.send(dir[0], wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: msg}),
			want{dir[0], wire.TypeMessageSent, map[string]any{"ttl": 598}},
			want{dir[1], wire.TypePeerMessage, map[string]any{"request_id": nil, "payload.message": msg, "ttl": 598}})
	}

	check(t, f.send("a", wire.APIGoodbye, wire.Goodbye{SessionID: sid, Reason: sp("signing operations completed")}),
		want{"a", wire.TypeSessionClosed, map[string]any{"request_id": "req-a-7"}},
		want{"b", wire.TypeSessionClosed, map[string]any{"request_id": nil, "payload.reason": "signing operations completed"}})
	if f.store.Len() != 0 {
		t.Errorf("goodbye left %d sessions in the store", f.store.Len())
	}
	// The session is gone for both.
	check(t, f.send("b", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "x"}), to("b", errCode(wire.CodeSessionNotFound)))
	// Disconnecting afterwards notifies nobody.
	if err := f.h.Disconnect(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check(t, f.rec.take())
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct{ in, code string }{
		{`nope`, wire.CodeRequestJSONParse},
		{`{"api":"hello","payload":null}`, wire.CodeNoRequestID},
		{`{"request_id":"r","payload":null}`, wire.CodeNoAPI},
		{`{"request_id":"r","api":"list-sessions","payload":null}`, wire.CodeUnknownAPI},
		{`{"request_id":"r","api":7,"payload":null}`, wire.CodeInvalidRequest},
		{`{"request_id":"r","api":"create-session","payload":null}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"` + sid + `","ttl":"600"}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"` + sid + `","ttl":-5}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"` + sid + `","ttl":0}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"short","ttl":600}}`, wire.CodeInvalidSessionID},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"has spaces in it ok?","ttl":600}}`, wire.CodeInvalidSessionID},
		{`{"request_id":"r","api":"join-session","payload":{"session_id":"../../etc/passwd/xx","context":null}}`, wire.CodeInvalidSessionID},
		{`{"request_id":"r","api":"send-message","payload":{"session_id":"` + sid + `","message":5}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"goodbye","payload":{"session_id":"` + sid + `","reason":{}}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"send-message","payload":{"session_id":"` + sid + `","message":"` + strings.Repeat("A", relay.DefaultMaxMessageSize) + `"}}`, wire.CodeMessageTooLarge},
	}
	for _, tc := range tests {
		got := f.raw("a", tc.in)
		check(t, got, to("a", errCode(tc.code)))
		if rid := got[0].msg["request_id"]; strings.Contains(tc.in, `"request_id":"r"`) && tc.code != wire.CodeMessageTooLarge && rid != "r" {
			t.Errorf("%s: error reply request_id = %v, want the request's", tc.code, rid)
		}
	}
	if f.store.Len() != 0 {
		t.Errorf("bad input created %d sessions", f.store.Len())
	}
}

func TestCreateErrors(t *testing.T) {
	f := newFixture(t, func(c *relay.Config) { c.MaxSessionsPerConn = 2; c.MaxTTL = 900 * time.Second })
	// A ttl above the maximum is capped; none means the maximum.
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(1 << 40)}),
		want{"a", wire.TypeSessionCreated, map[string]any{"ttl": 900}})
	// The same id cannot be created again, by anyone, and stays the first's.
	for _, c := range []string{"a", "x"} {
		check(t, f.send(c, wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600)}), to(c, errCode(wire.CodeSessionExists)))
	}
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid2}),
		want{"a", wire.TypeSessionCreated, map[string]any{"ttl": 900}})
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: "third-session-id-0001", TTL: up(5)}), to("a", errCode(wire.CodeTooManySessions)))
	// Expired sessions do not count against the quota.
	f.clock.Add(901 * time.Second)
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: "third-session-id-0001", TTL: up(5)}),
		want{"a", wire.TypeSessionCreated, map[string]any{"ttl": 5}})
}

func TestJoinErrors(t *testing.T) {
	f := newFixture(t, nil)
	check(t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid}), to("b", errCode(wire.CodeSessionJoinFailed)))
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(60)}), want{"a", wire.TypeSessionCreated, nil})
	check(t, f.send("a", wire.APIJoinSession, wire.JoinSession{SessionID: sid}), to("a", errCode(wire.CodeSessionJoinFailed)))
	check(t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("c")}),
		want{"b", wire.TypeSessionJoined, map[string]any{"payload.context": nil}}, want{"a", wire.TypeSessionJoined, map[string]any{"payload.context": "c"}})
	// A third connection cannot join, send or say goodbye.
	got := f.send("c", wire.APIJoinSession, wire.JoinSession{SessionID: sid})
	check(t, got, to("c", errCode(wire.CodeSessionJoinFailed)))
	if m := got[0].msg["payload"].(map[string]any)["message"]; !strings.Contains(m.(string), "already has a peer") {
		t.Errorf("join of a joined session: message %q does not say why", m)
	}
	check(t, f.send("c", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}), to("c", errCode(wire.CodeNotSessionMember)))
	check(t, f.send("c", wire.APIGoodbye, wire.Goodbye{SessionID: sid}), to("c", errCode(wire.CodeNotSessionMember)))
	// The members are undisturbed.
	check(t, f.send("b", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}),
		want{"b", wire.TypeMessageSent, nil}, want{"a", wire.TypePeerMessage, nil})
}

func TestSendBeforeJoin(t *testing.T) {
	f := newFixture(t, nil)
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(60)}), want{"a", wire.TypeSessionCreated, nil})
	check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}), to("a", errCode(wire.CodeMessageSendFailure)))
}

func TestExpiry(t *testing.T) {
	t.Run("join", func(t *testing.T) {
		f := newFixture(t, nil)
		check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(10)}),
			want{"a", wire.TypeSessionCreated, map[string]any{"ttl": 10}})
		// The session lives at least the 10 s granted (expiry rounds up to a
		// whole second), and not a second more.
		f.clock.Add(10*time.Second + 740*time.Millisecond)
		check(t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid}),
			want{"b", wire.TypeSessionJoined, map[string]any{"ttl": 0}}, want{"a", wire.TypeSessionJoined, map[string]any{"ttl": 0}})

		check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid2, TTL: up(10)}), want{"a", wire.TypeSessionCreated, nil})
		f.clock.Add(11 * time.Second)
		// The joiner is refused and the waiting initiator is told.
		check(t, f.send("c", wire.APIJoinSession, wire.JoinSession{SessionID: sid2}),
			to("a", want{typ: wire.TypeSessionClosed, fields: map[string]any{"payload.reason": relay.ReasonExpired}}),
			to("c", errCode(wire.CodeSessionJoinFailed)))
	})
	t.Run("send", func(t *testing.T) {
		f := newFixture(t, nil)
		f.pair()
		f.clock.Add(300 * time.Second)
		check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}),
			want{"a", wire.TypeMessageSent, map[string]any{"ttl": 300}}, want{"b", wire.TypePeerMessage, map[string]any{"ttl": 300}})
		f.clock.Add(301 * time.Second)
		check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}),
			to("b", want{typ: wire.TypeSessionClosed, fields: map[string]any{"payload.reason": relay.ReasonExpired}}),
			to("a", errCode(wire.CodeSessionExpired)))
		if f.store.Len() != 0 {
			t.Errorf("expired session still stored")
		}
	})
	t.Run("sweep", func(t *testing.T) {
		f := newFixture(t, nil)
		f.pair()
		if err := f.h.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		check(t, f.rec.take())
		f.clock.Add(601 * time.Second)
		if err := f.h.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		check(t, f.rec.take(),
			want{"a", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonExpired}},
			want{"b", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonExpired}})
	})
	t.Run("goodbye after expiry", func(t *testing.T) {
		f := newFixture(t, nil)
		f.pair()
		f.clock.Add(700 * time.Second)
		check(t, f.send("b", wire.APIGoodbye, wire.Goodbye{SessionID: sid}),
			want{"b", wire.TypeSessionClosed, nil}, want{"a", wire.TypeSessionClosed, map[string]any{"payload.reason": nil}})
	})
}

func TestDisconnect(t *testing.T) {
	f := newFixture(t, nil)
	f.pair()
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid2}), want{"a", wire.TypeSessionCreated, nil})
	if err := f.h.Disconnect(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	check(t, f.rec.take(), want{"a", wire.TypeSessionClosed, map[string]any{"request_id": nil, "payload.reason": relay.ReasonPeerDisconnected, "ttl": absent}})
	if err := f.h.Disconnect(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	check(t, f.rec.take())
	if f.store.Len() != 0 {
		t.Errorf("disconnects left %d sessions", f.store.Len())
	}
}

func TestPeerGone(t *testing.T) {
	f := newFixture(t, nil)
	f.pair()
	f.rec.fail["b"] = fmt.Errorf("gone: %w", relay.ErrGone)
	// The sender is acknowledged (that reply comes first by design), then
	// told the peer is gone: an error, not silence.
	check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}),
		want{"a", wire.TypeMessageSent, nil},
		want{"a", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonPeerDisconnected}})
	check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}), to("a", errCode(wire.CodeSessionNotFound)))
}

func TestInitiatorGoneAtJoin(t *testing.T) {
	f := newFixture(t, nil)
	check(t, f.send("a", wire.APICreateSession, wire.CreateSession{SessionID: sid}), want{"a", wire.TypeSessionCreated, nil})
	f.rec.fail["a"] = relay.ErrGone
	check(t, f.send("b", wire.APIJoinSession, wire.JoinSession{SessionID: sid}),
		want{"b", wire.TypeSessionJoined, nil},
		want{"b", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonPeerDisconnected}})
	if f.store.Len() != 0 {
		t.Errorf("session of a gone initiator kept")
	}
}

func TestPosterFailureClosesConnection(t *testing.T) {
	f := newFixture(t, nil)
	f.pair()
	f.rec.fail["b"] = errors.New("throttled")
	check(t, f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}),
		want{"a", wire.TypeMessageSent, nil},
		want{"a", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonPeerDisconnected}})
	if len(f.rec.closed) != 1 || f.rec.closed[0] != "b" {
		t.Errorf("closed %v, want [b]: a peer that missed a message must be hung up on", f.rec.closed)
	}
}

// failingStore fails every call after fail is set.
type failingStore struct {
	relay.Store
	fail bool
}

var errStore = errors.New("store unavailable")

func (s *failingStore) Create(ctx context.Context, x relay.Session) error {
	if s.fail {
		return errStore
	}
	return s.Store.Create(ctx, x)
}
func (s *failingStore) Get(ctx context.Context, id string, now time.Time) (relay.Session, error) {
	if s.fail {
		return relay.Session{}, errStore
	}
	return s.Store.Get(ctx, id, now)
}
func (s *failingStore) Join(ctx context.Context, id, c string, now time.Time) (relay.Session, error) {
	if s.fail {
		return relay.Session{}, errStore
	}
	return s.Store.Join(ctx, id, c, now)
}
func (s *failingStore) SessionsOf(ctx context.Context, c string) ([]relay.Session, error) {
	if s.fail {
		return nil, errStore
	}
	return s.Store.SessionsOf(ctx, c)
}

func TestStoreFailure(t *testing.T) {
	fs := &failingStore{Store: memstore.New()}
	f := newFixture(t, func(c *relay.Config) { c.Store = fs })
	fs.fail = true
	for _, r := range []struct {
		api     string
		payload any
	}{
		{wire.APICreateSession, wire.CreateSession{SessionID: sid}},
		{wire.APIJoinSession, wire.JoinSession{SessionID: sid}},
		{wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"}},
		{wire.APIGoodbye, wire.Goodbye{SessionID: sid}},
	} {
		check(t, f.send("a", r.api, r.payload), to("a", errCode(wire.CodeInternalError)))
	}
	if err := f.h.Message(t.Context(), "a", []byte(`{"request_id":"r","api":"create-session","payload":{"session_id":"`+sid+`"}}`)); !errors.Is(err, errStore) {
		t.Errorf("Message error = %v, want the store error for the transport's log", err)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *relay.Config) { c.MessageRate = 1; c.MessageBurst = 3 })
	for range 3 {
		check(t, f.send("a", wire.APIHello, nil), want{"a", wire.TypeGreeting, nil})
	}
	check(t, f.send("a", wire.APIHello, nil), to("a", errCode(wire.CodeRateLimited)))
	// Other connections are not affected.
	check(t, f.send("b", wire.APIHello, nil), want{"b", wire.TypeGreeting, nil})
	// Tokens refill at the configured rate.
	f.clock.Add(time.Second)
	check(t, f.send("a", wire.APIHello, nil), want{"a", wire.TypeGreeting, nil})
	// A connection that keeps flooding is closed.
	for range 3 {
		check(t, f.send("a", wire.APIHello, nil), to("a", errCode(wire.CodeRateLimited)))
	}
	check(t, f.send("a", wire.APIHello, nil))
	if len(f.rec.closed) != 1 || f.rec.closed[0] != "a" {
		t.Errorf("closed %v, want [a]", f.rec.closed)
	}
}

func TestShutdownClosesSessions(t *testing.T) {
	f := newFixture(t, nil)
	f.pair()
	if err := f.h.CloseSessionsOf(t.Context(), "a", relay.ReasonShutdown); err != nil {
		t.Fatal(err)
	}
	check(t, f.rec.take(),
		want{"a", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonShutdown}},
		want{"b", wire.TypeSessionClosed, map[string]any{"payload.reason": relay.ReasonShutdown}})
}

func TestConfig(t *testing.T) {
	st, p := memstore.New(), newRecorder()
	for _, c := range []relay.Config{
		{},
		{Store: st},
		{Store: st, Poster: p, MaxTTL: time.Millisecond},
		{Store: st, Poster: p, MaxMessageSize: 10},
		{Store: st, Poster: p, MaxMessageSize: wire.MaxMessageSize + 1},
		{Store: st, Poster: p, MaxSessionsPerConn: -1},
		{Store: st, Poster: p, MessageBurst: -1},
	} {
		if _, err := relay.New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		}
	}
	h, err := relay.New(relay.Config{Store: st, Poster: p})
	if err != nil || h.MaxMessageSize() != relay.DefaultMaxMessageSize {
		t.Fatalf("defaults: %v", err)
	}
}

func TestValidSessionID(t *testing.T) {
	for id, ok := range map[string]bool{
		sid:                      true,
		"ABCDEFGHIJKLMNOP":       true,
		"a.b_c~d-e.f_g~h-":       true,
		"ABCDEFGHIJKLMNO":        false,
		strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false,
		"3f2504e0 4f89 41d3 9a0": false,
		"3f2504e0/4f89/41d3/9a0": false,
		"3f2504e0-4f89-41d3-é":   false,
	} {
		if relay.ValidSessionID(id) != ok {
			t.Errorf("ValidSessionID(%q) = %v, want %v", id, !ok, ok)
		}
	}
}

// countMetrics records Add calls.
type countMetrics struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *countMetrics) Add(k relay.Counter, label string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[string(k)+"/"+label] += n
}

func TestMetrics(t *testing.T) {
	m := &countMetrics{m: map[string]uint64{}}
	f := newFixture(t, func(c *relay.Config) { c.Metrics = m })
	f.pair()
	f.send("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "12345"})
	f.raw("a", "garbage")
	if err := f.h.Disconnect(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]uint64{
		"relay_api_calls_total/create-session":   1,
		"relay_api_calls_total/join-session":     1,
		"relay_api_calls_total/send-message":     1,
		"relay_errors_total/REQUEST_JSON_PARSE":  1,
		"relay_sessions_created_total/":          1,
		"relay_sessions_joined_total/":           1,
		"relay_sessions_closed_total/disconnect": 1,
		"relay_messages_relayed_total/":          1,
		"relay_bytes_relayed_total/":             5,
		"relay_disconnections_total/":            1,
	} {
		if m.m[k] != v {
			t.Errorf("metric %s = %d, want %d (all: %v)", k, m.m[k], v, m.m)
		}
	}
}

// TestForwardedMessageBytes: the peer gets the message as a JSON string that
// decodes to exactly what the sender's string decoded to. A plain message is
// forwarded as the very token that arrived; one with escapes is decoded and
// re-encoded (a lone surrogate becomes U+FFFD, as encoding/json does, so a
// strict peer decoder never sees it).
func TestForwardedMessageBytes(t *testing.T) {
	for _, tc := range []struct{ name, token, decoded string }{
		{"plain", `"AAECAwQFBgcICQ-_base64url"`, "AAECAwQFBgcICQ-_base64url"},
		{"long plain", `"` + strings.Repeat("xyz0123456789", 100) + `"`, strings.Repeat("xyz0123456789", 100)},
		{"solidus escape", `"a\/b"`, "a/b"},
		{"unicode escape", `"\u0041\u00e9"`, "Aé"},
		{"nul escape", `"x\u0000y"`, "x\x00y"},
		{"lone surrogate", `"\ud800z"`, "\ufffdz"},
		{"utf-8", `"héllo ✓"`, "héllo ✓"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.pair()
			got := f.raw("a", `{"request_id":"r1","api":"send-message","payload":{"session_id":"`+sid+`","message":`+tc.token+`}}`)
			check(t, got, want{"a", wire.TypeMessageSent, nil}, want{"b", wire.TypePeerMessage, map[string]any{"payload.message": tc.decoded}})
			if !strings.Contains(tc.token, `\`) && !strings.Contains(got[1].raw, `"message":`+tc.token) {
				t.Errorf("plain message not forwarded as its token %s: %s", tc.token, got[1].raw)
			}
			if strings.Contains(got[1].raw, `\ud800`) {
				t.Errorf("lone surrogate forwarded as is: %s", got[1].raw)
			}
		})
	}
}
