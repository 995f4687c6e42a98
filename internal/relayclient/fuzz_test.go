package relayclient

import (
	"testing"

	"github.com/farsign/farsign/protocol/wire"
)

// FuzzDispatch feeds arbitrary relay messages to the sorting logic, with calls
// pending: it must never panic, must deliver every message to at most one
// place, and must never block.
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"r1","type":"greeting","payload":{"apis":["create-session","join-session","send-message","goodbye"],"motd":null}}`,
		`{"request_id":null,"type":"session-joined","ttl":598,"payload":{"context":"WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="}}`,
		`{"request_id":"other","type":"peer-message","payload":{"message":"3sIbyIjO"},"ttl":1700000600}`,
		`{"request_id":"r2","type":"message-sent","payload":1700000600}`,
		`{"request_id":null,"type":"session-closed","payload":{"reason":"peer disconnected"}}`,
		`{"request_id":"r3","type":"session-closed"}`,
		`{"request_id":null,"type":"error","payload":{"code":"MESSAGE_TOO_LARGE","message":"x"}}`,
		`{"type":"session-created","ttl":600}`,
		`{"type":"peer-message","payload":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := wire.ParseServerMessage(data)
		if err != nil {
			return
		}
		c := &Client{events: make(chan Event, eventQueueSize)}
		calls := []*call{
			{id: "r1", api: wire.APIHello, want: wire.TypeGreeting, reply: make(chan wire.ServerMessage, 1)},
			{id: "r2", api: wire.APISendMessage, want: wire.TypeMessageSent, reply: make(chan wire.ServerMessage, 1)},
			{id: "r3", api: wire.APIGoodbye, want: wire.TypeSessionClosed, reply: make(chan wire.ServerMessage, 1)},
		}
		c.pending = append(c.pending, calls...)
		err = c.dispatch(m)
		delivered := len(c.events)
		for _, cl := range calls {
			delivered += len(cl.reply)
		}
		if err == nil && delivered != 1 {
			t.Fatalf("message delivered %d times", delivered)
		}
		if err != nil && delivered != 0 {
			t.Fatalf("message both rejected (%v) and delivered", err)
		}
		if m.Type == wire.TypePeerMessage && err == nil && len(c.events) != 1 {
			t.Fatal("a peer message was taken for a reply")
		}
	})
}
