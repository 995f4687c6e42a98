package standalone_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/standalone"
)

// start runs a server on a loopback port and returns it with its ws:// URL.
func start(t *testing.T, cfg standalone.Config) (*standalone.Server, string) {
	t.Helper()
	return relaytest.StartServer(t, cfg)
}

// client is a real websocket client. A goroutine reads every message into a
// channel, so a test can wait with a timeout without breaking the connection.
type client struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	in   chan []byte
	done chan error // the read error that ended the connection
	wmu  sync.Mutex
	n    int
}

func dial(t *testing.T, url, name string) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	c := &client{t: t, name: name, ws: ws, in: make(chan []byte, 1024), done: make(chan error, 1)}
	go func() {
		for {
			typ, msg, err := ws.ReadMessage()
			if err != nil {
				c.done <- err
				close(c.in)
				return
			}
			if typ != websocket.TextMessage {
				c.done <- fmt.Errorf("server sent a non-text frame (type %d)", typ)
				close(c.in)
				return
			}
			c.in <- msg
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) raw(msg string) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *client) send(api string, payload any) string {
	c.t.Helper()
	c.n++
	id := fmt.Sprintf("%s-%d", c.name, c.n)
	msg, err := wire.EncodeRequest(id, api, payload)
	if err != nil {
		c.t.Fatal(err)
	}
	c.raw(string(msg))
	return id
}

// next returns the next server message, checked with the wire decoder (the
// same checks rcodesign applies).
func (c *client) next() wire.ServerMessage {
	c.t.Helper()
	select {
	case msg, ok := <-c.in:
		if !ok {
			c.t.Fatalf("%s: connection ended while waiting for a message: %v", c.name, <-c.done)
		}
		m, err := wire.ParseServerMessage(msg)
		if err != nil {
			c.t.Fatalf("%s: server sent %s: %v", c.name, msg, err)
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no message within 10s", c.name)
	}
	panic("unreachable")
}

func (c *client) expect(typ string) wire.ServerMessage {
	c.t.Helper()
	m := c.next()
	if m.Type != typ {
		c.t.Fatalf("%s: got %s (%s), want %s", c.name, m.Type, m.Payload, typ)
	}
	return m
}

func (c *client) expectError(code string) wire.ErrorPayload {
	c.t.Helper()
	m := c.expect(wire.TypeError)
	e, err := m.ErrorReport()
	if err != nil {
		c.t.Fatal(err)
	}
	if e.Code != code {
		c.t.Fatalf("%s: error %s (%s), want %s", c.name, e.Code, e.Message, code)
	}
	return e
}

func (c *client) expectClosed(reason string) {
	c.t.Helper()
	m := c.expect(wire.TypeSessionClosed)
	p, err := m.SessionClosed()
	if err != nil {
		c.t.Fatalf("%s: session-closed must carry a payload for rcodesign's signer: %v", c.name, err)
	}
	if p.Reason == nil || *p.Reason != reason {
		c.t.Fatalf("%s: session-closed reason %v, want %q", c.name, p.Reason, reason)
	}
}

// alive checks the connection still works and that nothing unexpected is
// queued before the greeting.
func (c *client) alive() {
	c.t.Helper()
	c.send(wire.APIHello, nil)
	c.expect(wire.TypeGreeting)
}

// ended waits for the server to end the connection and returns the close
// error.
func (c *client) ended() error {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return <-c.done
			}
		case <-time.After(10 * time.Second):
			c.t.Fatalf("%s: connection still open after 10s", c.name)
		}
	}
}

func sp(s string) *string { return &s }
func up(v uint64) *uint64 { return &v }

const sid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

func pair(t *testing.T, url, id string) (a, b *client) {
	t.Helper()
	a, b = dial(t, url, "a"), dial(t, url, "b")
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: id, TTL: up(600)})
	a.expect(wire.TypeSessionCreated)
	b.send(wire.APIJoinSession, wire.JoinSession{SessionID: id, Context: sp("Yg==")})
	b.expect(wire.TypeSessionJoined)
	a.expect(wire.TypeSessionJoined)
	return a, b
}

