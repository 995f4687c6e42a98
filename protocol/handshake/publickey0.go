package handshake

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/farsign/farsign/protocol/sjs"
)

// RSA modulus sizes publickey0 accepts: rcodesign's initiator verifies only
// RSA ≥ 2048 signatures, and its signer decrypts only up to 4096 bits.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

const (
	aesKeySize    = 16
	challengeSize = 32
)

// gcmNonce is rcodesign's fixed AES-GCM nonce. It is safe only because every AES
// key encrypts exactly one message; never reuse it with a key used twice.
var gcmNonce = []byte{0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42}

var oaepOptions = &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}

// SPKIFingerprint returns the lowercase hex SHA-256 of a DER SubjectPublicKeyInfo,
// the same as `openssl pkey -pubin -outform DER | sha256sum`.
func SPKIFingerprint(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// KeyMismatchError reports a publickey0 join string made for another key. It
// matches ErrWrongKey.
type KeyMismatchError struct {
	// JoinStringKey and SignerKey are SPKIFingerprint values.
	JoinStringKey, SignerKey string
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("this join string was made for a different key: it is encrypted to the public key with SHA-256 fingerprint %s, but this signer's key has fingerprint %s",
		e.JoinStringKey, e.SignerKey)
}

// Is makes errors.Is(err, ErrWrongKey) true.
func (e *KeyMismatchError) Is(target error) bool { return target == ErrWrongKey }

// parseRSASPKI parses a DER SPKI and checks that publickey0 can use it.
func parseRSASPKI(spki []byte) (*rsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("signer public key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	return checkRSA(pub, "signer public key")
}

func checkRSA(pub crypto.PublicKey, what string) (*rsa.PublicKey, error) {
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("publickey0 needs an RSA key, but the %s is %s", what, describeKey(pub))
	}
	if bits := rsaPub.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
		return nil, fmt.Errorf("the %s is RSA-%d; publickey0 needs RSA-%d to RSA-%d", what, bits, MinRSABits, MaxRSABits)
	}
	return rsaPub, nil
}

func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "an ECDH key"
	}
	return fmt.Sprintf("a %T", pub)
}

// NewPublicKey0 starts a publickey0 agreement for the signer whose DER
// SubjectPublicKeyInfo is signerSPKI (an RSA key). relayURL is put in the join
// string so the signer connects to the same relay; "" leaves it out (null), and
// the signer then uses its own configured relay.
func NewPublicKey0(signerSPKI []byte, relayURL string) (*Initiator, error) {
	sessionID, err := newSessionID()
	if err != nil {
		return nil, err
	}
	secrets := make([]byte, challengeSize+aesKeySize)
	if _, err := rand.Read(secrets); err != nil {
		return nil, err
	}
	defer clear(secrets)
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return newPublicKey0(signerSPKI, relayURL, sessionID, secrets[:challengeSize], secrets[challengeSize:], priv)
}

