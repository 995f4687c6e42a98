package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gorilla/websocket"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	tmp := urlFile + ".tmp"
	if err := os.WriteFile(tmp, []byte("ws://"+l.Addr().String()+"/\n"), 0o644); err != nil || os.Rename(tmp, urlFile) != nil {
		fmt.Fprintln(os.Stderr, "echo: writing url file failed")
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
