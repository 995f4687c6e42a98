package relayclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/peer"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/standalone"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, url string, opts *Options) *Client {
	t.Helper()
	c, err := Dial(ctx(t), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSessionAgainstRelay drives the farsign relay through every API.
func TestSessionAgainstRelay(t *testing.T) {
	url := relaytest.Start(t, standalone.Config{Relay: relay.Config{MOTD: "welcome \x1b[31mred\u202e"}})
	a := dial(t, url, nil)
	motd, err := a.Hello(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if motd != "welcome ?[31mred?" {
		t.Errorf("MOTD = %q: control characters must not reach the terminal", motd)
	}
	const id = "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"
	ttl, err := a.CreateSession(ctx(t), id, 300*time.Second)
	if err != nil || ttl != 300*time.Second {
		t.Fatalf("CreateSession: %v %v", ttl, err)
	}
	_, err = a.CreateSession(ctx(t), id, 0)
	var re *RelayError
	if !errors.As(err, &re) || re.Code != wire.CodeSessionExists || re.API != wire.APICreateSession {
		t.Fatalf("second create: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "relay refused create-session: SESSION_EXISTS: ") {
		t.Errorf("error text %q", err)
	}

	b := dial(t, url, nil)
	if _, err := b.JoinSession(ctx(t), id, "Qk1BQ0s="); err != nil {
		t.Fatal(err)
	}
	ev, err := a.Next(ctx(t))
	if err != nil || ev.Type != wire.TypeSessionJoined || ev.Context == nil || *ev.Context != "Qk1BQ0s=" {
		t.Fatalf("initiator event: %+v %v", ev, err)
	}
	if err := b.SendMessage(ctx(t), id, "aGVsbG8="); err != nil {
		t.Fatal(err)
	}
	if ev, err := a.Next(ctx(t)); err != nil || ev.Type != wire.TypePeerMessage || ev.Message != "aGVsbG8=" {
		t.Fatalf("peer message: %+v %v", ev, err)
	}
	if err := a.Goodbye(ctx(t), id, "done"); err != nil {
		t.Fatal(err)
	}
	if ev, err := b.Next(ctx(t)); err != nil || ev.Type != wire.TypeSessionClosed || *ev.Reason != "done" {
		t.Fatalf("closed: %+v %v", ev, err)
	}
	// After Close every call fails with ErrClosed.
	a.Close()
	if _, err := a.Hello(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Hello after Close: %v", err)
	}
	if _, err := a.Next(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}

// fakeRelay serves one websocket connection with script.
func fakeRelay(t *testing.T, script func(ws *websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		script(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

func readRequest(t *testing.T, ws *websocket.Conn) wire.Request {
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Errorf("fake relay read: %v", err)
		return wire.Request{}
	}
	r, err := wire.ParseRequest(data)
	if err != nil {
		t.Errorf("client sent a bad request: %v", err)
	}
	return r
}

func send(ws *websocket.Conn, msg string) { ws.WriteMessage(websocket.TextMessage, []byte(msg)) }

// TestPeerMessageBeforeAck is spec §6.5's race: the reference relay forwards
// to the peer before it replies to the sender, and sends replies carrying the
// sender's request_id to the peer too. The client must take neither for the
// other.
func TestPeerMessageBeforeAck(t *testing.T) {
	url := fakeRelay(t, func(ws *websocket.Conn) {
		r := readRequest(t, ws)
		// The peer's message arrives first, echoing the peer's request id.
		send(ws, `{"request_id": "someone-elses-id", "type": "peer-message", "payload": {"message": "cGVlcg=="}, "ttl": 1700000600}`)
		send(ws, `{"request_id": "`+*r.RequestID+`", "type": "message-sent", "payload": 1700000600}`)
		ws.ReadMessage()
	})
	c := dial(t, url, nil)
	if err := c.SendMessage(ctx(t), "sid", "bWluZQ=="); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	ev, err := c.Next(ctx(t))
	if err != nil || ev.Type != wire.TypePeerMessage || ev.Message != "cGVlcg==" {
		t.Fatalf("Next: %+v %v", ev, err)
	}
}

// TestRepliesWithoutRequestID: a relay that does not echo request ids is
// answered by type and order.
func TestRepliesWithoutRequestID(t *testing.T) {
	url := fakeRelay(t, func(ws *websocket.Conn) {
		readRequest(t, ws)
		send(ws, `{"type":"greeting","payload":{"apis":["create-session","join-session","send-message","goodbye"]}}`)
		readRequest(t, ws)
		send(ws, `{"type":"error","payload":{"code":"RATE_LIMITED","message":"slow down"}}`)
		ws.ReadMessage()
	})
	c := dial(t, url, nil)
	if _, err := c.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateSession(ctx(t), "sid", 0)
	var re *RelayError
	if !errors.As(err, &re) || re.Code != "RATE_LIMITED" {
		t.Fatalf("err = %v", err)
	}
}

// TestRelayMisbehaviour: each way a relay can break the protocol ends the
// connection with an error that says what happened.
func TestRelayMisbehaviour(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(ws *websocket.Conn)
		want   string
	}{
		{"binary frame", func(ws *websocket.Conn) { ws.WriteMessage(websocket.BinaryMessage, []byte("{}")) },
			"relay sent a binary websocket message"},
		{"oversized", func(ws *websocket.Conn) {
			send(ws, `{"type":"peer-message","payload":{"message":"`+strings.Repeat("A", 300<<10)+`"}}`)
		}, "relay sent a message larger than 262144 bytes"},
		{"not JSON", func(ws *websocket.Conn) { send(ws, "<html>") }, "relay sent a malformed message"},
		{"unknown type", func(ws *websocket.Conn) { send(ws, `{"type":"surprise"}`) }, "unknown server message type"},
		{"negative ttl", func(ws *websocket.Conn) { send(ws, `{"type":"session-closed","ttl":-5}`) }, "ttl must be a non-negative integer"},
		{"unsolicited reply", func(ws *websocket.Conn) { send(ws, `{"type":"message-sent"}`) }, "relay sent an unexpected message-sent message"},
		{"pushed error", func(ws *websocket.Conn) {
			send(ws, `{"type":"error","payload":{"code":"X","message":"boom"}}`)
		}, "relay reported an error: X: boom"},
		{"flood", func(ws *websocket.Conn) {
			for range eventQueueSize + 1 {
				send(ws, `{"type":"peer-message","payload":{"message":"AA=="}}`)
			}
		}, "relay pushed more than 32 messages without them being read"},
		{"close frame", func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "relay shutting down"))
		}, "relay closed the connection (1001: relay shutting down)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeRelay(t, func(ws *websocket.Conn) {
				tc.script(ws)
				ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				ws.ReadMessage()
			})
			c := dial(t, url, nil)
			// Wait for the connection to end without reading events, so
			// that a flood fills the queue.
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				t.Fatal("the connection did not end")
			}
			err := c.Err()
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	relayURL := relaytest.Start(t, standalone.Config{})
	httpRelay := "http" + strings.TrimPrefix(relayURL, "ws")

	_, err := Dial(ctx(t), "ws://127.0.0.1:1/", nil)
	if err == nil || err.Error() != "cannot connect to relay ws://127.0.0.1:1/: dial tcp 127.0.0.1:1: connect: connection refused" {
		t.Errorf("unreachable: %v", err)
	}
	if _, err := Dial(ctx(t), "https://example.com/", nil); err == nil || !strings.Contains(err.Error(), "must start with wss://") {
		t.Errorf("http URL: %v", err)
	}

	notWS := httptest.NewServer(http.NotFoundHandler())
	defer notWS.Close()
	_, err = Dial(ctx(t), "ws"+strings.TrimPrefix(notWS.URL, "http"), nil)
	if err == nil || !strings.Contains(err.Error(), "it answered HTTP 404 Not Found instead of a websocket upgrade (404 page not found)") {
		t.Errorf("not a websocket: %v", err)
	}

	// Redirects are followed (as rcodesign does), up to five.
	hops := 0
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/loop" {
			http.Redirect(w, r, "/loop", http.StatusFound)
			return
		}
		hops++
		http.Redirect(w, r, httpRelay, http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	c, err := Dial(ctx(t), "ws"+strings.TrimPrefix(redir.URL, "http")+"/", nil)
	if err != nil {
		t.Fatalf("redirect: %v", err)
	}
	if _, err := c.Hello(ctx(t)); err != nil || c.URL() != relayURL || hops != 1 {
		t.Errorf("after redirect: %v %s %d", err, c.URL(), hops)
	}
	c.Close()
	_, err = Dial(ctx(t), "ws"+strings.TrimPrefix(redir.URL, "http")+"/loop", nil)
	if err == nil || !strings.Contains(err.Error(), "more than 5 redirects") {
		t.Errorf("loop: %v", err)
	}

	// A TLS relay may not redirect to plain text.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, httpRelay, http.StatusFound)
	}))
	defer tlsSrv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(tlsSrv.Certificate())
	_, err = Dial(ctx(t), "wss"+strings.TrimPrefix(tlsSrv.URL, "https")+"/", &Options{TLSConfig: &tls.Config{RootCAs: pool}})
	if err == nil || !strings.Contains(err.Error(), "refusing a redirect from wss:// to unencrypted ws://") {
		t.Errorf("downgrade: %v", err)
	}

	// A silent server times out with the configured bound.
	silent := fakeSilent(t)
	start := time.Now()
	_, err = Dial(ctx(t), silent, &Options{DialTimeout: 300 * time.Millisecond})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("silent server: %v after %v", err, time.Since(start))
	}
}

