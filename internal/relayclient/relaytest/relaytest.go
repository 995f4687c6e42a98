// Package relaytest helps test remote-signing peers over real websockets: it
// starts the farsign relay in-process, and it puts a man-in-the-middle proxy in
// front of any relay that can tamper with, replay or drop individual frames, to
// show that the peers detect what a hostile relay or network does.
package relaytest

import (
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay/standalone"
)

// Start runs an in-process farsign relay on a loopback port until the test
// ends, and returns its ws:// URL.
func Start(t testing.TB, cfg standalone.Config) string {
	t.Helper()
	_, url := StartServer(t, cfg)
	return url
}

// StartServer is Start for tests that also drive the server itself (shutdown,
// sweeps, metrics).
func StartServer(t testing.TB, cfg standalone.Config) (*standalone.Server, string) {
	t.Helper()
	srv, err := standalone.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("relay Serve: %v", err)
		}
	})
	return srv, "ws://" + l.Addr().String() + "/"
}

// Direction is which way a frame travels through the proxy.
type Direction int

const (
	// ToRelay is a frame from a client to the relay.
	ToRelay Direction = iota
	// ToClient is a frame from the relay to a client.
	ToClient
)

// Frame is one websocket text message passing through the proxy.
type Frame struct {
	// Conn numbers the proxied connections from 0 in the order they were
	// accepted (an initiator connects before its signer).
	Conn int
	Dir  Direction
	// Data is the message.
	Data []byte
}

// Tamper decides what the proxy forwards in place of a frame: nil drops it,
// one element forwards it (possibly altered), two identical elements replay
// it. It is called from one goroutine per connection and direction, so it
// must be safe for concurrent use.
type Tamper func(f Frame) [][]byte

// Proxy is a man-in-the-middle websocket proxy.
type Proxy struct {
	URL string

	mu    sync.Mutex
	conns int
}

// NewProxy starts a proxy in front of upstream (a ws:// URL) until the test
// ends. tamper may be nil to forward everything unchanged.
func NewProxy(t testing.TB, upstream string, tamper Tamper) *Proxy {
	t.Helper()
	if tamper == nil {
		tamper = func(f Frame) [][]byte { return [][]byte{f.Data} }
	}
	p := &Proxy{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var wg sync.WaitGroup
	var open sync.Map // stop func of every live proxied connection
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		relay, _, err := websocket.DefaultDialer.Dial(upstream, nil)
		if err != nil {
			client.Close()
			return
		}
		p.mu.Lock()
		n := p.conns
		p.conns++
		p.mu.Unlock()
		wg.Add(2)
		done := make(chan struct{})
		var once sync.Once
		stop := func() { once.Do(func() { close(done); client.Close(); relay.Close() }) }
		open.Store(&once, stop)
		defer open.Delete(&once)
		pump := func(from, to *websocket.Conn, dir Direction) {
			defer wg.Done()
			defer stop()
			for {
				typ, data, err := from.ReadMessage()
				if err != nil {
					return
				}
				if typ != websocket.TextMessage {
					continue
				}
				for _, out := range tamper(Frame{Conn: n, Dir: dir, Data: data}) {
					to.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if err := to.WriteMessage(websocket.TextMessage, out); err != nil {
						return
					}
				}
			}
		}
		go pump(client, relay, ToRelay)
		go pump(relay, client, ToClient)
		<-done
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close() // does not close hijacked (websocket) connections:
		open.Range(func(_, stop any) bool { stop.(func())(); return true })
		wg.Wait()
	})
	p.URL = "ws://" + l.Addr().String() + "/"
	return p
}

// PeerMessage reports whether f is a peer-message delivered by the relay,
// and returns its base64 ciphertext.
func PeerMessage(f Frame) (string, bool) {
	if f.Dir != ToClient {
		return "", false
	}
	m, err := wire.ParseServerMessage(f.Data)
	if err != nil || m.Type != wire.TypePeerMessage {
		return "", false
	}
	p, err := m.PeerMessage()
	if err != nil {
		return "", false
	}
	return p.Message, true
}

// WithPeerMessage returns a peer-message frame carrying message instead.
func WithPeerMessage(f Frame, message string) []byte {
	m, err := wire.ParseServerMessage(f.Data)
	if err != nil {
		panic(err)
	}
	out, err := wire.EncodeServerMessage(m.RequestID, m.Type, m.TTL, wire.PeerMessagePayload{Message: message})
	if err != nil {
		panic(err)
	}
	return out
}

// FlipBit returns the base64 ciphertext with one bit of its last byte (the
// authentication tag) flipped.
func FlipBit(message string) string {
	b, err := base64.StdEncoding.DecodeString(message)
	if err != nil || len(b) == 0 {
		return strings.ToUpper(message)
	}
	b[len(b)-1] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

// Counter counts matching frames per connection, so a Tamper can act on, say,
// the second peer message delivered to connection 0. It is safe for
// concurrent use.
type Counter struct {
	mu sync.Mutex
	n  map[int]int
}

// Next returns how many matching frames conn had before this one (0 for the
// first).
func (c *Counter) Next(conn int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	v := c.n[conn]
	c.n[conn]++
	return v
}
