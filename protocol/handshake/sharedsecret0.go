package handshake

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/protocol/spake2"
)

// extraIDSize is the length of the random extra identifier rcodesign uses.
const extraIDSize = 16

// spakeState is the part of *spake2.State the handshake uses; the test vectors
// substitute a state with a fixed ephemeral scalar.
type spakeState interface {
	Message() []byte
	Finish(peer []byte) ([]byte, error)
}

// NewSharedSecret0 starts a sharedsecret0 agreement with the shared password. The
// join string carries no relay URL: both sides must use the same relay.
func NewSharedSecret0(password []byte) (*Initiator, error) {
	if len(password) == 0 {
		return nil, errors.New("sharedsecret0: the shared secret is empty")
	}
	sessionID, err := newSessionID()
	if err != nil {
		return nil, err
	}
	extraID := make([]byte, extraIDSize)
	if _, err := rand.Read(extraID); err != nil {
		return nil, err
	}
	st, _, err := spake2.Start(spake2.SideA, password, []byte(info('A', sessionID, extraID)), []byte(info('B', sessionID, extraID)))
	if err != nil {
		return nil, err
	}
	return newSharedSecret0(sessionID, extraID, st)
}

func newSharedSecret0(sessionID string, extraID []byte, st spakeState) (*Initiator, error) {
	raw, err := sjs.Marshal(&sjs.SharedSecret0{SessionID: sessionID, ExtraID: extraID, Message: st.Message()})
	if err != nil {
		return nil, err
	}
	return &Initiator{
		scheme:     sjs.SchemeSharedSecret0,
		sessionID:  sessionID,
		extraID:    extraID,
		joinString: raw,
		contextLen: spake2.MessageSize,
		finish: func(peer []byte) ([]byte, error) {
			key, err := st.Finish(peer)
			if err != nil {
				return nil, fmt.Errorf("signer's SPAKE2 message: %w", err)
			}
			return key, nil
		},
	}, nil
}

// JoinSharedSecret0 joins a sharedsecret0 session as the signer with the shared
// password. A wrong password is not detectable here (SPAKE2 has no confirmation);
// it shows as channel.ErrKeyMismatch on the first message.
func JoinSharedSecret0(js *sjs.SharedSecret0, password []byte) (*Joiner, error) {
	if len(password) == 0 {
		return nil, errors.New("sharedsecret0: the shared secret is empty")
	}
	st, _, err := spake2.Start(spake2.SideB, password,
		[]byte(info('A', js.SessionID, js.ExtraID)), []byte(info('B', js.SessionID, js.ExtraID)))
	if err != nil {
		return nil, err
	}
	return joinSharedSecret0(js, st)
}

func joinSharedSecret0(js *sjs.SharedSecret0, st spakeState) (*Joiner, error) {
	msg := st.Message()
	key, err := st.Finish(js.Message)
	if err != nil {
		return nil, fmt.Errorf("sharedsecret0: join string's SPAKE2 message: %w", err)
	}
	ch, err := newChannel('B', key, js.SessionID, js.ExtraID)
	if err != nil {
		return nil, err
	}
	return &Joiner{
		scheme:    sjs.SchemeSharedSecret0,
		sessionID: js.SessionID,
		context:   base64.StdEncoding.EncodeToString(msg),
		ch:        ch,
	}, nil
}