// fakeSilent accepts TCP connections and never answers.
func fakeSilent(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

// TestContextCancel: a call gives up with its context, and a reply that comes
// later is not mistaken for anything else.
func TestContextCancel(t *testing.T) {
	release := make(chan struct{})
	url := fakeRelay(t, func(ws *websocket.Conn) {
		r := readRequest(t, ws)
		<-release
		send(ws, `{"request_id":"`+*r.RequestID+`","type":"greeting","payload":{"apis":[]}}`)
		send(ws, `{"type":"peer-message","payload":{"message":"AA=="}}`)
		ws.ReadMessage()
	})
	c := dial(t, url, nil)
	cctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Hello(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hello: %v", err)
	}
	close(release)
	ev, err := c.Next(ctx(t))
	if err != nil || ev.Type != wire.TypePeerMessage {
		t.Fatalf("Next after an abandoned call: %+v %v", ev, err)
	}
}

func TestGreetingWithoutAPIs(t *testing.T) {
	url := fakeRelay(t, func(ws *websocket.Conn) {
		r := readRequest(t, ws)
		send(ws, `{"request_id":"`+*r.RequestID+`","type":"greeting","payload":{"apis":["hello"]}}`)
		ws.ReadMessage()
	})
	c := dial(t, url, nil)
	if _, err := c.Hello(ctx(t)); err == nil || !strings.Contains(err.Error(), "cannot host a signing session") {
		t.Fatalf("err = %v", err)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                  "plain",
		"a\x1b]0;title\x07b":     "a?]0;title?b",
		"line\nbreak\ttab":       "line break tab",
		"bidi\u202eevil":         "bidi?evil",
		"bad utf8 \xff":          "bad utf8 \uFFFD",
		"  trimmed  ":            "trimmed",
		strings.Repeat("x", 600): strings.Repeat("x", 500) + "…",
	} {
		if got := Printable(in, 500); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveURL(t *testing.T) {
	t.Setenv(EnvURL, "")
	if got := ResolveURL(""); got != DefaultURL {
		t.Errorf("default: %s", got)
	}
	t.Setenv(EnvURL, "ws://env.example/")
	if got := ResolveURL(""); got != "ws://env.example/" {
		t.Errorf("env: %s", got)
	}
	if got := ResolveURL("wss://flag.example/"); got != "wss://flag.example/" {
		t.Errorf("explicit: %s", got)
	}
}

// TestDialCauseWithoutAddress: a failed name lookup reaches dialCause as a
// net.OpError with no address; it must read as the lookup error, not panic.
func TestDialCauseWithoutAddress(t *testing.T) {
	var err error = &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "relay.example.invalid", IsNotFound: true}}
	if got, want := dialCause(err), "dial tcp: lookup relay.example.invalid: no such host"; got != want {
		t.Errorf("dialCause = %q, want %q", got, want)
	}
	_, err = Dial(ctx(t), "ws://relay.example.invalid/", &Options{DialTimeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to relay ws://relay.example.invalid/") || !strings.Contains(err.Error(), "relay.example.invalid") {
		t.Errorf("unresolvable host: %v", err)
	}
}

// TestSendRefused: when the relay refuses a message, Send reports why the
// session closed if the relay says so. The peer said goodbye, and the relay
// refused our next message before its session-closed push reached us (a
// relay deletes the session, then tells the other member, while it handles
// our request concurrently): Send waits briefly and reports the peer's
// reason. A plain refusal, with no push after it, is reported as the
// relay's error once the grace period ends.
func TestSendRefused(t *testing.T) {
	const reason = "the signer detected tampering in transit"
	for _, tc := range []struct {
		name string
		push bool
	}{{"session-closed follows", true}, {"plain refusal", false}} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeRelay(t, func(ws *websocket.Conn) {
				r := readRequest(t, ws)
				send(ws, `{"request_id":"`+*r.RequestID+`","type":"error","payload":{"code":"SESSION_NOT_FOUND","message":"no such session (it may have been closed)"}}`)
				if tc.push {
					time.Sleep(300 * time.Millisecond)
					send(ws, `{"request_id":null,"type":"session-closed","payload":{"reason":"`+reason+`"}}`)
				}
				ws.ReadMessage()
			})
			c := dial(t, url, nil)
			key := make([]byte, 32)
			ch, err := channel.New(key, key)
			if err != nil {
				t.Fatal(err)
			}
			err = NewPeer(c, "sid", ch).Send(ctx(t), &peer.Ping{})
			var closed *SessionClosedError
			var re *RelayError
			switch {
			case tc.push && (!errors.As(err, &closed) || closed.Reason != reason):
				t.Fatalf("Send: %v, want the peer's session-closed reason", err)
			case !tc.push && (!errors.As(err, &re) || re.Code != "SESSION_NOT_FOUND"):
				t.Fatalf("Send: %v, want the relay's SESSION_NOT_FOUND", err)
			}
		})
	}
}
