package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
)

type nopPoster struct{}

func (nopPoster) Post(context.Context, string, []byte) error { return nil }
func (nopPoster) Close(context.Context, string) error        { return nil }

// BenchmarkHandlerSendMessage is the core's CPU cost of forwarding one
// 512-byte message (decode, membership check in the memory store, ack and
// forward encoded), with a Poster that drops everything. The baseline is
// wire.ParseRequest alone on the same bytes: the part no relay can skip.
func BenchmarkHandlerSendMessage(b *testing.B) {
	ctx := context.Background()
	m, _ := wire.EncodeRequest("m", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: strings.Repeat("A", 512)})
	b.Run("handler", func(b *testing.B) {
		h, err := relay.New(relay.Config{Store: memstore.New(), Poster: nopPoster{}, MessageRate: -1})
		if err != nil {
			b.Fatal(err)
		}
		c, _ := wire.EncodeRequest("c", wire.APICreateSession, wire.CreateSession{SessionID: sid})
		j, _ := wire.EncodeRequest("j", wire.APIJoinSession, wire.JoinSession{SessionID: sid})
		if h.Message(ctx, "a", c) != nil || h.Message(ctx, "b", j) != nil {
			b.Fatal("setup failed")
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := h.Message(ctx, "a", m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.ParseRequest(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
