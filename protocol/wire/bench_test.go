package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkParseSendMessage decodes a send-message with a 512-byte message,
// with this package (wire: decoded to a string, as a client would;
// wire-encoded: kept encoded, as the relay does) and, as the baseline, with
// encoding/json into structs (without the strictness checks, so the
// baseline is flattering).
func BenchmarkParseSendMessage(b *testing.B) {
	msg, _ := EncodeRequest("7c0e1b6a-7f43-4c8e-9f5e-0b5b8d1c2e3f", APISendMessage,
		SendMessage{SessionID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", Message: strings.Repeat("A", 512)})
	b.Run("wire", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			r, err := ParseRequest(msg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.SendMessage(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire-encoded", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			r, err := ParseRequest(msg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.SendMessageEncoded(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			var env struct {
				RequestID *string         `json:"request_id"`
				API       string          `json:"api"`
				Payload   json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(msg, &env); err != nil {
				b.Fatal(err)
			}
			var p SendMessage
			if err := json.Unmarshal(env.Payload, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncodePeerMessage encodes the forwarded message, by hand (wire:
// from the decoded string; wire-encoded: from the message kept encoded, as
// the relay does) and with encoding/json as the baseline.
func BenchmarkEncodePeerMessage(b *testing.B) {
	ttl := uint64(598)
	p := PeerMessagePayload{Message: strings.Repeat("A", 512)}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeServerMessage(nil, TypePeerMessage, &ttl, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire-encoded", func(b *testing.B) {
		r, err := ParseRequest([]byte(`{"request_id":"m","api":"send-message","payload":{"session_id":"s","message":"` + p.Message + `"}}`))
		if err != nil {
			b.Fatal(err)
		}
		ep, err := r.SendMessageEncoded()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeServerMessage(nil, TypePeerMessage, &ttl, EncodedPeerMessagePayload{Message: ep.Message}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshal(struct {
				RequestID *string `json:"request_id"`
				Type      string  `json:"type"`
				TTL       *uint64 `json:"ttl,omitempty"`
				Payload   any     `json:"payload,omitempty"`
			}{nil, TypePeerMessage, &ttl, p}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
