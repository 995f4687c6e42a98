package session_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"testing"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/standalone"
)

// Benchmarks for what remote signing costs over local signing, on loopback
// (so they measure the software, not a network). Compare in one run:
//
//	go test -run XXX -bench . -benchtime 2s ./signer/session/
//
// BenchmarkSignLocal is the baseline for BenchmarkSignRemote (one signature
// through the relay, described, policy-checked, verified on both ends);
// BenchmarkDialHello is the baseline for BenchmarkSessionSetup (create, join,
// SPAKE2, ping/pong, certificate).

func BenchmarkSignLocal(b *testing.B) {
	_, ecK, _ := keys(b)
	msg := signedAttributes(b, 1)
	for b.Loop() {
		if _, err := crypto.SignMessage(ecK, rand.Reader, msg, crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRemote(b *testing.B) {
	_, ecK, _ := keys(b)
	url := relaytest.Start(b, unlimited)
	p := start(b, pairOptions{key: ecK, secret: "bench", relayURL: url})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer signer.Close()
	msg := signedAttributes(b, 1)
	for b.Loop() {
		if _, err := crypto.SignMessage(signer, rand.Reader, msg, crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDialHello(b *testing.B) {
	url := relaytest.Start(b, unlimited)
	ctx := context.Background()
	for b.Loop() {
		c, err := relayclient.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Hello(ctx); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkSessionSetup(b *testing.B) {
	_, ecK, _ := keys(b)
	url := relaytest.Start(b, unlimited)
	for b.Loop() {
		p := start(b, pairOptions{key: ecK, secret: "bench", relayURL: url})
		signer, err := p.sess.Wait(p.ctx)
		if err != nil {
			b.Fatal(err)
		}
		signer.Close()
		if r := p.signerResult(); r.err != nil {
			b.Fatal(r.err)
		}
	}
}

// unlimited is a relay without the per-connection rate limit, which a
// benchmark exceeds by design.
var unlimited = standalone.Config{Relay: relay.Config{MessageRate: -1}}
