// Package sjs encodes and decodes session join strings (SJS): the blob an initiator
// prints and a human carries to the signer, which tells the signer how to join a
// remote-signing session.
//
// The binary form is the CBOR that rcodesign writes, byte for byte:
//
//	82                      array(2)
//	  6a "publickey0"       scheme name (or 6d "sharedsecret0")
//	  83 ...                array(3): the scheme's three fields
//	FF FF                   two stray break bytes rcodesign's encoder appends
//
// Marshal reproduces the trailer so our output is identical to rcodesign's;
// Unmarshal tolerates it (and its absence) but nothing else after the payload.
//
// Two text forms carry it: a single line of URL-safe unpadded base64 (EncodeLine)
// and a PEM block labelled SESSION JOIN STRING with standard base64, 64 columns and
// CRLF line ends (EncodePEM). Parse accepts both, and whatever a person is likely to
// paste: surrounding whitespace, wrapped lines, '#' comment lines, the command line
// the initiator printed, either base64 alphabet, with or without padding.
//
// Everything is size-capped (MaxSize) because the text comes from a human's
// clipboard and, for a signer, from an untrusted initiator. The CBOR itself is
// read and written with github.com/fxamacker/cbor/v2 (see cbor.go for how its
// modes are pinned to what rcodesign accepts and emits).
package sjs

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxSize caps the decoded binary join string and the text Parse accepts. A
// publickey0 join string for an RSA-4096 key is about 1.3 KiB; 16 KiB leaves room
// for any real one while bounding what a hostile paste can make us process.
const MaxSize = 16 << 10

// Scheme names, exactly as they appear in the CBOR.
const (
	SchemePublicKey0    = "publickey0"
	SchemeSharedSecret0 = "sharedsecret0"
)

// ErrInvalid is wrapped by every error for input that is not a well-formed join
// string (bad base64, truncated, wrong CBOR shape, oversized).
var ErrInvalid = errors.New("invalid session join string")

// ErrUnknownScheme is wrapped when the join string is well formed but names a
// scheme this version does not implement.
var ErrUnknownScheme = errors.New("unknown session join string scheme")

// JoinString is a decoded join string: *PublicKey0 or *SharedSecret0.
type JoinString interface {
	// Scheme returns SchemePublicKey0 or SchemeSharedSecret0.
	Scheme() string
	// payload validates the join string and returns the value whose CBOR is the
	// scheme's three-item array.
	payload() (any, error)
}

// PublicKey0 is the payload of a publickey0 join string. All three fields are
// opaque here; package handshake gives them meaning.
type PublicKey0 struct {
	// EncryptedKey is the AES-128 key, RSA-OAEP(SHA-256) encrypted to the signer.
	EncryptedKey []byte
	// SignerPublicKey is the DER SubjectPublicKeyInfo the initiator encrypted to.
	SignerPublicKey []byte
	// EncryptedMessage is the AES-128-GCM sealed PublicKey0Message (ciphertext‖tag).
	EncryptedMessage []byte
}

// SharedSecret0 is the payload of a sharedsecret0 join string.
type SharedSecret0 struct {
	// SessionID is the relay session to join (a UUID when rcodesign made it).
	SessionID string
	// ExtraID is random bytes (16 from rcodesign) bound into the SPAKE2 identities
	// and the session keys.
	ExtraID []byte
	// Message is the initiator's 33-byte SPAKE2 message, 'A' ‖ point.
	Message []byte
}

// Scheme implements JoinString.
func (*PublicKey0) Scheme() string { return SchemePublicKey0 }

// Scheme implements JoinString.
func (*SharedSecret0) Scheme() string { return SchemeSharedSecret0 }

// Field bounds. They are far above anything an honest peer produces and exist to
// reject garbage early with a precise message.
const (
	maxSchemeName   = 64
	maxRSACipher    = 1024 // RSA-8192
	maxSPKI         = 2048
	maxSealedMsg    = 4096
	maxSessionID    = 128
	maxExtraID      = 64
	spakeMessageLen = 33
)

// The CBOR shapes Marshal writes: "toarray" structs encode as definite arrays of
// their fields in order.
type (
	envelopeCBOR struct {
		_       struct{} `cbor:",toarray"`
		Scheme  string
		Payload any
	}
	publicKey0CBOR struct {
		_                struct{} `cbor:",toarray"`
		EncryptedKey     []byte
		SignerPublicKey  []byte
		EncryptedMessage []byte
	}
	sharedSecret0CBOR struct {
		_         struct{} `cbor:",toarray"`
		SessionID string
		ExtraID   []byte
		Message   []byte
	}
)

func (p *PublicKey0) payload() (any, error) {
	if err := checkLen("encrypted key", p.EncryptedKey, 1, maxRSACipher); err != nil {
		return nil, err
	}
	if err := checkLen("signer public key", p.SignerPublicKey, 1, maxSPKI); err != nil {
		return nil, err
	}
	if err := checkLen("encrypted message", p.EncryptedMessage, 17, maxSealedMsg); err != nil {
		return nil, err
	}
	return publicKey0CBOR{
		EncryptedKey:     p.EncryptedKey,
		SignerPublicKey:  p.SignerPublicKey,
		EncryptedMessage: p.EncryptedMessage,
	}, nil
}

