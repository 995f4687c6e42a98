package standalone_test

import (
	"bytes"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/standalone"
)

// startEcho runs the baseline: a bare gorilla/websocket echo server, as in
// gorilla's own example.
func startEcho(b *testing.B) string {
	up := websocket.Upgrader{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := ws.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String() + "/"
}

// startForwarder runs the second baseline: the least any acknowledging relay
// must do over gorilla/websocket. (Only the first connection sends, so
// writes need no lock here.) It pairs the first two connections and,
// for each message read from one, writes a prepared peer-message of the
// same size as the relay's to the other, then a prepared message-sent ack
// to the sender, from the reading goroutine, as the relay does. No parsing,
// no store, no encoding: what separates the relay from it is the relay's own
// work, and what separates it from the echo server is the second write.
func startForwarder(b *testing.B, payload string) string {
	up := websocket.Upgrader{}
	ttl := uint64(599)
	rid := "m"
	fwd, _ := wire.EncodeServerMessage(nil, wire.TypePeerMessage, &ttl, wire.PeerMessagePayload{Message: payload})
	ack, _ := wire.EncodeServerMessage(&rid, wire.TypeMessageSent, &ttl, nil)
	var mu sync.Mutex
	var conns []*websocket.Conn
	paired := make(chan struct{}) // closed once two connections are in
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		mu.Lock()
		me := len(conns)
		conns = append(conns, ws)
		if len(conns) == 2 {
			close(paired)
		}
		mu.Unlock()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			<-paired
			mu.Lock()
			peer := conns[me^1]
			mu.Unlock()
			if peer.WriteMessage(websocket.TextMessage, fwd) != nil || ws.WriteMessage(websocket.TextMessage, ack) != nil {
				return
			}
		}
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "ws://" + l.Addr().String() + "/"
}

func benchDial(b *testing.B, url string) *websocket.Conn {
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	b.Cleanup(func() { ws.Close() })
	return ws
}

func readType(b *testing.B, ws *websocket.Conn, typ string) {
	_, msg, err := ws.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	if !bytes.Contains(msg, []byte(`"type":"`+typ+`"`)) {
		b.Fatalf("got %s, want %s", msg, typ)
	}
}

// BenchmarkRelayVsEcho measures, in turn in the same loop so that all three
// see the same machine, one pass client -> server -> client through:
//
//   - echo: a bare gorilla echo server (the baseline docs/benchmarks.md
//     tracks: target p50 relay/echo ≤ 1.3);
//   - floor: startForwarder, a gorilla forwarder that writes the same forward
//     and ack frames as the relay but does nothing else;
//   - relay: the standalone relay, send-message from A until B has the
//     peer-message (A's ack is read afterwards, untimed).
//
// It reports each p50 and the ratios: relay/echo, floor/echo (what the
// second write costs on this machine) and relay/floor (what the relay's own
// work costs).
func BenchmarkRelayVsEcho(b *testing.B) {
	payload := strings.Repeat("A", 512)
	msg, _ := wire.EncodeRequest("m", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: payload})

	echo := benchDial(b, startEcho(b))
	furl := startForwarder(b, payload)
	fa := benchDial(b, furl)
	fb := benchDial(b, furl)
	// The forwarder pairs connections in the order it accepted them.
	if err := fa.WriteMessage(websocket.TextMessage, msg); err != nil {
		b.Fatal(err)
	}
	readType(b, fb, wire.TypePeerMessage)
	readType(b, fa, wire.TypeMessageSent)

	srv, err := standalone.New(standalone.Config{Relay: relay.Config{MessageRate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	url := "ws://" + l.Addr().String() + "/"
	a, p := benchDial(b, url), benchDial(b, url)
	create, _ := wire.EncodeRequest("c", wire.APICreateSession, wire.CreateSession{SessionID: sid})
	join, _ := wire.EncodeRequest("j", wire.APIJoinSession, wire.JoinSession{SessionID: sid})
	a.WriteMessage(websocket.TextMessage, create)
	readType(b, a, wire.TypeSessionCreated)
	p.WriteMessage(websocket.TextMessage, join)
	readType(b, p, wire.TypeSessionJoined)
	readType(b, a, wire.TypeSessionJoined)

	pass := func(from, to *websocket.Conn) time.Duration {
		t0 := time.Now()
		if err := from.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		readType(b, to, wire.TypePeerMessage)
		d := time.Since(t0)
		readType(b, from, wire.TypeMessageSent)
		return d
	}
	var te, tf, tr []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := echo.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := echo.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		te = append(te, time.Since(t0))
		tf = append(tf, pass(fa, fb))
		tr = append(tr, pass(a, p))
	}
	q := func(s []time.Duration, f float64) float64 {
		slices.Sort(s)
		return float64(s[int(f*float64(len(s)-1))].Nanoseconds())
	}
	e50, f50, r50 := q(te, 0.5), q(tf, 0.5), q(tr, 0.5)
	b.ReportMetric(e50, "echo-p50-ns")
	b.ReportMetric(f50, "floor-p50-ns")
	b.ReportMetric(r50, "relay-p50-ns")
	b.ReportMetric(r50/e50, "p50-relay/echo")
	b.ReportMetric(f50/e50, "p50-floor/echo")
	b.ReportMetric(r50/f50, "p50-relay/floor")
	b.ReportMetric(q(tr, 0.99)/q(te, 0.99), "p99-relay/echo")
}
