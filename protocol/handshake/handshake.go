// Package handshake turns a session join string into an encrypted channel: it
// implements both of rcodesign's key-agreement schemes, for both roles.
//
// The initiator (side A, the CI job) creates the join string and, once the signer
// has joined through the relay, finishes with the signer's join context. The signer
// (side B, the key holder) joins from the join string alone and hands the relay
// its join context. Both end with a *channel.Channel keyed by HKDF-SHA256 (empty
// salt) from the agreed secret:
//
//	KeyA = HKDF(ikm, info = "A:" ‖ session_id ‖ ":" ‖ extra_id)   A seals, B opens
//	KeyB = HKDF(ikm, info = "B:" ‖ session_id ‖ ":" ‖ extra_id)   B seals, A opens
//
// publickey0: the initiator encrypts a fresh AES-128 key to the signer's RSA key
// (OAEP, SHA-256, MGF1-SHA-256) and seals with it (AES-128-GCM, fixed nonce 0x42×12,
// safe because the key is used once) a message holding the relay URL, session id,
// a 32-byte challenge (extra_id) and an ephemeral X25519 public key. The signer
// answers with its own ephemeral X25519 public key; ikm is the X25519 secret.
// Only the signer's key is authenticated: anyone holding the signer's public key
// can make a join string, so a signer must only join strings it expects. Unlike
// rcodesign, our signer refuses a join string made for a different public key.
//
// sharedsecret0: both sides run SPAKE2 (package spake2) on the shared password
// with idA/idB equal to the two info strings above; ikm is the SPAKE2 key. There
// is no key confirmation, so a wrong password surfaces as channel.ErrKeyMismatch
// on the first message.
//
// All secret state stays inside Initiator and Joiner and is erased when they
// finish.
package handshake

import (
	"crypto"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/sjs"
)

// Errors a session layer may want to recognise with errors.Is.
var (
	// ErrWrongKey: a publickey0 join string was made for another public key (see
	// *KeyMismatchError for the fingerprints).
	ErrWrongKey = errors.New("join string was made for a different key")
	// ErrNeedPassword: a sharedsecret0 join string and no shared secret given.
	ErrNeedPassword = errors.New("this join string uses a shared secret (sharedsecret0) but none was given")
	// ErrNeedKey: a publickey0 join string and no decryption key given.
	ErrNeedKey = errors.New("this join string is encrypted to a public key (publickey0) but no private key was given")
	// ErrFinished: Finish was already called.
	ErrFinished = errors.New("handshake already finished")
)

// newSessionID returns a random lowercase hyphenated UUIDv4, as rcodesign uses.
func newSessionID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// info returns "A:" ‖ sessionID ‖ ":" ‖ extraID (or "B:…"): the HKDF info for that
// side's key and, in sharedsecret0, that side's SPAKE2 identity.
func info(side byte, sessionID string, extraID []byte) string {
	return string(side) + ":" + sessionID + ":" + string(extraID)
}

// deriveKeys computes the PRK and both directions' keys from the agreed secret.
func deriveKeys(ikm []byte, sessionID string, extraID []byte) (prk, keyA, keyB []byte, err error) {
	prk, err = hkdf.Extract(sha256.New, ikm, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if keyA, err = hkdf.Expand(sha256.New, prk, info('A', sessionID, extraID), channel.KeySize); err != nil {
		return nil, nil, nil, err
	}
	if keyB, err = hkdf.Expand(sha256.New, prk, info('B', sessionID, extraID), channel.KeySize); err != nil {
		return nil, nil, nil, err
	}
	return prk, keyA, keyB, nil
}

// newChannel derives the keys and builds side's channel, erasing every
// intermediate secret including ikm.
func newChannel(side byte, ikm []byte, sessionID string, extraID []byte) (*channel.Channel, error) {
	defer clear(ikm)
	prk, keyA, keyB, err := deriveKeys(ikm, sessionID, extraID)
	if err != nil {
		return nil, err
	}
	defer func() { clear(prk); clear(keyA); clear(keyB) }()
	if side == 'A' {
		return channel.New(keyA, keyB)
	}
	return channel.New(keyB, keyA)
}

// decodeContext decodes a join context: standard padded base64, as rcodesign
// writes it, of exactly n bytes.
func decodeContext(ctx string, n int) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(ctx)
	if err != nil {
		return nil, fmt.Errorf("signer's join context is not standard base64")
	}
	if len(b) != n {
		return nil, fmt.Errorf("signer's join context is %d bytes, want %d", len(b), n)
	}
	return b, nil
}