func (s *SharedSecret0) payload() (any, error) {
	if err := CheckSessionID(s.SessionID); err != nil {
		return nil, err
	}
	if err := checkLen("extra identifier", s.ExtraID, 1, maxExtraID); err != nil {
		return nil, err
	}
	if err := checkSPAKEMessage(s.Message); err != nil {
		return nil, err
	}
	return sharedSecret0CBOR{SessionID: s.SessionID, ExtraID: s.ExtraID, Message: s.Message}, nil
}

// trailer is what rcodesign's encoder appends after the join string: one stray
// break byte from each of the two definite arrays' end() calls.
var trailer = []byte{0xff, 0xff}

// Marshal returns the binary join string, including rcodesign's FF FF trailer.
func Marshal(js JoinString) ([]byte, error) {
	p, err := js.payload()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, js.Scheme(), err)
	}
	b, err := encMode.Marshal(envelopeCBOR{Scheme: js.Scheme(), Payload: p})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, js.Scheme(), err)
	}
	b = append(b, trailer...)
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrInvalid, len(b), MaxSize)
	}
	return b, nil
}

// Unmarshal decodes a binary join string. It accepts exactly the shapes rcodesign's
// decoder accepts (definite arrays and strings), followed by at most the two 0xFF
// bytes rcodesign appends. Returned slices do not alias b.
func Unmarshal(b []byte) (JoinString, error) {
	js, err := unmarshal(b)
	switch {
	case err == nil, errors.Is(err, ErrUnknownScheme):
		return js, err
	case errors.Is(err, errTruncated):
		return nil, fmt.Errorf("%w: truncated, was all of it pasted? (%v)", ErrInvalid, err)
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
}

func unmarshal(b []byte) (JoinString, error) {
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), MaxSize)
	}
	// UnmarshalFirst, not Unmarshal: the payload is followed by rcodesign's
	// trailer, which is not part of any CBOR item.
	if err := expect(b, majorArray); err != nil {
		return nil, fmt.Errorf("outer container: %w", err)
	}
	var outer []cbor.RawMessage
	rest, err := joinDecMode.UnmarshalFirst(b, &outer)
	if err != nil {
		return nil, fmt.Errorf("outer container: %w", truncation(err))
	}
	if len(outer) != 2 {
		return nil, fmt.Errorf("outer container: array has %d items, want 2", len(outer))
	}
	scheme, err := decodeText(outer[0], maxSchemeName)
	if err != nil {
		return nil, fmt.Errorf("scheme name: %w", err)
	}
	var js JoinString
	switch scheme {
	case SchemePublicKey0:
		js, err = unmarshalPublicKey0(outer[1])
	case SchemeSharedSecret0:
		js, err = unmarshalSharedSecret0(outer[1])
	default:
		return nil, fmt.Errorf("%w %q (this version understands %s and %s)",
			ErrUnknownScheme, scheme, SchemePublicKey0, SchemeSharedSecret0)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scheme, err)
	}
	if !isTrailer(rest) {
		return nil, fmt.Errorf("%d unexpected bytes after the payload", len(rest))
	}
	return js, nil
}

func unmarshalPublicKey0(raw []byte) (*PublicKey0, error) {
	items, err := decodeArray(raw, 3)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var p PublicKey0
	if p.EncryptedKey, err = decodeBytes(items[0], maxRSACipher); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	if p.SignerPublicKey, err = decodeBytes(items[1], maxSPKI); err != nil {
		return nil, fmt.Errorf("signer public key: %w", err)
	}
	if p.EncryptedMessage, err = decodeBytes(items[2], maxSealedMsg); err != nil {
		return nil, fmt.Errorf("encrypted message: %w", err)
	}
	if _, err := p.payload(); err != nil {
		return nil, err
	}
	return &p, nil
}

func unmarshalSharedSecret0(raw []byte) (*SharedSecret0, error) {
	items, err := decodeArray(raw, 3)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var s SharedSecret0
	if s.SessionID, err = decodeText(items[0], maxSessionID); err != nil {
		return nil, fmt.Errorf("session id: %w", err)
	}
	if s.ExtraID, err = decodeBytes(items[1], maxExtraID); err != nil {
		return nil, fmt.Errorf("extra identifier: %w", err)
	}
	if s.Message, err = decodeBytes(items[2], spakeMessageLen); err != nil {
		return nil, fmt.Errorf("SPAKE2 message: %w", err)
	}
	if _, err := s.payload(); err != nil {
		return nil, err
	}
	return &s, nil
}

// isTrailer reports whether rest is what may follow the payload: nothing, or up to
// the two 0xFF break bytes rcodesign writes.
func isTrailer(rest []byte) bool { return bytes.HasPrefix(trailer, rest) }

func checkLen(what string, b []byte, min, max int) error {
	if len(b) < min || len(b) > max {
		return fmt.Errorf("%s is %d bytes, want %d to %d", what, len(b), min, max)
	}
	return nil
}

func checkSPAKEMessage(m []byte) error {
	if len(m) != spakeMessageLen || m[0] != 'A' {
		return fmt.Errorf("SPAKE2 message must be 33 bytes starting with 'A' (got %d bytes)", len(m))
	}
	return nil
}

// CheckSessionID accepts 1 to 128 printable ASCII bytes without spaces. The session
// id is echoed to the relay and shown to people; rcodesign always uses a lowercase
// UUID.
func CheckSessionID(id string) error {
	if len(id) == 0 || len(id) > maxSessionID {
		return fmt.Errorf("session id is %d bytes, want 1 to %d", len(id), maxSessionID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("session id contains byte 0x%02x; want printable ASCII", c)
		}
	}
	return nil
}
