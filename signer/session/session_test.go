package session_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"github.com/farsign/farsign/internal/testenv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/standalone"
	"github.com/farsign/farsign/signer/keysource"
	"github.com/farsign/farsign/signer/session"
)

// TestSignatures runs whole sessions, both schemes and both key types: the
// initiator gets several signatures, each verifies against the certificate,
// a full CMS made through cms.Sign verifies, and goodbye ends the signer
// cleanly.
func TestSignatures(t *testing.T) {
	rsaK, ecK, _ := keys(t)
	for _, tc := range []struct {
		name string
		o    pairOptions
	}{
		{"publickey0-rsa", pairOptions{key: rsaK, publicKey: rsaK}},
		{"sharedsecret0-rsa", pairOptions{key: rsaK, secret: "correct horse battery staple"}},
		{"sharedsecret0-ecdsa", pairOptions{key: ecK, secret: "correct horse battery staple"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, tc.o)
			signer, err := p.sess.Wait(p.ctx)
			if err != nil {
				t.Fatalf("Wait: %v\nsigner log:\n%s", err, p.signerLog)
			}
			if got, want := signer.Certificate().Raw, tc.o.key.Certificate().Raw; string(got) != string(want) {
				t.Fatal("initiator received a different certificate than the signer's")
			}
			for i := range 3 {
				attrs := signedAttributes(t, i)
				sig, err := crypto.SignMessage(signer, rand.Reader, attrs, crypto.SHA256)
				if err != nil {
					t.Fatalf("signature %d: %v", i, err)
				}
				if err := cms.CheckSignature(tc.o.key.Certificate(), attrs, sig); err != nil {
					t.Fatalf("signature %d does not verify: %v", i, err)
				}
			}
			// The Mach-O engine's path: cms.Sign through the remote signer.
			attrs := signedAttributes(t, 99)
			der, err := cms.Sign(p.ctx, attrs, signer, signer.Certificate(), signer.Chain(), nil)
			if err != nil {
				t.Fatalf("cms.Sign: %v", err)
			}
			sd, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := sd.Verify([]byte("a CodeDirectory blob, number 99")); err != nil {
				t.Fatalf("CMS made with the remote signer does not verify: %v", err)
			}
			if n := signer.Signatures(); n != 4 {
				t.Errorf("Signatures() = %d, want 4", n)
			}
			if err := signer.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			r := p.signerResult()
			if r.err != nil {
				t.Fatalf("signer: %v\n%s", r.err, p.signerLog)
			}
			if r.res.Signatures != 4 || r.res.Reason != remote.ReasonCompleted {
				t.Errorf("signer result = %+v", r.res)
			}
			mustContain(t, "initiator log", p.initLog.String(),
				"connecting to ws://", "session successfully created on server",
				"signer joined session; deriving shared encryption key",
				"requesting signing certificate info from signer",
				"remote signer will sign with certificate: Developer ID Application:",
				"sending signing request to remote signer", "received signature from remote signer",
				"relay server confirmed session termination")
			mustContain(t, "signer log", p.signerLog.String(),
				"joining session...", "successfully joined signing session "+p.sess.SessionID(),
				"verifying encrypted communications with peer",
				"CMS signed attributes of a code signature",
				"signing time: 2025-01-02T03:04:05Z",
				"CodeDirectory 0 hash (SHA-256):", "CodeDirectory 1 hash (SHA-1):",
				"relay acknowledged signature message received",
				"signing session closed; reason: signing operations completed")
		})
	}
}

// TestWrongSharedSecret: both sides fail at the first message, with the same
// clear explanation, and nothing is signed.
func TestWrongSharedSecret(t *testing.T) {
	rsaK, _, _ := keys(t)
	p := start(t, pairOptions{key: rsaK, secret: "right secret", signerSec: "wrong secret"})
	_, err := p.sess.Wait(p.ctx)
	if err == nil || !strings.Contains(err.Error(), "could not decrypt the signer's first message: wrong shared secret or wrong key") {
		t.Fatalf("initiator error = %v", err)
	}
	r := p.signerResult()
	if r.err == nil || r.err.Error() != "could not decrypt the peer's first message: wrong shared secret or wrong key" {
		t.Fatalf("signer error = %v", r.err)
	}
	if strings.Contains(p.signerLog.String(), "signing request") {
		t.Error("the signer signed something")
	}
}

