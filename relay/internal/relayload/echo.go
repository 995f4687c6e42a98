package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/protocol/wire"
)

// runEcho is the baseline: the plainest gorilla/websocket echo server (one
// goroutine per connection, ReadMessage then WriteMessage), as in gorilla's
// own example. It writes its URL to urlFile and serves until interrupted.
func runEcho(urlFile string) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
	serveBaseline(urlFile, h)
}

// serveBaseline serves h on a loopback port, writes its URL to urlFile and
// serves until interrupted.
func serveBaseline(urlFile string, h http.Handler) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	tmp := urlFile + ".tmp"
	if err := os.WriteFile(tmp, []byte("ws://"+l.Addr().String()+"/\n"), 0o644); err != nil || os.Rename(tmp, urlFile) != nil {
		fmt.Fprintln(os.Stderr, "baseline: writing url file failed")
		os.Exit(1)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		os.Exit(0)
	}()
	_ = http.Serve(l, h)
}

// runForwarder is the second baseline: the least any acknowledging relay
// must do. Clients pair up by sending "pair ID" as their first message;
// after that every message from one peer is answered by writing a prepared
// peer-message of the relay's size to the other, then a prepared
// message-sent to the sender, from the reading goroutine, as the relay
// does. No parsing, no store, no encoding: relay/forwarder is the cost of
// the relay's own work, forwarder/echo the cost of the second write.
func runForwarder(urlFile string, size int) {
	fwd, ack := forwardFrames(size)
	var mu sync.Mutex
	waiting := map[string]*lockedConn{}
	peers := map[*lockedConn]*lockedConn{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_, hello, err := ws.ReadMessage()
		id, ok := strings.CutPrefix(string(hello), "pair ")
		if err != nil || !ok {
			return
		}
		me := &lockedConn{ws: ws}
		mu.Lock()
		if other := waiting[id]; other != nil {
			delete(waiting, id)
			peers[me], peers[other] = other, me
		} else {
			waiting[id] = me
		}
		mu.Unlock()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			mu.Lock()
			peer := peers[me]
			mu.Unlock()
			if peer == nil || peer.write(fwd) != nil || me.write(ack) != nil {
				return
			}
		}
	})
	serveBaseline(urlFile, h)
}

// lockedConn serializes writes to a websocket: both peers' readers write to
// it (the relay has an ordered writer per connection for the same reason).
type lockedConn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func (c *lockedConn) write(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// forwardFrames returns the peer-message and message-sent the relay sends
// for a send-message carrying size bytes.
func forwardFrames(size int) (fwd, ack []byte) {
	ttl, rid := uint64(599), "m"
	fwd, _ = wire.EncodeServerMessage(nil, wire.TypePeerMessage, &ttl, wire.PeerMessagePayload{Message: strings.Repeat("A", size)})
	ack, _ = wire.EncodeServerMessage(&rid, wire.TypeMessageSent, &ttl, nil)
	return fwd, ack
}
