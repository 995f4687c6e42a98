package relayclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/peer"
	"github.com/farsign/farsign/protocol/wire"
)

// Errors Peer.Receive wraps, so that callers and tests can tell causes apart
// with errors.Is. The text of the returned error explains the detail.
var (
	// ErrKeyMismatch: the very first message from the peer does not decrypt.
	// The two sides derived different keys: a wrong shared secret, or a join
	// string decrypted with the wrong key.
	ErrKeyMismatch = errors.New("could not decrypt the peer's first message: wrong shared secret or wrong key")
	// ErrTampered: a later message was altered, replayed, reordered or
	// dropped between the peers. Nonces are implicit counters, so any of these
	// makes a message fail to open; the session cannot continue.
	ErrTampered = errors.New("a message between the peers was tampered with in transit")
)

// SessionClosedError reports the relay closing the session: the peer said
// goodbye, disconnected, or the session expired.
type SessionClosedError struct {
	// Reason is the relay's or the peer's reason, printable, "" if none.
	Reason string
}

func (e *SessionClosedError) Error() string {
	if e.Reason == "" {
		return "the session was closed (no reason given)"
	}
	return "the session was closed: " + e.Reason
}

func closedError(ev Event) *SessionClosedError {
	e := &SessionClosedError{}
	if ev.Reason != nil {
		e.Reason = Printable(*ev.Reason, 200)
	}
	return e
}

// Peer is one end of an established session: it seals peer messages into the
// encrypted channel and sends them through the relay, and opens, in arrival
// order, what the other end sent.
type Peer struct {
	c         *Client
	sessionID string
	ch        *channel.Channel
}

// NewPeer returns the session sessionID on c, encrypted with ch.
func NewPeer(c *Client, sessionID string, ch *channel.Channel) *Peer {
	return &Peer{c: c, sessionID: sessionID, ch: ch}
}

// Client returns the underlying relay connection.
func (p *Peer) Client() *Client { return p.c }

// SessionID returns the session's id.
func (p *Peer) SessionID() string { return p.sessionID }

// Send seals m and sends it, waiting for the relay's acknowledgement (the
// peer's answer, if any, is read with Receive).
func (p *Peer) Send(ctx context.Context, m peer.Message) error {
	pt, err := peer.Marshal(m)
	if err != nil {
		return err
	}
	ct, err := p.ch.Seal(pt)
	clear(pt)
	if err != nil {
		return err
	}
	if err := p.c.SendMessage(ctx, p.sessionID, base64.StdEncoding.EncodeToString(ct)); err != nil {
		// The relay refuses messages to a session that just closed; the
		// reason it closed is in the queue, or about to be, and is the real
		// explanation.
		var re *RelayError
		if errors.As(err, &re) {
			if ev := p.c.ClosedEventWithin(ctx, closedGrace); ev != nil {
				return closedError(*ev)
			}
		}
		return fmt.Errorf("sending %s: %w", m.Type(), err)
	}
	return nil
}

// closedGrace bounds how long a refused Send waits for the session-closed
// push that explains the refusal.
const closedGrace = 2 * time.Second

// strictStd is the standard padded base64 alphabet rcodesign uses for
// message payloads.
var strictStd = base64.StdEncoding.Strict()

// Receive returns the next message from the peer. It returns a
// *SessionClosedError when the relay closes the session, an error wrapping
// ErrKeyMismatch or ErrTampered when a message does not open, and the
// relay's error when the connection ends.
func (p *Peer) Receive(ctx context.Context) (peer.Message, error) {
	ev, err := p.c.Next(ctx)
	if err != nil {
		return nil, err
	}
	switch ev.Type {
	case wire.TypeSessionClosed:
		return nil, closedError(ev)
	case wire.TypePeerMessage:
	default:
		return nil, fmt.Errorf("relay sent an unexpected %s in the middle of the session", ev.Type)
	}
	if len(ev.Message) > base64.StdEncoding.EncodedLen(channel.MaxCiphertextSize) {
		return nil, fmt.Errorf("%w: a %d-byte peer message exceeds the protocol's limit", ErrTampered, len(ev.Message))
	}
	ct, err := strictStd.DecodeString(ev.Message)
	if err != nil {
		return nil, fmt.Errorf("%w: the relay delivered a peer message that is not standard base64", ErrTampered)
	}
	pt, err := p.ch.Open(ct)
	if err != nil {
		return nil, openError(err)
	}
	defer clear(pt)
	m, err := peer.Unmarshal(pt)
	if err != nil {
		// It opened, so the peer itself sent it: not tampering, a bad peer.
		return nil, fmt.Errorf("the peer sent an invalid message: %v", err)
	}
	return m, nil
}

// openError turns a channel failure into an error a person understands.
func openError(err error) error {
	switch {
	case errors.Is(err, channel.ErrKeyMismatch):
		return &wrapError{ErrKeyMismatch.Error(), ErrKeyMismatch, err}
	case errors.Is(err, channel.ErrReplay):
		return &wrapError{"a message from the peer was replayed in transit (" + err.Error() + "); aborting the session", ErrTampered, err}
	case errors.Is(err, channel.ErrReorder):
		return &wrapError{"a message from the peer was dropped or reordered in transit (" + err.Error() + "); aborting the session", ErrTampered, err}
	case errors.Is(err, channel.ErrAuth):
		return &wrapError{"a message from the peer failed authentication: it was altered in transit; aborting the session", ErrTampered, err}
	}
	return fmt.Errorf("%w: %v", ErrTampered, err)
}

// wrapError has its own text and matches both a sentinel and the cause.
type wrapError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return []error{e.sentinel, e.cause} }