// TestWrongKey: a publickey0 join string for another key fails on the signer
// before it connects, naming both fingerprints; the initiator gives up at its
// join timeout.
func TestWrongKey(t *testing.T) {
	rsaK, _, other := keys(t)
	p := start(t, pairOptions{key: rsaK, publicKey: other, joinTimeout: 500 * time.Millisecond})
	r := p.signerResult()
	want := "this join string was encrypted to a different key: SPKI sha256 " +
		handshake.SPKIFingerprint(other.Certificate().RawSubjectPublicKeyInfo) + ", your key is " +
		handshake.SPKIFingerprint(rsaK.Certificate().RawSubjectPublicKeyInfo)
	if r.err == nil || r.err.Error() != want {
		t.Fatalf("signer error = %v\nwant %s", r.err, want)
	}
	if strings.Contains(p.signerLog.String(), "connecting to") {
		t.Error("the signer connected to the relay with a join string it cannot read")
	}
	_, err := p.sess.Wait(p.ctx)
	if err == nil || !strings.Contains(err.Error(), "no signer joined the session within 500ms") {
		t.Fatalf("initiator error = %v", err)
	}
}

// TestECDSAKeyCannotJoinPublicKey0 shows the error for a key that cannot
// decrypt.
func TestECDSAKeyCannotJoinPublicKey0(t *testing.T) {
	rsaK, ecK, _ := keys(t)
	init, err := handshake.NewPublicKey0(rsaK.Certificate().RawSubjectPublicKeyInfo, "ws://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	js, err := sjs.Parse(init.Line())
	if err != nil {
		t.Fatal(err)
	}
	_, err = session.Run(context.Background(), js, session.Config{Key: ecK})
	if !errors.Is(err, keysource.ErrCannotDecrypt) {
		t.Fatalf("err = %v, want ErrCannotDecrypt", err)
	}
}

// TestPolicyRefusesArbitraryMessages: by default only CMS signed attributes
// are signed; the refusal ends the session and the initiator learns why.
func TestPolicyRefusesArbitraryMessages(t *testing.T) {
	rsaK, _, _ := keys(t)
	p := start(t, pairOptions{key: rsaK, secret: "s3cret"})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = crypto.SignMessage(signer, rand.Reader, []byte("GET / HTTP/1.1 challenge"), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "the remote signer left the session (the signer refused a request: it is not a DER SET of CMS signed attributes") {
		t.Fatalf("initiator error = %v", err)
	}
	r := p.signerResult()
	var refused *session.RefusedError
	if !errors.As(r.err, &refused) || refused.N != 1 {
		t.Fatalf("signer error = %v, want a refusal of request 1", r.err)
	}
	if r.res.Signatures != 0 {
		t.Errorf("signed %d messages", r.res.Signatures)
	}
	mustContain(t, "signer log", p.signerLog.String(), "opaque data, 24 bytes (not CMS signed attributes")
	// The session is over: further requests fail at once.
	if _, err := crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256); err == nil {
		t.Error("signing after the session ended succeeded")
	}
}

func TestAllowArbitraryMessages(t *testing.T) {
	_, ecK, _ := keys(t)
	p := start(t, pairOptions{key: ecK, secret: "s3cret", config: func(c *session.Config) { c.AllowArbitraryMessages = true }})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("anything at all")
	sig, err := crypto.SignMessage(signer, rand.Reader, msg, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.CheckSignature(ecK.Certificate(), msg, sig); err != nil {
		t.Fatal(err)
	}
	signer.Close()
	if r := p.signerResult(); r.err != nil || r.res.Signatures != 1 {
		t.Fatalf("signer: %+v %v", r.res, r.err)
	}
}

// TestConfirm: the confirmation callback sees each request's description;
// a "no" refuses and ends the session.
func TestConfirm(t *testing.T) {
	rsaK, _, _ := keys(t)
	var asked atomic.Int32
	p := start(t, pairOptions{key: rsaK, secret: "s3cret", config: func(c *session.Config) {
		c.Confirm = func(_ context.Context, n int, d session.Description) (bool, error) {
			asked.Add(1)
			if d.Attributes == nil {
				t.Errorf("request %d: no parsed attributes", n)
			}
			return n == 1, nil // yes to the first, no to the second
		}
	}})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256); err != nil {
		t.Fatalf("confirmed request failed: %v", err)
	}
	_, err = crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 2), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "declined by the user") {
		t.Fatalf("declined request: err = %v", err)
	}
	r := p.signerResult()
	var refused *session.RefusedError
	if !errors.As(r.err, &refused) || refused.N != 2 || r.res.Signatures != 1 {
		t.Fatalf("signer: %+v %v", r.res, r.err)
	}
	if asked.Load() != 2 {
		t.Errorf("asked %d times", asked.Load())
	}
}

func TestMaxSignatures(t *testing.T) {
	rsaK, _, _ := keys(t)
	p := start(t, pairOptions{key: rsaK, secret: "s3cret", config: func(c *session.Config) { c.MaxSignatures = 2 }})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := crypto.SignMessage(signer, rand.Reader, signedAttributes(t, i), crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	_, err = crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 3), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "the limit of 2 signatures for this session is reached") {
		t.Fatalf("third signature: err = %v", err)
	}
	if r := p.signerResult(); r.err == nil || r.res.Signatures != 2 {
		t.Fatalf("signer: %+v %v", r.res, r.err)
	}
}

