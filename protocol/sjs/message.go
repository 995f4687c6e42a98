package sjs

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
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
	return encMode.Marshal(publicKey0MessageCBOR{
		ServerURL:       nullableText(m.ServerURL),
		SessionID:       m.SessionID,
		Challenge:       vecU8(m.Challenge),
		AgreementPublic: vecU8(m.AgreementPublic),
	})
}

// publicKey0MessageCBOR is the shape MarshalPublicKey0Message writes: a definite
// array of four items.
type publicKey0MessageCBOR struct {
	_               struct{} `cbor:",toarray"`
	ServerURL       nullableText
	SessionID       string
	Challenge       vecU8
	AgreementPublic vecU8
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
	if len(b) == 0 {
		return nil, errTruncated
	}
	// Checked here because fxamacker would see through a self-described CBOR
	// tag (55799) wrapping the array.
	if major, _, _ := head(b); major != majorArray {
		return nil, fmt.Errorf("expected array, found %s", typeName(b))
	}
	// A Go array, not a slice: fxamacker fills its four elements and skips any
	// further items without interpreting them (rcodesign ignores them too),
	// after checking the whole input is one well-formed item within the mode's
	// bounds. Items that are absent stay nil.
	var items [4]cbor.RawMessage
	if err := messageDecMode.Unmarshal(b, &items); err != nil {
		return nil, truncation(err)
	}
	if items[3] == nil {
		return nil, errors.New("array has fewer than 4 items")
	}
	var m PublicKey0Message
	var err error
	if !bytes.Equal(items[0], cborNull) {
		if m.ServerURL, err = decodeText(items[0], maxServerURL); err != nil {
			return nil, fmt.Errorf("server URL: %w", err)
		}
	}
	if m.SessionID, err = decodeText(items[1], maxSessionID); err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	if m.Challenge, err = decodeVecU8(items[2], maxChallenge); err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if m.AgreementPublic, err = decodeVecU8(items[3], x25519PublicLen); err != nil {
		return nil, fmt.Errorf("agreement public key: %w", err)
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
