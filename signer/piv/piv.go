// Package piv is the signer's smart-card key source: a key in a PIV slot of a
// YubiKey (or another PIV card), used through go-piv/piv-go/v2 and PC/SC.
//
// The private key never leaves the card. The signer gets a crypto.Signer
// (RSA PKCS#1 v1.5 or ECDSA, computed on the card) and, for RSA slots, a
// crypto.Decrypter for joining publickey0 sessions: the card performs the raw RSA
// operation and the OAEP-SHA256 decoding happens here, as rcodesign does.
//
// The PIN is asked for only when the slot's PIN policy needs it: through
// Options.PINPrompt (without echo on a terminal by default), or from an
// environment variable the user named explicitly with --smartcard-pin-env, never
// from a command-line argument. A wrong PIN reports the attempts left; a blocked
// PIN says how to unblock it. A slot that requires a touch gets a notice first,
// so a blinking YubiKey is never mistaken for a hang.
//
// The package needs cgo (libpcsclite) except on Windows; other builds compile the
// same API and report ErrUnsupported.
package piv

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/farsign/farsign/internal/ttyprompt"
	"io"
	"os"
	"strings"
)

// Slot is a PIV key reference.
type Slot byte

// The four PIV slots a code-signing key can live in.
const (
	SlotAuthentication     Slot = 0x9a
	SlotSignature          Slot = 0x9c
	SlotKeyManagement      Slot = 0x9d
	SlotCardAuthentication Slot = 0x9e
)

// Slots lists the slots Scan reports, in display order.
var Slots = []Slot{SlotAuthentication, SlotSignature, SlotKeyManagement, SlotCardAuthentication}

// ParseSlot accepts "9a", "9c", "9d" or "9e" (the spelling of rcodesign's
// --smartcard-slot), case-insensitively.
func ParseSlot(s string) (Slot, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "9a":
		return SlotAuthentication, nil
	case "9c":
		return SlotSignature, nil
	case "9d":
		return SlotKeyManagement, nil
	case "9e":
		return SlotCardAuthentication, nil
	}
	return 0, fmt.Errorf("invalid smart card slot %q: use 9a, 9c, 9d or 9e (9c is the usual signing slot)", s)
}

// String returns the slot as typed on the command line, e.g. "9c".
func (s Slot) String() string { return fmt.Sprintf("%02x", byte(s)) }

// Name returns the slot's PIV role.
func (s Slot) Name() string {
	switch s {
	case SlotAuthentication:
		return "PIV Authentication"
	case SlotSignature:
		return "Digital Signature"
	case SlotKeyManagement:
		return "Key Management"
	case SlotCardAuthentication:
		return "Card Authentication"
	}
	return "slot " + s.String()
}

// Algorithm names a key type as the commands spell it.
type Algorithm string

// Algorithms a key can be generated with. Apple's certificate portal wants
// RSA-2048 CSRs; P-256 suits self-managed trust.
const (
	RSA2048 Algorithm = "rsa2048"
	P256    Algorithm = "p256"
)

// PINPolicy says when the card asks for the PIN before using a key.
type PINPolicy string

// PIN policies. PINDefault means the slot's YubiKey default: always for 9c,
// never for 9e, once per session for 9a and 9d.
const (
	PINDefault PINPolicy = "default"
	PINNever   PINPolicy = "never"
	PINOnce    PINPolicy = "once"
	PINAlways  PINPolicy = "always"
)

// TouchPolicy says when the card wants a touch before using a key.
type TouchPolicy string

// Touch policies. TouchDefault is never; cached accepts one touch for 15 seconds.
const (
	TouchDefault TouchPolicy = "default"
	TouchNever   TouchPolicy = "never"
	TouchAlways  TouchPolicy = "always"
	TouchCached  TouchPolicy = "cached"
)

// ParsePINPolicy validates a --pin-policy value.
func ParsePINPolicy(s string) (PINPolicy, error) {
	switch p := PINPolicy(strings.ToLower(s)); p {
	case PINDefault, PINNever, PINOnce, PINAlways:
		return p, nil
	}
	return "", fmt.Errorf("invalid PIN policy %q: use default, never, once or always", s)
}

// ParseTouchPolicy validates a --touch-policy value.
func ParseTouchPolicy(s string) (TouchPolicy, error) {
	switch p := TouchPolicy(strings.ToLower(s)); p {
	case TouchDefault, TouchNever, TouchAlways, TouchCached:
		return p, nil
	}
	return "", fmt.Errorf("invalid touch policy %q: use default, never, always or cached", s)
}

// ResolvePolicies turns "default" into what a YubiKey applies to slot, so that
// what is stored and reported is explicit.
func ResolvePolicies(slot Slot, pin PINPolicy, touch TouchPolicy) (PINPolicy, TouchPolicy) {
	if pin == PINDefault || pin == "" {
		switch slot {
		case SlotSignature:
			pin = PINAlways
		case SlotCardAuthentication:
			pin = PINNever
		default:
			pin = PINOnce
		}
	}
	if touch == TouchDefault || touch == "" {
		touch = TouchNever
	}
	return pin, touch
}