// TestTwoPeerSession runs a whole session the way rcodesign's initiator and
// signer do (spec §6.3), checking every message each side receives, in order.
func TestTwoPeerSession(t *testing.T) {
	_, url := start(t, standalone.Config{Relay: relay.Config{MOTD: "welcome"}})
	a, b := dial(t, url, "initiator"), dial(t, url, "signer")

	id := a.send(wire.APIHello, nil)
	m := a.expect(wire.TypeGreeting)
	g, err := m.Greeting()
	if err != nil || g.CheckGreeting() != nil || g.MOTD == nil || *g.MOTD != "welcome" || *m.RequestID != id {
		t.Fatalf("greeting %+v (%v), request_id %v", g, err, m.RequestID)
	}
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600)})
	if m := a.expect(wire.TypeSessionCreated); m.TTL == nil || *m.TTL != 600 {
		t.Fatalf("session-created ttl %v, want 600", m.TTL)
	}

	b.send(wire.APIHello, nil)
	b.expect(wire.TypeGreeting)
	bid := b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns=")})
	m = b.expect(wire.TypeSessionJoined)
	if p, err := m.SessionJoined(); err != nil || p.Context != nil || *m.RequestID != bid {
		t.Fatalf("joiner's session-joined %+v, %v", p, err)
	}
	m = a.expect(wire.TypeSessionJoined)
	if p, err := m.SessionJoined(); err != nil || p.Context == nil || *p.Context != "WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns=" {
		t.Fatalf("initiator's session-joined %+v, %v", p, err)
	}
	if m.RequestID != nil {
		t.Errorf("initiator received the joiner's request_id %q", *m.RequestID)
	}

	// ping, pong, request-signing-certificate, then sign requests: each side
	// sends and reads exactly [its ack, the peer's message] — and because
	// the relay acks before forwarding, the ack always comes first.
	exchange := func(from, to *client, msg string) {
		t.Helper()
		from.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: msg})
		if m := from.expect(wire.TypeMessageSent); m.TTL == nil {
			t.Fatalf("message-sent without ttl")
		}
		m := to.expect(wire.TypePeerMessage)
		p, err := m.PeerMessage()
		if err != nil || p.Message != msg {
			t.Fatalf("peer-message %+v, %v; want %q verbatim", p, err, msg)
		}
	}
	for i := range 3 {
		exchange(a, b, fmt.Sprintf("A%d+/=", i))
		exchange(b, a, fmt.Sprintf("B%d+/=", i))
	}
	for i := range 20 {
		exchange(a, b, strings.Repeat("s", 100*i))
		exchange(b, a, strings.Repeat("S", 1000*i))
	}

	a.send(wire.APIGoodbye, wire.Goodbye{SessionID: sid, Reason: sp("signing operations completed")})
	a.expect(wire.TypeSessionClosed)
	b.expectClosed("signing operations completed")
	b.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "late"})
	b.expectError(wire.CodeSessionNotFound)
}

