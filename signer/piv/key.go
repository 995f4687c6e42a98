//go:build cgo || windows

package piv

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sync"
	"time"

	ykpiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/farsign/farsign/signer/keysource"
)

// Key is a private key in a PIV slot, with the slot's certificate. It implements
// keysource.Key. Keys in RSA slots are returned as *RSAKey, which also implements
// crypto.Decrypter for publickey0 sessions.
//
// A Key is safe for concurrent use; operations on the card are serialised.
type Key struct {
	mu      sync.Mutex
	ctx     context.Context
	opts    Options
	dev     *Device
	ownsDev bool
	slot    Slot
	cert    *x509.Certificate
	pub     crypto.PublicKey

	pinPolicy   PINPolicy
	touchPolicy TouchPolicy
	verified    bool   // PIN verified on the current connection (PIN-once slots)
	cachedPIN   []byte // PIN-once slots: to re-verify after a reconnect without asking again
	lastTouch   time.Time
	broken      error
}

// RSAKey is a Key whose slot holds an RSA key; it can also decrypt.
type RSAKey struct{ *Key }

var (
	_ keysource.Key    = (*Key)(nil)
	_ keysource.Key    = (*RSAKey)(nil)
	_ crypto.Decrypter = (*RSAKey)(nil)
)

// Open finds the card (Options.Serial, or the only one connected), checks that
// the slot holds a certificate whose public key matches the slot's key, and
// returns the key: an *RSAKey for RSA slots, a *Key otherwise. ctx bounds PIN
// prompts for the key's lifetime. Nothing is asked or verified yet: the PIN is
// requested by the first operation that needs it.
func Open(ctx context.Context, opts Options) (keysource.Key, error) {
	slot, err := ParseSlot(opts.Slot)
	if err != nil {
		return nil, err
	}
	dev, err := OpenDevice(opts.Serial)
	if err != nil {
		return nil, err
	}
	k, err := openKey(ctx, dev, slot, opts)
	if err != nil {
		dev.Close()
		return nil, err
	}
	k.ownsDev = true
	if _, ok := k.pub.(*rsa.PublicKey); ok {
		return &RSAKey{k}, nil
	}
	return k, nil
}

func openKey(ctx context.Context, dev *Device, slot Slot, opts Options) (*Key, error) {
	yk, err := dev.open()
	if err != nil {
		return nil, err
	}
	cert, err := yk.Certificate(slot.piv())
	if errors.Is(err, ykpiv.ErrNotFound) {
		return nil, fmt.Errorf("slot %s of smart card %d holds no certificate: generate a key with `signer smartcard-generate-key --smartcard-slot %s` or import one with `signer smartcard-import`", slot, dev.serial, slot)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the certificate in slot %s of smart card %d: %w", slot, dev.serial, err)
	}
	if err := checkKeyType(cert.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate in slot %s: %w", slot, err)
	}
	k, err := newKey(ctx, dev, slot, cert.PublicKey, opts)
	if err != nil {
		return nil, err
	}
	k.cert = cert
	return k, nil
}

// newKey prepares a key handle for slot, learning its PIN and touch policies.
// When the card can report the slot's public key it must equal pub: a slot whose
// key was regenerated without replacing the certificate would otherwise produce
// signatures nobody can verify.
func newKey(ctx context.Context, dev *Device, slot Slot, pub crypto.PublicKey, opts Options) (*Key, error) {
	k := &Key{ctx: ctx, opts: opts, dev: dev, slot: slot, pub: pub}
	info, err := dev.keyInfo(slot)
	switch {
	case err != nil:
		// Firmware that reports neither metadata nor attestation: assume the
		// strictest policy so the PIN is verified before every operation.
		k.pinPolicy, k.touchPolicy = PINAlways, TouchNever
	case info == nil:
		return nil, fmt.Errorf("slot %s of smart card %d has a certificate but no private key", slot, dev.serial)
	default:
		if info.Public != nil && !publicKeysEqual(info.Public, pub) {
			return nil, fmt.Errorf("the certificate in slot %s of smart card %d does not match the key in that slot (was the key regenerated?): import the matching certificate with `signer smartcard-import --existing-key`", slot, dev.serial)
		}
		k.pinPolicy, k.touchPolicy = info.PINPolicy, info.TouchPolicy
		if k.pinPolicy != PINNever && k.pinPolicy != PINOnce && k.pinPolicy != PINAlways {
			return nil, fmt.Errorf("slot %s uses PIN policy %q (biometric), which farsign does not support", slot, k.pinPolicy)
		}
	}
	return k, nil
}

