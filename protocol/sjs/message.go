package sjs

import (
	"errors"
	"fmt"

	"github.com/farsign/farsign/protocol/internal/cbor"
)

// PublicKey0Message is the plaintext sealed inside a publickey0 join string (the
// "AJoinPlaintext" of rcodesign's docs). Only the intended signer can read it, so
// its secrecy is what keeps an active relay out of a publickey0 session.
//
// Its CBOR is a 4-item array, and two details matter for interoperability with
// rcodesign: a missing server URL is encoded as null (the array keeps 4 items), and
// Challenge and AgreementPublic are arrays of unsigned integers, one per byte, not
// byte strings (minicbor's encoding of a Rust Vec<u8>).
type PublicKey0Message struct {
	// ServerURL is the relay the signer must connect to; "" encodes as null.
	ServerURL string
	// SessionID is the relay session to join.
	SessionID string
	// Challenge is 32 random bytes bound into the session keys.
	Challenge []byte
	// AgreementPublic is the initiator's raw 32-byte X25519 public key.
	AgreementPublic []byte
}

// Bounds for the sealed message's fields.
const (
	maxServerURL    = 2048
	minChallenge    = 16
	maxChallenge    = 256
	x25519PublicLen = 32
)

// MarshalPublicKey0Message returns the CBOR rcodesign's signer expects.
func MarshalPublicKey0Message(m *PublicKey0Message) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	var w cbor.Writer
	w.Array(4)
	if m.ServerURL == "" {
		w.Null()
	} else {
		w.Text(m.ServerURL)
	}
	w.Text(m.SessionID)
	w.UintArray(m.Challenge)
	w.UintArray(m.AgreementPublic)
	return w.Bytes(), nil
}

// UnmarshalPublicKey0Message decodes the sealed message with the leniency of
// rcodesign's decoder: the outer array may be definite or indefinite and may carry
// extra trailing items (ignored), the URL may be text or null, and the two byte
// fields may be arrays of integers or (beyond rcodesign) byte strings. Lengths are
// then checked: a 32-byte X25519 key and a 16- to 256-byte challenge.
func UnmarshalPublicKey0Message(b []byte) (*PublicKey0Message, error) {
	m, err := unmarshalPublicKey0Message(b)
	if err != nil {
		return nil, fmt.Errorf("%w: publickey0 sealed message: %v", ErrInvalid, err)
	}
	return m, nil
}

func unmarshalPublicKey0Message(b []byte) (*PublicKey0Message, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), MaxSize)
	}
	r := cbor.NewReader(b)
	n, indefinite, err := r.ArrayHeader()
	if err != nil {
		return nil, err
	}
	if !indefinite && n < 4 {
		return nil, fmt.Errorf("array has %d items, want 4", n)
	}
	var m PublicKey0Message
	if r.AtNull() {
		r.Skip1()
	} else if m.ServerURL, err = r.Text(maxServerURL); err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	if m.SessionID, err = r.Text(maxSessionID); err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	if m.Challenge, err = r.ByteArray(maxChallenge); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if m.AgreementPublic, err = r.ByteArray(x25519PublicLen); err != nil {
		return nil, fmt.Errorf("agreement public key: %w", err)
	}
	// Extra trailing items are ignored, as rcodesign ignores them, but they must
	// still be well formed and the array must end where the input ends.
	if indefinite {
		for !r.AtBreak() {
			if err := r.Skip(); err != nil {
				return nil, fmt.Errorf("trailing item: %w", err)
			}
		}
		r.Skip1()
	} else {
		for i := uint64(4); i < n; i++ {
			if err := r.Skip(); err != nil {
				return nil, fmt.Errorf("trailing item: %w", err)
			}
		}
	}
	if len(r.Rest()) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the message", len(r.Rest()))
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *PublicKey0Message) check() error {
	if len(m.ServerURL) > maxServerURL {
		return fmt.Errorf("server URL is %d bytes, limit %d", len(m.ServerURL), maxServerURL)
	}
	if err := CheckSessionID(m.SessionID); err != nil {
		return err
	}
	if err := checkLen("challenge", m.Challenge, minChallenge, maxChallenge); err != nil {
		return err
	}
	if len(m.AgreementPublic) != x25519PublicLen {
		return errors.New("agreement public key must be 32 bytes (a raw X25519 key)")
	}
	return nil
}