// TestErrorCases sends every kind of bad request over a real websocket and
// checks the code, and that the connection keeps working after each.
func TestErrorCases(t *testing.T) {
	_, url := start(t, standalone.Config{Relay: relay.Config{MaxSessionsPerConn: 2, MessageRate: 1000, MessageBurst: 1000}})
	c := dial(t, url, "c")
	for _, tc := range []struct{ in, code string }{
		{`{"request_id":`, wire.CodeRequestJSONParse},
		{`[1,2,3]`, wire.CodeRequestJSONParse},
		{`{"api":"hello","payload":null}`, wire.CodeNoRequestID},
		{`{"request_id":"r","payload":null}`, wire.CodeNoAPI},
		{`{"request_id":"r","api":"list-sessions","payload":null}`, wire.CodeUnknownAPI},
		{`{"request_id":["r"],"api":"hello","payload":null}`, wire.CodeInvalidRequest},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"` + sid + `","ttl":600.5}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"` + sid + `","ttl":-600}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"ttl":600}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"join-session","payload":{"session_id":42}}`, wire.CodeInvalidPayload},
		{`{"request_id":"r","api":"create-session","payload":{"session_id":"abc","ttl":600}}`, wire.CodeInvalidSessionID},
		{`{"request_id":"r","api":"join-session","payload":{"session_id":"` + sid + `","context":null}}`, wire.CodeSessionJoinFailed},
		{`{"request_id":"r","api":"send-message","payload":{"session_id":"` + sid + `","message":"m"}}`, wire.CodeSessionNotFound},
		{`{"request_id":"r","api":"goodbye","payload":{"session_id":"` + sid + `","reason":null}}`, wire.CodeSessionNotFound},
	} {
		c.raw(tc.in)
		m := c.next()
		e, err := m.ErrorReport()
		if err != nil || e.Code != tc.code {
			t.Errorf("%.70s: got %s %+v, want error %s", tc.in, m.Type, e, tc.code)
		}
		if strings.Contains(tc.in, `"request_id":"r"`) && (m.RequestID == nil || *m.RequestID != "r") {
			t.Errorf("%.70s: error reply does not carry the request_id", tc.in)
		}
		c.alive()
	}

	c.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
	c.expect(wire.TypeSessionCreated)
	other := dial(t, url, "other")
	other.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
	other.expectError(wire.CodeSessionExists)
	c.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "m"})
	c.expectError(wire.CodeMessageSendFailure)
	c.send(wire.APICreateSession, wire.CreateSession{SessionID: sid + "-2"})
	c.expect(wire.TypeSessionCreated)
	c.send(wire.APICreateSession, wire.CreateSession{SessionID: sid + "-3"})
	c.expectError(wire.CodeTooManySessions)
	c.alive()
}

func TestRateLimit(t *testing.T) {
	_, url := start(t, standalone.Config{Relay: relay.Config{MessageRate: 0.001, MessageBurst: 5}})
	c, d := dial(t, url, "c"), dial(t, url, "d")
	for range 5 {
		c.send(wire.APIHello, nil)
	}
	for range 5 {
		c.expect(wire.TypeGreeting)
	}
	c.send(wire.APIHello, nil)
	c.expectError(wire.CodeRateLimited)
	d.alive() // others unaffected
	// Ignoring the errors gets the connection closed (writes may fail once
	// the relay has hung up).
	hello, _ := wire.EncodeRequest("flood", wire.APIHello, nil)
	for range 10 {
		_ = c.ws.WriteMessage(websocket.TextMessage, hello)
	}
	var ce *websocket.CloseError
	if err := c.ended(); !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Fatalf("flooding client ended with %v, want close 1008", err)
	}
	d.alive()
}

func TestThirdConnectionRefused(t *testing.T) {
	_, url := start(t, standalone.Config{})
	a, b := pair(t, url, sid)
	x := dial(t, url, "intruder")
	x.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("eA==")})
	if e := x.expectError(wire.CodeSessionJoinFailed); !strings.Contains(e.Message, "already has a peer") {
		t.Errorf("message %q does not say the session is taken", e.Message)
	}
	x.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "forged"})
	x.expectError(wire.CodeNotSessionMember)
	x.send(wire.APIGoodbye, wire.Goodbye{SessionID: sid, Reason: sp("hijack")})
	x.expectError(wire.CodeNotSessionMember)
	x.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
	x.expectError(wire.CodeSessionExists)
	// The members saw none of it.
	a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "still ours"})
	a.expect(wire.TypeMessageSent)
	if p, _ := b.expect(wire.TypePeerMessage).PeerMessage(); p.Message != "still ours" {
		t.Fatalf("b got %q", p.Message)
	}
	a.alive()
	b.alive()
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	srv, url := start(t, standalone.Config{Relay: relay.Config{Now: clk.Now, MaxTTL: 60 * time.Second}})

	// A session nobody joins in time cannot be joined, and its initiator is
	// told.
	a, b := dial(t, url, "a"), dial(t, url, "b")
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600)})
	if m := a.expect(wire.TypeSessionCreated); *m.TTL != 60 {
		t.Fatalf("ttl %d, want the 60 s cap", *m.TTL)
	}
	clk.Add(61 * time.Second)
	b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid})
	b.expectError(wire.CodeSessionJoinFailed)
	a.expectClosed(relay.ReasonExpired)

	// A joined session expires under its peers: the sender gets an error,
	// the other side a session-closed.
	const sid2 = "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"
	a, b = pair(t, url, sid2)
	clk.Add(30 * time.Second)
	a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid2, Message: "m"})
	if m := a.expect(wire.TypeMessageSent); *m.TTL != 30 {
		t.Fatalf("ttl %d after 30 s, want 30", *m.TTL)
	}
	b.expect(wire.TypePeerMessage)
	clk.Add(31 * time.Second)
	b.send(wire.APISendMessage, wire.SendMessage{SessionID: sid2, Message: "m"})
	b.expectError(wire.CodeSessionExpired)
	a.expectClosed(relay.ReasonExpired)

	// The sweeper closes expired sessions without waiting for a request.
	const sid3 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	a, b = pair(t, url, sid3)
	clk.Add(61 * time.Second)
	if err := srv.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.expectClosed(relay.ReasonExpired)
	b.expectClosed(relay.ReasonExpired)
}

func TestPeerDisconnectsMidSession(t *testing.T) {
	_, url := start(t, standalone.Config{})
	for _, who := range []string{"signer", "initiator"} {
		t.Run(who, func(t *testing.T) {
			id := map[string]string{"signer": sid, "initiator": "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"}[who]
			a, b := pair(t, url, id)
			a.send(wire.APISendMessage, wire.SendMessage{SessionID: id, Message: "ping"})
			a.expect(wire.TypeMessageSent)
			b.expect(wire.TypePeerMessage)
			gone, stays := b, a
			if who == "initiator" {
				gone, stays = a, b
			}
			gone.ws.UnderlyingConn().Close() // no close frame: a crash
			stays.expectClosed(relay.ReasonPeerDisconnected)
			stays.send(wire.APISendMessage, wire.SendMessage{SessionID: id, Message: "anyone?"})
			stays.expectError(wire.CodeSessionNotFound)
		})
	}
}

func TestMalformedAndOversized(t *testing.T) {
	_, url := start(t, standalone.Config{})
	a, b := pair(t, url, sid)
	bad := dial(t, url, "bad")

	bad.raw(strings.Repeat("{", 10000))
	bad.expectError(wire.CodeRequestJSONParse)
	if err := bad.ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13}); err != nil {
		t.Fatal(err)
	}
	bad.expectError(wire.CodeRequestJSONParse)
	big := `{"request_id":"r","api":"send-message","payload":{"session_id":"` + sid + `","message":"` + strings.Repeat("A", 200<<10) + `"}}`
	bad.raw(big)
	if m := bad.expectError(wire.CodeMessageTooLarge); !strings.Contains(m.Message, "131072") {
		t.Errorf("MESSAGE_TOO_LARGE message %q does not state the limit", m.Message)
	}
	bad.alive()

	// Far too large: the connection is closed (1009) rather than read.
	// (The write may fail: the relay hangs up before reading it all.)
	_ = bad.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 1<<20)))
	var ce *websocket.CloseError
	if err := bad.ended(); !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame ended with %v, want close 1009", err)
	}

	// The session next door never noticed.
	a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "fine"})
	a.expect(wire.TypeMessageSent)
	b.expect(wire.TypePeerMessage)
	late := dial(t, url, "late")
	late.alive()
}

func TestGracefulShutdown(t *testing.T) {
	srv, url := start(t, standalone.Config{})
	a, b := pair(t, url, sid)
	lone := dial(t, url, "lone")
	lone.alive()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*client{a, b} {
		c.expectClosed(relay.ReasonShutdown)
	}
	for _, c := range []*client{a, b, lone} {
		var ce *websocket.CloseError
		if err := c.ended(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("%s ended with %v, want close 1001", c.name, err)
		}
	}
	if _, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
		t.Errorf("dial after Shutdown succeeded")
	}
}

func TestSlowClientIsDisconnected(t *testing.T) {
	_, url := start(t, standalone.Config{
		Relay:        relay.Config{MessageRate: -1},
		SendQueue:    4,
		WriteTimeout: 200 * time.Millisecond,
	})
	a := dial(t, url, "a")
	// b joins and then never reads again: a raw websocket, no reader.
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
	a.expect(wire.TypeSessionCreated)
	join, _ := wire.EncodeRequest("b1", wire.APIJoinSession, wire.JoinSession{SessionID: sid})
	if err := ws.WriteMessage(websocket.TextMessage, join); err != nil {
		t.Fatal(err)
	}
	a.expect(wire.TypeSessionJoined)

	msg := strings.Repeat("M", 100<<10)
	for i := range 2000 {
		a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: msg})
		m := a.next()
		if m.Type == wire.TypeMessageSent {
			continue
		}
		// The relay gave up on b and told a.
		if m.Type == wire.TypeSessionClosed {
			p, _ := m.SessionClosed()
			if p.Reason == nil || *p.Reason != relay.ReasonPeerDisconnected {
				t.Fatalf("session-closed reason %v", p.Reason)
			}
			t.Logf("slow reader disconnected after %d messages of 100 KiB", i)
			// The reply to the request sent meanwhile.
			a.expectError(wire.CodeSessionNotFound)
			a.alive()
			return
		}
		if m.Type == wire.TypeError {
			e, _ := m.ErrorReport()
			if e.Code == wire.CodeSessionNotFound {
				continue // b was dropped between our send and its processing
			}
			t.Fatalf("unexpected error %+v", e)
		}
	}
	t.Fatal("a reader that never reads was never disconnected")
}

func TestKeepalive(t *testing.T) {
	_, url := start(t, standalone.Config{PingInterval: 100 * time.Millisecond, IdleTimeout: time.Second})
	a, b := pair(t, url, sid)
	// a and b read continuously (so they answer pings) and stay connected
	// well past the idle timeout.
	time.Sleep(2500 * time.Millisecond)
	a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "still here"})
	a.expect(wire.TypeMessageSent)
	b.expect(wire.TypePeerMessage)

	// A client that never reads never answers pings, and is dropped.
	silent, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer silent.Close()
	join, _ := wire.EncodeRequest("s1", wire.APICreateSession, wire.CreateSession{SessionID: "silent-session-00001"})
	if err := silent.WriteMessage(websocket.TextMessage, join); err != nil {
		t.Fatal(err)
	}
	// (silent cannot read its reply, so poll until its session exists.)
	for {
		a.send(wire.APIJoinSession, wire.JoinSession{SessionID: "silent-session-00001"})
		if m := a.next(); m.Type == wire.TypeSessionJoined {
			break
		} else if m.Type != wire.TypeError {
			t.Fatalf("got %s", m.Type)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.expectClosed(relay.ReasonPeerDisconnected)
}

func TestHTTPEndpoints(t *testing.T) {
	_, url := start(t, standalone.Config{})
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	get := func(path string) (int, string) {
		resp, err := http.Get(httpURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(""); code != 400 || !strings.Contains(body, "websocket") {
		t.Errorf("plain GET / = %d %q, want 400 explaining", code, body)
	}
	if code, _ := get("nope"); code != 404 {
		t.Errorf("/nope = %d", code)
	}
	a, b := pair(t, url, sid)
	a.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "12345678"})
	a.expect(wire.TypeMessageSent)
	b.expect(wire.TypePeerMessage)
	a.raw("junk")
	a.expectError(wire.CodeRequestJSONParse)
	_, body := get("metrics")
	for _, want := range []string{
		`relay_api_calls_total{api="create-session"} 1`,
		`relay_api_calls_total{api="join-session"} 1`,
		`relay_errors_total{code="REQUEST_JSON_PARSE"} 1`,
		"relay_sessions_created_total 1",
		"relay_sessions_joined_total 1",
		"relay_bytes_relayed_total 8",
		"relay_connections_open 2",
		"relay_sessions_stored 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestMaxConnections(t *testing.T) {
	_, url := start(t, standalone.Config{MaxConnections: 2})
	dial(t, url, "1").alive()
	dial(t, url, "2").alive()
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %v, %v; want HTTP 503", resp, err)
	}
}

// rcodesign would fail on anything else, so check every frame is a valid
// server message: exercised by client.next in every test above. This test
// checks the raw JSON shape of what rcodesign reads most strictly.
func TestRawShapes(t *testing.T) {
	_, url := start(t, standalone.Config{})
	a, b := dial(t, url, "a"), dial(t, url, "b")
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: up(600)})
	raw := <-a.in
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["ttl"]) != "600" || string(m["type"]) != `"session-created"` {
		t.Errorf("session-created = %s", raw)
	}
	b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: sp("Yg==")})
	<-b.in
	raw = <-a.in
	if !strings.Contains(string(raw), `"payload":{"context":"Yg=="}`) || !strings.Contains(string(raw), `"request_id":null`) {
		t.Errorf("session-joined to the initiator = %s", raw)
	}
}

// tap is a Config.Poster that records which connections the core posted to
// before passing everything on to the server's own Poster, as relay/cluster's
// router does for the connections it holds.
type tap struct {
	local relay.Poster
	mu    sync.Mutex
	posts []string
}

func (p *tap) Post(ctx context.Context, conn string, msg []byte) error {
	p.mu.Lock()
	p.posts = append(p.posts, conn)
	p.mu.Unlock()
	return p.local.Post(ctx, conn, msg)
}

func (p *tap) Close(ctx context.Context, conn string) error { return p.local.Close(ctx, conn) }

func TestConnIDAndPosterHooks(t *testing.T) {
	var n atomic.Int64
	tp := &tap{}
	srv, url := start(t, standalone.Config{
		ConnID: func() string { return fmt.Sprintf("node-7.conn-%d", n.Add(1)) },
		Poster: func(local relay.Poster) relay.Poster { tp.local = local; return tp },
	})
	a, b := dial(t, url, "a"), dial(t, url, "b")
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
	a.expect(wire.TypeSessionCreated)
	b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid})
	b.expect(wire.TypeSessionJoined)
	a.expect(wire.TypeSessionJoined)

	tp.mu.Lock()
	posts := append([]string(nil), tp.posts...)
	tp.mu.Unlock()
	// Every message went through the wrapper, to ids the hook minted:
	// a's reply, b's reply, then the push to a. (Which of the two
	// connections the server registered first is not fixed.)
	if len(posts) != 3 || posts[0] == posts[1] || posts[2] != posts[0] ||
		!strings.HasPrefix(posts[0], "node-7.conn-") || !strings.HasPrefix(posts[1], "node-7.conn-") {
		t.Fatalf("posts through the wrapper: %q, want a's id, b's id, a's id, all minted by the hook", posts)
	}
	aID, bID := posts[0], posts[1]

	// LocalPoster reaches this server's websockets, and nothing else.
	lp := srv.LocalPoster()
	if err := lp.Post(t.Context(), bID, []byte(`{"request_id":null,"type":"peer-message","payload":{"message":"from another process"}}`)); err != nil {
		t.Fatal(err)
	}
	if pm, err := b.expect(wire.TypePeerMessage).PeerMessage(); err != nil || pm.Message != "from another process" {
		t.Errorf("b got %+v, %v", pm, err)
	}
	if err := lp.Post(t.Context(), "node-8.conn-1", []byte(`{}`)); !errors.Is(err, relay.ErrGone) {
		t.Errorf("post to a connection held elsewhere: %v, want ErrGone", err)
	}
	if err := lp.Close(t.Context(), aID); err != nil {
		t.Fatal(err)
	}
	a.ended()
	b.expectClosed(relay.ReasonPeerDisconnected)
}

// TestShutdownPastDeadline: when the deadline passes before every
// connection's sessions are closed (thousands of connections on a DynamoDB
// store), Shutdown still ends every client and logs one summary line, not
// one line per connection.
func TestShutdownPastDeadline(t *testing.T) {
	var logs testenv.Buffer
	srv, url := start(t, standalone.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var clients []*client
	for i := range 6 {
		c := dial(t, url, fmt.Sprint("c", i))
		c.alive()
		clients = append(clients, c)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the deadline has already passed
	_ = srv.Shutdown(ctx)
	for _, c := range clients {
		if err := c.ended(); err == nil {
			t.Errorf("%s still connected after Shutdown", c.name)
		}
	}
	if n := strings.Count(logs.String(), "shutdown: could not close the sessions"); n != 1 {
		t.Errorf("%d shutdown warnings, want 1 summary:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "connections=6 of=6") {
		t.Errorf("the summary does not count the 6 connections:\n%s", logs.String())
	}
}
