// Package channel is the encrypted message channel two peers share once the key
// agreement is done: ChaCha20-Poly1305 (RFC 8439), one key per direction, a
// little-endian 32-bit counter as the nonce, empty associated data. That is exactly
// what rcodesign does, so the channel interoperates with it.
//
// Nonces are never transmitted: each side counts the messages it sealed and
// opened. That makes in-order, exactly-once delivery part of the authentication.
// A message the relay replays, reorders or alters fails to open under the expected
// counter. Open then retries a few nearby counters only to say what happened
// (ErrReplay, ErrReorder, ErrAuth) and never returns such a plaintext. A failed
// Open does not advance the counter, so a caller may drop a bad message and keep
// going, or (the usual choice) abort the session.
//
// The counter never wraps: after 2^32 messages in one direction Seal and Open fail
// with ErrExhausted instead of reusing a nonce.
package channel

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// MaxPlaintextSize bounds one message. Peer messages are small (a certificate
// chain, CMS signed attributes); 64 KiB leaves ample room and, base64-encoded in
// a relay envelope, stays under the 128 KB message limit of the reference relay.
const MaxPlaintextSize = 64 << 10

// Overhead is the Poly1305 tag appended to every ciphertext.
const Overhead = chacha20poly1305.Overhead

// MaxCiphertextSize is the largest ciphertext Open accepts.
const MaxCiphertextSize = MaxPlaintextSize + Overhead

// KeySize is the size of each direction's key.
const KeySize = chacha20poly1305.KeySize

// How far from the expected counter Open looks when classifying a failure.
const (
	replayWindow  = 32
	reorderWindow = 8
)

// Errors. Match them with errors.Is; the returned errors add counters.
var (
	// ErrAuth: the ciphertext opens under no nearby counter, so it was altered,
	// truncated, or sealed with a different key.
	ErrAuth = errors.New("message authentication failed: tampered, truncated or wrong key")
	// ErrKeyMismatch (which also matches ErrAuth) is ErrAuth on the very first
	// message of a session. With no message ever opened the likeliest cause is that
	// the peers derived different keys: a wrong shared secret, or a join string
	// decrypted with the wrong key.
	ErrKeyMismatch error = &wrapped{"key mismatch: the peer's first message does not decrypt (wrong shared secret, or wrong key?)", ErrAuth}
	// ErrReplay: the ciphertext is a message already received.
	ErrReplay = errors.New("replayed message")
	// ErrReorder: the ciphertext is a later message delivered too early, so one or
	// more messages were dropped or reordered on the way.
	ErrReorder = errors.New("message out of order")
	// ErrTooLarge: the message exceeds MaxPlaintextSize.
	ErrTooLarge = errors.New("message too large")
	// ErrExhausted: the direction's 2^32 nonces are used up.
	ErrExhausted = errors.New("nonce counter exhausted: too many messages in one session")
)

// wrapped is an error with its own text that also matches another with errors.Is.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// Channel seals messages to the peer and opens messages from it. Seal and Open may
// be used concurrently with each other (each direction has its own lock).
type Channel struct {
	sendMu  sync.Mutex
	send    cipher.AEAD
	sendCtr uint64 // next nonce; > MaxUint32 means exhausted

	recvMu  sync.Mutex
	recv    cipher.AEAD
	recvCtr uint64
}

// New returns a channel that seals with sealKey and opens with openKey. The
// initiator (side A) seals with KeyA and opens with KeyB; the signer the reverse.
// The keys are copied; the caller should erase its copies.
func New(sealKey, openKey []byte) (*Channel, error) {
	if len(sealKey) != KeySize || len(openKey) != KeySize {
		return nil, fmt.Errorf("channel: keys must be %d bytes", KeySize)
	}
	send, err := chacha20poly1305.New(sealKey)
	if err != nil {
		return nil, err
	}
	recv, err := chacha20poly1305.New(openKey)
	if err != nil {
		return nil, err
	}
	return &Channel{send: send, recv: recv}, nil
}

func nonce(ctr uint64) []byte {
	var n [chacha20poly1305.NonceSize]byte
	binary.LittleEndian.PutUint32(n[:4], uint32(ctr))
	return n[:]
}

// Seal encrypts the next outgoing message and returns ciphertext‖tag.
func (c *Channel) Seal(plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(plaintext), MaxPlaintextSize)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendCtr > math.MaxUint32 {
		return nil, ErrExhausted
	}
	out := c.send.Seal(nil, nonce(c.sendCtr), plaintext, nil)
	c.sendCtr++
	return out, nil
}

// Open decrypts the next incoming message. On any error the receive counter is
// unchanged and no plaintext is returned.
func (c *Channel) Open(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) > MaxCiphertextSize {
		return nil, fmt.Errorf("%w: %d-byte ciphertext, limit %d", ErrTooLarge, len(ciphertext), MaxCiphertextSize)
	}
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.recvCtr > math.MaxUint32 {
		return nil, ErrExhausted
	}
	if len(ciphertext) < Overhead {
		// Truncation, not a key problem: never reported as ErrKeyMismatch.
		return nil, fmt.Errorf("%w (%d-byte ciphertext is shorter than the tag)", ErrAuth, len(ciphertext))
	}
	pt, err := c.recv.Open(nil, nonce(c.recvCtr), ciphertext, nil)
	if err == nil {
		c.recvCtr++
		return pt, nil
	}
	return nil, c.classify(ciphertext)
}

// classify explains why ciphertext failed to open under the expected counter by
// trying the counters just before and just after it. Plaintexts found this way
// are erased, never returned.
func (c *Channel) classify(ciphertext []byte) error {
	scratch := make([]byte, 0, len(ciphertext))
	opens := func(ctr uint64) bool {
		pt, err := c.recv.Open(scratch[:0], nonce(ctr), ciphertext, nil)
		clear(pt)
		return err == nil
	}
	for i := uint64(1); i <= replayWindow && i <= c.recvCtr; i++ {
		if opens(c.recvCtr - i) {
			return fmt.Errorf("%w: it is message #%d again (expecting #%d)", ErrReplay, c.recvCtr-i, c.recvCtr)
		}
	}
	for i := uint64(1); i <= reorderWindow && c.recvCtr+i <= math.MaxUint32; i++ {
		if opens(c.recvCtr + i) {
			return fmt.Errorf("%w: got message #%d while expecting #%d", ErrReorder, c.recvCtr+i, c.recvCtr)
		}
	}
	return c.authError(fmt.Sprintf("message #%d", c.recvCtr))
}

func (c *Channel) authError(detail string) error {
	if c.recvCtr == 0 {
		return fmt.Errorf("%w (%s)", ErrKeyMismatch, detail)
	}
	return fmt.Errorf("%w (%s)", ErrAuth, detail)
}

// Counters returns how many messages have been sealed and opened.
func (c *Channel) Counters() (sealed, opened uint64) {
	c.sendMu.Lock()
	sealed = c.sendCtr
	c.sendMu.Unlock()
	c.recvMu.Lock()
	opened = c.recvCtr
	c.recvMu.Unlock()
	return sealed, opened
}
