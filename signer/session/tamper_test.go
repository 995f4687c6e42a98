package session_test

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay/standalone"
)

// The proxy numbers connections in accept order: the initiator (0) connects
// and creates the session before the signer (1) can join it. Peer messages
// to the initiator are the signer's ping, pong, certificate, signatures; to
// the signer the initiator's ping, pong, certificate request, sign requests.
const (
	initiatorConn = 0
	signerConn    = 1
)

// onPeerMessage returns a Tamper that applies fn to the n-th peer message
// delivered to conn and forwards everything else.
func onPeerMessage(conn, n int, fn func(f relaytest.Frame, msg string) [][]byte) relaytest.Tamper {
	var c relaytest.Counter
	return func(f relaytest.Frame) [][]byte {
		msg, ok := relaytest.PeerMessage(f)
		if !ok || f.Conn != conn || c.Next(conn) != n {
			return [][]byte{f.Data}
		}
		return fn(f, msg)
	}
}

func proxied(t *testing.T, tamper relaytest.Tamper) string {
	return relaytest.NewProxy(t, relaytest.Start(t, standalone.Config{}), tamper).URL
}

// TestTamperedSignature: a relay that alters the signer's answer is caught by
// the initiator, which refuses it and ends the session.
func TestTamperedSignature(t *testing.T) {
	rsaK, _, _ := keys(t)
	url := proxied(t, onPeerMessage(initiatorConn, 3, func(f relaytest.Frame, msg string) [][]byte {
		return [][]byte{relaytest.WithPeerMessage(f, relaytest.FlipBit(msg))}
	}))
	p := start(t, pairOptions{key: rsaK, secret: "s3cret", relayURL: url})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256)
	if !errors.Is(err, relayclient.ErrTampered) || !strings.Contains(err.Error(), "failed authentication: it was altered in transit") {
		t.Fatalf("initiator error = %v", err)
	}
	if r := p.signerResult(); r.err != nil || r.res.Reason != "the initiator aborted the session" {
		t.Fatalf("signer: %+v %v", r.res, r.err)
	}
}

// TestReplayedRequest: a relay that delivers the certificate request twice is
// caught by the signer.
func TestReplayedRequest(t *testing.T) {
	rsaK, _, _ := keys(t)
	url := proxied(t, onPeerMessage(signerConn, 2, func(f relaytest.Frame, _ string) [][]byte {
		return [][]byte{f.Data, f.Data}
	}))
	p := start(t, pairOptions{key: rsaK, publicKey: rsaK, relayURL: url})
	// The initiator fails at once, whether it had the certificate yet or not.
	signer, err := p.sess.Wait(p.ctx)
	if err == nil {
		_, err = crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256)
	}
	if err == nil || !strings.Contains(err.Error(), "the remote signer left the session (the signer detected tampering in transit)") {
		t.Fatalf("initiator error = %v", err)
	}
	r := p.signerResult()
	if !errors.Is(r.err, relayclient.ErrTampered) || !strings.Contains(r.err.Error(), "replayed in transit") {
		t.Fatalf("signer error = %v", r.err)
	}
	if r.res.Signatures != 0 {
		t.Errorf("signed %d messages", r.res.Signatures)
	}
}

// TestDroppedMessage: a relay that drops the initiator's pong makes the next
// message arrive under the wrong counter; the signer notices.
func TestDroppedMessage(t *testing.T) {
	_, ecK, _ := keys(t)
	url := proxied(t, onPeerMessage(signerConn, 1, func(relaytest.Frame, string) [][]byte { return nil }))
	p := start(t, pairOptions{key: ecK, secret: "s3cret", relayURL: url})
	if _, err := p.sess.Wait(p.ctx); err == nil || !strings.Contains(err.Error(), "the remote signer left the session (the signer detected tampering in transit)") {
		t.Fatalf("initiator error = %v", err)
	}
	r := p.signerResult()
	if !errors.Is(r.err, relayclient.ErrTampered) || !strings.Contains(r.err.Error(), "dropped or reordered in transit") {
		t.Fatalf("signer error = %v", r.err)
	}
}

// TestSubstitutedJoinContext: a relay that replaces the signer's SPAKE2
// message with its own cannot make the two sides agree on a key (it does not
// know the secret): both fail on the first message.
func TestSubstitutedJoinContext(t *testing.T) {
	rsaK, _, _ := keys(t)
	url := proxied(t, func(f relaytest.Frame) [][]byte {
		if f.Dir != relaytest.ToClient || f.Conn != initiatorConn {
			return [][]byte{f.Data}
		}
		m, err := wire.ParseServerMessage(f.Data)
		if err != nil || m.Type != wire.TypeSessionJoined {
			return [][]byte{f.Data}
		}
		// A well-formed SPAKE2 "B" message of the relay's own making.
		fake := base64.StdEncoding.EncodeToString(append([]byte{'B'}, relaytestPoint()...))
		out, _ := wire.EncodeServerMessage(m.RequestID, m.Type, m.TTL, wire.SessionJoinedPayload{Context: &fake})
		return [][]byte{out}
	})
	p := start(t, pairOptions{key: rsaK, secret: "s3cret", relayURL: url})
	_, err := p.sess.Wait(p.ctx)
	if err == nil || !strings.Contains(err.Error(), "wrong shared secret or wrong key") {
		t.Fatalf("initiator error = %v", err)
	}
	r := p.signerResult()
	if r.err == nil || !strings.Contains(r.err.Error(), "wrong shared secret or wrong key") {
		t.Fatalf("signer error = %v", r.err)
	}
}

// relaytestPoint is the Ed25519 base point: a valid prime-order point.
func relaytestPoint() []byte {
	b, _ := base64.StdEncoding.DecodeString("WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
	return b
}