// DefaultManagementKey is the factory management key of a YubiKey
// (010203040506070801020304050607080102030405060708).
var DefaultManagementKey = []byte{
	1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
}

// ParseManagementKey decodes a hex management key: 24 bytes (3DES or AES-192),
// 16 (AES-128) or 32 (AES-256).
func ParseManagementKey(s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("management key must be hex digits")
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("management key is %d bytes; want 24 (3DES or AES-192), 16 or 32 (AES)", len(k))
}

// Options selects a card and slot and says how to get the PIN.
type Options struct {
	// Slot is "9a", "9c", "9d" or "9e".
	Slot string
	// Serial picks the card when several are connected; 0 accepts the only one.
	Serial uint32
	// PINPrompt asks the user for the PIN; retries is the number of attempts left
	// before the PIN blocks, or -1 when the card does not say. Nil means
	// TerminalPrompt().
	PINPrompt func(ctx context.Context, retries int) (string, error)
	// PINEnv names an environment variable holding the PIN. Only the user can set
	// it (--smartcard-pin-env); when set, the PIN is never prompted for, and a
	// wrong value fails at once instead of burning further attempts.
	PINEnv string
	// Notice receives touch requests and wrong-PIN messages. Nil means os.Stderr.
	Notice io.Writer
}

func (o *Options) notice() io.Writer {
	if o.Notice == nil {
		return os.Stderr
	}
	return o.Notice
}

// WrongPINError is a PIN the card rejected.
type WrongPINError struct {
	// Retries is the number of attempts left before the PIN blocks.
	Retries int
}

func (e *WrongPINError) Error() string {
	s := "s"
	if e.Retries == 1 {
		s = ""
	}
	return fmt.Sprintf("wrong smart card PIN: %d attempt%s left before the PIN is blocked", e.Retries, s)
}

// ErrPINBlocked is a PIN with no attempts left.
var ErrPINBlocked = errors.New("the smart card PIN is blocked after too many wrong attempts. " +
	"Unblock it with the PUK and set a new PIN: `ykman piv access unblock-pin` or " +
	"`yubico-piv-tool -a unblock-pin`. If the PUK is blocked too, only a reset of the PIV " +
	"application helps, and it erases every key on the card")

// ErrUnsupported is returned by builds without smart-card support.
var ErrUnsupported = errors.New("this build of farsign has no smart card support (it needs cgo and libpcsclite)")

// ErrNoDevice is returned when no PIV smart card is connected.
var ErrNoDevice = errors.New("no PIV smart card found: is the YubiKey plugged in, and is the PC/SC service (pcscd) running?")

// MultipleDevicesError asks the user to choose among several cards.
type MultipleDevicesError struct{ Serials []uint32 }

func (e *MultipleDevicesError) Error() string {
	s := make([]string, len(e.Serials))
	for i, v := range e.Serials {
		s[i] = fmt.Sprint(v)
	}
	return fmt.Sprintf("%d smart cards are connected (serials %s): choose one with --smartcard-serial", len(e.Serials), strings.Join(s, ", "))
}

// DeviceInfo describes one card found by Scan.
type DeviceInfo struct {
	Reader  string
	Serial  uint32
	Version string
	Slots   []SlotInfo
	// Err is set when the reader's card could not be read as a PIV device.
	Err error
}

// SlotInfo describes one slot of a card.
type SlotInfo struct {
	Slot Slot
	// Certificate is the certificate stored for the slot, nil if none.
	Certificate *x509.Certificate
	// CertificateErr reports an object that is present but unreadable.
	CertificateErr error
	// Key is the key's metadata; nil when the slot is empty or the card's
	// firmware cannot report it (YubiKey before 5.3).
	Key *KeyInfo
}

// KeyInfo is the public metadata of a key in a slot.
type KeyInfo struct {
	Algorithm   string // "rsa2048", "p256", ...
	PINPolicy   PINPolicy
	TouchPolicy TouchPolicy
	// Generated reports a key generated on the card (as opposed to imported):
	// it has never existed outside the device.
	Generated bool
	Public    crypto.PublicKey
}

// TerminalPrompt returns a PINPrompt that reads the PIN from the controlling
// terminal without echo (see internal/ttyprompt), so a join string can still be
// piped in. The question names the attempts left when the card has reported them.
// With no terminal it fails and points at --smartcard-pin-env.
func TerminalPrompt() func(ctx context.Context, retries int) (string, error) {
	return func(ctx context.Context, retries int) (string, error) {
		question := "Smart card PIN: "
		switch {
		case retries == 1:
			question = "Smart card PIN (LAST attempt before the PIN blocks): "
		case retries > 1:
			question = fmt.Sprintf("Smart card PIN (%d attempts left): ", retries)
		}
		pin, err := ttyprompt.ReadSecret(ctx, question)
		switch {
		case errors.Is(err, ttyprompt.ErrNoTerminal):
			return "", errors.New("the smart card needs its PIN and there is no terminal to ask on: name an environment variable holding it with --smartcard-pin-env")
		case err != nil && ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil:
			return "", fmt.Errorf("reading the PIN: %w", err)
		}
		defer clear(pin)
		return string(pin), nil
	}
}