// Signer returns a signer for the key in slot using this device's connection
// (it does not need a certificate in the slot: generating a key and self-signing
// its first certificate uses it). pub is the slot's public key. Closing the
// signer does not close the device.
func (d *Device) Signer(ctx context.Context, slot Slot, pub crypto.PublicKey, opts Options) (crypto.Signer, error) {
	if err := checkKeyType(pub); err != nil {
		return nil, err
	}
	return newKey(ctx, d, slot, pub, opts)
}

func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 1024, 2048, 3072, 4096:
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
	}
	return fmt.Errorf("unsupported key type %s (want RSA or ECDSA P-256/P-384)", publicKeyAlgorithm(pub))
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// Public returns the slot's public key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Certificate returns the slot's certificate.
func (k *Key) Certificate() *x509.Certificate { return k.cert }

// Chain returns nil: a PIV slot holds only the leaf certificate.
func (k *Key) Chain() []*x509.Certificate { return nil }

// Serial returns the serial number of the card holding the key.
func (k *Key) Serial() uint32 { return k.dev.serial }

// Slot returns the key's slot.
func (k *Key) Slot() Slot { return k.slot }

// Policies returns the slot's PIN and touch policies.
func (k *Key) Policies() (PINPolicy, TouchPolicy) { return k.pinPolicy, k.touchPolicy }

// Close forgets any PIN held for re-verification and releases the card (if
// this key opened it). It is safe to call twice.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.forgetPIN()
	if k.broken == nil {
		k.broken = errors.New("smart card key is closed")
	}
	if k.ownsDev {
		k.ownsDev = false
		return k.dev.Close()
	}
	return nil
}

func (k *Key) usable() error {
	if k.broken != nil {
		return k.broken
	}
	_, err := k.dev.open()
	return err
}

// Sign signs digest with the card, verifying the PIN first if the slot's policy
// requires it, and announcing a touch if the slot requires one. opts follow
// crypto.Signer: the hash that produced digest; *rsa.PSSOptions selects PSS.
func (k *Key) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return nil, err
	}
	sig, err := k.sign(rand, digest, opts)
	if err != nil && securityStatusNotSatisfied(err) && k.pinPolicy == PINOnce && k.verified {
		// The card lost the PIN state (another program reset it, or a
		// reconnect): verify again and retry once.
		k.verified = false
		sig, err = k.sign(rand, digest, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("signing with smart card %d slot %s: %w", k.dev.serial, k.slot, k.explain(err))
	}
	return sig, nil
}

func (k *Key) sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	yk, err := k.dev.open()
	if err != nil {
		return nil, err
	}
	if err := k.authorize(yk, false); err != nil {
		return nil, err
	}
	// piv-go is told the PIN policy is "never": this package has just verified
	// the PIN itself (with retries reporting and the env-var rule), so piv-go
	// must not prompt or verify again.
	priv, err := yk.PrivateKey(k.slot.piv(), k.pub, ykpiv.KeyAuth{PINPolicy: ykpiv.PINPolicyNever})
	if err != nil {
		return nil, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("slot key cannot sign")
	}
	k.touchNotice("signature")
	sig, err := signer.Sign(rand, digest, opts)
	if err == nil {
		k.touched()
	}
	return sig, err
}

// Decrypt decrypts an RSA-OAEP ciphertext with the card; opts must be
// *rsa.OAEPOptions (publickey0 uses SHA-256 with MGF1-SHA-256 and an empty
// label). The card performs the raw RSA operation; the padding is removed here
// in constant time. PKCS #1 v1.5 decryption is refused (see padding.go).
func (k *RSAKey) Decrypt(rand io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return nil, err
	}
	if _, ok := opts.(*rsa.OAEPOptions); !ok {
		return nil, fmt.Errorf("smart card keys decrypt RSA-OAEP only (got options %T)", opts)
	}
	pub := k.pub.(*rsa.PublicKey)
	if len(ciphertext) != pub.Size() || new(big.Int).SetBytes(ciphertext).Cmp(pub.N) >= 0 {
		return nil, errDecryption
	}
	em, err := k.rawRSA(ciphertext)
	if err != nil {
		return nil, fmt.Errorf("decrypting with smart card %d slot %s: %w", k.dev.serial, k.slot, k.explain(err))
	}
	return unpad(em, opts)
}

