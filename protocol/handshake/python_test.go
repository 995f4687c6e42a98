package handshake

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/internal/spake2py"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/protocol/spake2"
)

// peerChannel builds the other side's channel from the SPAKE2 key python derived,
// i.e. what a python (or rcodesign) peer would hold.
func peerChannel(t *testing.T, side byte, keyHex, sessionID string, extra []byte) *channel.Channel {
	t.Helper()
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatalf("python key %q: %v", keyHex, err)
	}
	ch, err := newChannel(side, key, sessionID, extra)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// A Go initiator's sharedsecret0 join string, joined by python-spake2 as the signer.
func TestSharedSecret0PythonSigner(t *testing.T) {
	pw := []byte("correct horse battery staple")
	init, err := NewSharedSecret0(pw)
	if err != nil {
		t.Fatal(err)
	}
	js, err := sjs.Parse(init.Line())
	if err != nil {
		t.Fatal(err)
	}
	ss := js.(*sjs.SharedSecret0)
	py, bMsg := spake2py.Start(t, 'B', pw, []byte(info('A', ss.SessionID, ss.ExtraID)), []byte(info('B', ss.SessionID, ss.ExtraID)))
	pyKey := py.Finish(ss.Message)
	chA, err := init.Finish(base64.StdEncoding.EncodeToString(bMsg))
	if err != nil {
		t.Fatal(err)
	}
	converse(t, chA, peerChannel(t, 'B', pyKey, ss.SessionID, ss.ExtraID))
}

// A join string made by python-spake2 as the initiator (shaped as rcodesign makes
// it), joined by a Go signer.
func TestSharedSecret0PythonInitiator(t *testing.T) {
	pw := []byte("correct horse battery staple")
	sessionID, _ := newSessionID()
	extra := []byte("0123456789abcdef")
	py, aMsg := spake2py.Start(t, 'A', pw, []byte(info('A', sessionID, extra)), []byte(info('B', sessionID, extra)))
	raw, err := sjs.Marshal(&sjs.SharedSecret0{SessionID: sessionID, ExtraID: extra, Message: aMsg})
	if err != nil {
		t.Fatal(err)
	}
	js, err := sjs.Parse(sjs.EncodePEM(raw))
	if err != nil {
		t.Fatal(err)
	}
	j, err := Join(js, Credentials{Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := base64.StdEncoding.DecodeString(j.JoinContext())
	if err != nil || len(ctx) != spake2.MessageSize {
		t.Fatalf("join context %q", j.JoinContext())
	}
	pyKey := py.Finish(ctx)
	chB, _ := j.Finish()
	converse(t, peerChannel(t, 'A', pyKey, sessionID, extra), chB)
}