// checkRelayURL accepts ws:// and wss:// URLs with a host.
func checkRelayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("relay URL %q is not a URL", s)
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "ws" && scheme != "wss" || u.Host == "" {
		return fmt.Errorf("relay URL %q is not a ws:// or wss:// URL", s)
	}
	return nil
}

// Initiator is side A of one key agreement. It is not safe for concurrent use.
type Initiator struct {
	scheme     string
	sessionID  string
	extraID    []byte
	joinString []byte
	finish     func(peer []byte) ([]byte, error) // returns ikm
	contextLen int
	finished   bool
}

// Scheme returns sjs.SchemePublicKey0 or sjs.SchemeSharedSecret0.
func (i *Initiator) Scheme() string { return i.scheme }

// SessionID is the session id to create on the relay (create-session) before
// showing the join string.
func (i *Initiator) SessionID() string { return i.sessionID }

// JoinString returns the binary join string.
func (i *Initiator) JoinString() []byte { return append([]byte(nil), i.joinString...) }

// Line returns the one-line form to print (url-safe base64, no padding).
func (i *Initiator) Line() string { return sjs.EncodeLine(i.joinString) }

// PEM returns the PEM form to print (CRLF line ends).
func (i *Initiator) PEM() string { return sjs.EncodePEM(i.joinString) }

// Finish completes the agreement with the join context the relay delivered in
// session-joined (the signer's X25519 key or SPAKE2 message, std base64) and
// returns the channel. It may be called once; a failure is final.
func (i *Initiator) Finish(joinContext string) (*channel.Channel, error) {
	if i.finished {
		return nil, ErrFinished
	}
	i.finished = true
	defer clear(i.extraID) // the publickey0 challenge is secret
	finish := i.finish
	i.finish = nil
	peer, err := decodeContext(joinContext, i.contextLen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.scheme, err)
	}
	ikm, err := finish(peer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", i.scheme, err)
	}
	return newChannel('A', ikm, i.sessionID, i.extraID)
}

// Joiner is side B of one key agreement, made from a join string.
type Joiner struct {
	scheme    string
	sessionID string
	serverURL string
	context   string
	ch        *channel.Channel
}

// Credentials are what a signer holds. Which one a join string needs depends on
// its scheme.
type Credentials struct {
	// Key decrypts publickey0 join strings: an *rsa.PrivateKey, a PIV card's key,
	// anything implementing crypto.Decrypter with RSA-OAEP.
	Key crypto.Decrypter
	// Password is the sharedsecret0 shared secret, byte for byte.
	Password []byte
}

// Join joins with whichever credential the join string's scheme needs.
func Join(js sjs.JoinString, c Credentials) (*Joiner, error) {
	switch js := js.(type) {
	case *sjs.PublicKey0:
		if c.Key == nil {
			return nil, ErrNeedKey
		}
		return JoinPublicKey0(js, c.Key)
	case *sjs.SharedSecret0:
		if c.Password == nil {
			return nil, ErrNeedPassword
		}
		return JoinSharedSecret0(js, c.Password)
	}
	return nil, fmt.Errorf("%w %T", sjs.ErrUnknownScheme, js)
}

// Scheme returns sjs.SchemePublicKey0 or sjs.SchemeSharedSecret0.
func (j *Joiner) Scheme() string { return j.scheme }

// SessionID is the relay session to join.
func (j *Joiner) SessionID() string { return j.sessionID }

// ServerURL is the relay URL the initiator put in the join string, or "" (always
// for sharedsecret0): then the signer uses its configured relay.
func (j *Joiner) ServerURL() string { return j.serverURL }

// JoinContext is the string to send as join-session's context (std base64).
func (j *Joiner) JoinContext() string { return j.context }

// Finish returns the channel. The keys are derived when joining, so every error
// surfaces before the signer connects; Finish only hands the channel over, once.
func (j *Joiner) Finish() (*channel.Channel, error) {
	if j.ch == nil {
		return nil, ErrFinished
	}
	ch := j.ch
	j.ch = nil
	return ch, nil
}