// authorize verifies the PIN if the slot's policy requires it now.
func (k *Key) authorize(v pinVerifier, fresh bool) error {
	switch k.pinPolicy {
	case PINNever:
		return nil
	case PINOnce:
		if k.verified && !fresh {
			return nil
		}
	}
	if err := k.login(v); err != nil {
		return err
	}
	k.verified = true
	return nil
}

// touchNotice tells the user to touch the card before an operation that will
// wait for it; a cached touch is good for 15 seconds.
func (k *Key) touchNotice(what string) {
	switch k.touchPolicy {
	case TouchAlways:
	case TouchCached:
		if time.Since(k.lastTouch) < 15*time.Second {
			return
		}
	default:
		return
	}
	fmt.Fprintf(k.opts.notice(), "Touch the smart card (serial %d) now to approve the %s with slot %s: it is blinking and waits about 15 seconds.\n", k.dev.serial, what, k.slot)
}

func (k *Key) touched() {
	if k.touchPolicy != TouchNever {
		k.lastTouch = time.Now()
	}
}

// explain turns card status words into what the user should know.
func (k *Key) explain(err error) error {
	if securityStatusNotSatisfied(err) && k.touchPolicy != TouchNever {
		return fmt.Errorf("the card refused the operation; was it touched in time? (%w)", err)
	}
	return err
}

func securityStatusNotSatisfied(err error) bool {
	var st interface{ Status() uint16 }
	return errors.As(err, &st) && st.Status() == 0x6982
}

// pinVerifier is what login needs from a card connection; *ykpiv.YubiKey has it.
type pinVerifier interface {
	VerifyPIN(pin string) error
	Retries() (int, error)
}

// login obtains the PIN (environment variable named by the user, PIN held from
// an earlier entry on a PIN-once slot, or the prompt) and verifies it.
func (k *Key) login(v pinVerifier) error {
	if name := k.opts.PINEnv; name != "" {
		pin := os.Getenv(name)
		if pin == "" {
			return fmt.Errorf("--smartcard-pin-env %s: the environment variable is not set or empty", name)
		}
		// No second chance: retrying a wrong PIN from a variable would only burn
		// the remaining attempts.
		if err := k.pinErr(v.VerifyPIN(pin)); err != nil {
			return fmt.Errorf("PIN from $%s: %w", name, err)
		}
		return nil
	}
	if k.cachedPIN != nil {
		err := k.pinErr(v.VerifyPIN(string(k.cachedPIN)))
		if err == nil {
			return nil
		}
		k.forgetPIN()
		var wrong *WrongPINError
		if !errors.As(err, &wrong) {
			return err
		}
	}
	prompt := k.opts.PINPrompt
	if prompt == nil {
		prompt = TerminalPrompt()
	}
	for {
		retries := -1
		if n, err := v.Retries(); err == nil {
			retries = n
		}
		if retries == 0 {
			return k.pinErr(ykpiv.AuthErr{Retries: 0})
		}
		pin, err := prompt(k.ctx, retries)
		if err != nil {
			return err
		}
		if pin == "" {
			return errors.New("no PIN entered")
		}
		err = k.pinErr(v.VerifyPIN(pin))
		if err == nil {
			if k.pinPolicy == PINOnce {
				k.cachedPIN = []byte(pin)
			}
			return nil
		}
		var wrong *WrongPINError
		if !errors.As(err, &wrong) {
			return err
		}
		fmt.Fprintf(k.opts.notice(), "%v\n", err)
	}
}

// pinErr maps the card's answer to a PIN to WrongPINError or ErrPINBlocked.
func (k *Key) pinErr(err error) error {
	if err == nil {
		return nil
	}
	var ae ykpiv.AuthErr
	if errors.As(err, &ae) {
		if ae.Retries == 0 {
			return fmt.Errorf("smart card %d: %w", k.dev.serial, ErrPINBlocked)
		}
		return &WrongPINError{Retries: ae.Retries}
	}
	return err
}

func (k *Key) forgetPIN() {
	for i := range k.cachedPIN {
		k.cachedPIN[i] = 0
	}
	k.cachedPIN = nil
}