// TestSignerLeaves: a signer that stops mid-session makes the next request fail
// at once with the reason, not hang.
func TestSignerLeaves(t *testing.T) {
	rsaK, _, _ := keys(t)
	sctx, stopSigner := context.WithCancel(context.Background())
	defer stopSigner()
	p := start(t, pairOptions{key: rsaK, secret: "s3cret", signerCtx: sctx})
	signer, err := p.sess.Wait(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopSigner()
	if r := p.signerResult(); r.err == nil {
		t.Fatal("interrupted signer reported success")
	}
	_, err = crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "the remote signer left the session (the signer was interrupted)") {
		t.Fatalf("err = %v", err)
	}
}

// TestInitiatorInterrupted: cancelling the initiator's context says goodbye,
// and the signer ends with that reason.
func TestInitiatorInterrupted(t *testing.T) {
	rsaK, _, _ := keys(t)
	relayURL := relaytest.Start(t, standalone.Config{})
	ictx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	log := &testenv.Buffer{}
	sess, err := remote.Start(ictx, remote.Config{RelayURL: relayURL, SharedSecret: []byte("s"), Log: log, StepSummary: "-"})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := sjs.Parse(sess.JoinLine())
	done := make(chan result, 1)
	slog := &testenv.Buffer{}
	go func() {
		res, err := session.Run(context.Background(), js, session.Config{Key: rsaK, SharedSecret: []byte("s"), RelayURL: relayURL, Log: slog})
		done <- result{res, err}
	}()
	signer, err := sess.Wait(ictx)
	if err != nil {
		t.Fatal(err)
	}
	interrupt()
	r := <-done
	if r.err != nil || r.res.Reason != remote.ReasonInterrupted {
		t.Fatalf("signer: %+v %v", r.res, r.err)
	}
	if _, err := crypto.SignMessage(signer, rand.Reader, signedAttributes(t, 1), crypto.SHA256); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("signing after interrupt: err = %v", err)
	}
}

func TestJoinTimeout(t *testing.T) {
	relayURL := relaytest.Start(t, standalone.Config{})
	sess, err := remote.Start(context.Background(), remote.Config{RelayURL: relayURL, SharedSecret: []byte("s"), JoinTimeout: 200 * time.Millisecond, StepSummary: "-"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no signer joined the session within 200ms; start a new session") {
		t.Fatalf("err = %v", err)
	}
}

// TestSessionExpires: the relay expiring the session ends the wait with its
// reason.
func TestSessionExpires(t *testing.T) {
	relayURL := relaytest.Start(t, standalone.Config{Relay: relay.Config{MaxTTL: time.Second}, SweepInterval: 50 * time.Millisecond})
	sess, err := remote.Start(context.Background(), remote.Config{RelayURL: relayURL, SharedSecret: []byte("s"), JoinTimeout: 20 * time.Second, StepSummary: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.TTL() != time.Second {
		t.Errorf("TTL = %v, want the relay's 1s", sess.TTL())
	}
	_, err = sess.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the relay closed the session before a signer joined: session expired") {
		t.Fatalf("err = %v", err)
	}
}

// TestUnknownSession: joining a session the relay does not know says so.
func TestUnknownSession(t *testing.T) {
	rsaK, _, _ := keys(t)
	relayURL := relaytest.Start(t, standalone.Config{})
	init, err := handshake.NewSharedSecret0([]byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := sjs.Parse(init.Line())
	_, err = session.Run(context.Background(), js, session.Config{Key: rsaK, SharedSecret: []byte("s"), RelayURL: relayURL})
	if err == nil || !strings.Contains(err.Error(), "could not join the signing session: the relay does not know it, it expired, or another signer joined first (SESSION_JOIN_FAILED") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnreachableRelay(t *testing.T) {
	rsaK, _, _ := keys(t)
	init, _ := handshake.NewSharedSecret0([]byte("s"))
	js, _ := sjs.Parse(init.Line())
	_, err := session.Run(context.Background(), js, session.Config{Key: rsaK, SharedSecret: []byte("s"), RelayURL: "ws://127.0.0.1:1/"})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to relay ws://127.0.0.1:1/") {
		t.Fatalf("err = %v", err)
	}
	_, err = remote.Start(context.Background(), remote.Config{RelayURL: "ws://127.0.0.1:1/", SharedSecret: []byte("s")})
	if err == nil || !strings.Contains(err.Error(), "cannot connect to relay ws://127.0.0.1:1/") {
		t.Fatalf("initiator err = %v", err)
	}
}