// newPublicKey0 is NewPublicKey0 with every random value supplied, for the test
// vectors. It does not retain aesKey.
func newPublicKey0(signerSPKI []byte, relayURL, sessionID string, challenge, aesKey []byte, priv *ecdh.PrivateKey) (*Initiator, error) {
	pub, err := parseRSASPKI(signerSPKI)
	if err != nil {
		return nil, fmt.Errorf("publickey0: %w", err)
	}
	if relayURL != "" {
		if err := checkRelayURL(relayURL); err != nil {
			return nil, fmt.Errorf("publickey0: %w", err)
		}
	}
	plaintext, err := sjs.MarshalPublicKey0Message(&sjs.PublicKey0Message{
		ServerURL:       relayURL,
		SessionID:       sessionID,
		Challenge:       challenge,
		AgreementPublic: priv.PublicKey().Bytes(),
	})
	if err != nil {
		return nil, fmt.Errorf("publickey0: %w", err)
	}
	defer clear(plaintext)
	gcm, err := newGCM(aesKey)
	if err != nil {
		return nil, err
	}
	encKey, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, aesKey, nil)
	if err != nil {
		return nil, fmt.Errorf("publickey0: RSA-OAEP encryption: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	raw, err := sjs.Marshal(&sjs.PublicKey0{
		EncryptedKey:     encKey,
		SignerPublicKey:  spki,
		EncryptedMessage: gcm.Seal(nil, gcmNonce, plaintext, nil),
	})
	if err != nil {
		return nil, err
	}
	return &Initiator{
		scheme:     sjs.SchemePublicKey0,
		sessionID:  sessionID,
		extraID:    append([]byte(nil), challenge...),
		joinString: raw,
		contextLen: 32,
		finish: func(peer []byte) ([]byte, error) {
			bPub, err := ecdh.X25519().NewPublicKey(peer)
			if err != nil {
				return nil, fmt.Errorf("signer's X25519 key: %w", err)
			}
			shared, err := priv.ECDH(bPub)
			if err != nil {
				return nil, fmt.Errorf("signer's X25519 key is unusable (low order): %w", err)
			}
			return shared, nil
		},
	}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != aesKeySize {
		return nil, fmt.Errorf("AES key is %d bytes, want %d", len(key), aesKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// JoinPublicKey0 joins a publickey0 session as the signer. key must be the RSA
// key the join string was made for: a local *rsa.PrivateKey or any
// crypto.Decrypter (a PIV card) that supports RSA-OAEP with SHA-256 and
// MGF1-SHA-256. A join string made for a different public key is refused with a
// *KeyMismatchError before the key is used.
func JoinPublicKey0(js *sjs.PublicKey0, key crypto.Decrypter) (*Joiner, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return joinPublicKey0(js, key, priv)
}

func joinPublicKey0(js *sjs.PublicKey0, key crypto.Decrypter, priv *ecdh.PrivateKey) (*Joiner, error) {
	j, err := joinPublicKey0Inner(js, key, priv)
	if err != nil {
		return nil, fmt.Errorf("publickey0: %w", err)
	}
	return j, nil
}

func joinPublicKey0Inner(js *sjs.PublicKey0, key crypto.Decrypter, priv *ecdh.PrivateKey) (*Joiner, error) {
	ours, err := checkRSA(key.Public(), "signer's key")
	if err != nil {
		return nil, err
	}
	oursDER, err := x509.MarshalPKIXPublicKey(ours)
	if err != nil {
		return nil, err
	}
	theirs, err := x509.ParsePKIXPublicKey(js.SignerPublicKey)
	if err != nil {
		return nil, fmt.Errorf("join string's signer public key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	if !ours.Equal(theirs) {
		// Fingerprint the canonical re-encoding so it matches what openssl prints.
		theirsDER, err := x509.MarshalPKIXPublicKey(theirs)
		if err != nil {
			theirsDER = js.SignerPublicKey
		}
		return nil, &KeyMismatchError{JoinStringKey: SPKIFingerprint(theirsDER), SignerKey: SPKIFingerprint(oursDER)}
	}

	aesKey, err := key.Decrypt(rand.Reader, js.EncryptedKey, oaepOptions)
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt the join string's key with this signer's key (RSA-OAEP-SHA256): %w", err)
	}
	defer clear(aesKey)
	gcm, err := newGCM(aesKey)
	if err != nil {
		return nil, fmt.Errorf("join string's decrypted key: %w", err)
	}
	plaintext, err := gcm.Open(nil, gcmNonce, js.EncryptedMessage, nil)
	if err != nil {
		return nil, errors.New("join string is corrupt: its sealed message does not decrypt (AES-GCM authentication failed)")
	}
	defer clear(plaintext)
	msg, err := sjs.UnmarshalPublicKey0Message(plaintext)
	if err != nil {
		return nil, err
	}
	if msg.ServerURL != "" {
		if err := checkRelayURL(msg.ServerURL); err != nil {
			return nil, fmt.Errorf("join string: %w", err)
		}
	}
	aPub, err := ecdh.X25519().NewPublicKey(msg.AgreementPublic)
	if err != nil {
		return nil, fmt.Errorf("initiator's X25519 key: %w", err)
	}
	shared, err := priv.ECDH(aPub)
	if err != nil {
		return nil, fmt.Errorf("initiator's X25519 key is unusable (low order): %w", err)
	}
	ch, err := newChannel('B', shared, msg.SessionID, msg.Challenge)
	if err != nil {
		return nil, err
	}
	clear(msg.Challenge)
	return &Joiner{
		scheme:    sjs.SchemePublicKey0,
		sessionID: msg.SessionID,
		serverURL: msg.ServerURL,
		context:   base64.StdEncoding.EncodeToString(priv.PublicKey().Bytes()),
		ch:        ch,
	}, nil
}
