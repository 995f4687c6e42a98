package keysource

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"sync"

	"github.com/farsign/farsign/internal/keyfile"
)

// ErrClosed is returned by a file key used after Close.
var ErrClosed = errors.New("key source is closed")

// fileKey is a key held in memory, loaded from a PEM or p12 file.
type fileKey struct {
	mu     sync.RWMutex
	signer crypto.Signer // nil after Close
	pub    crypto.PublicKey
	cert   *x509.Certificate
	chain  []*x509.Certificate
}

// rsaFileKey is a fileKey with an RSA key: it can also decrypt, which is what
// joining a publickey0 session needs.
type rsaFileKey struct{ *fileKey }

var (
	_ Key              = (*fileKey)(nil)
	_ crypto.Decrypter = rsaFileKey{}
)

// FromIdentity returns id as a Key. RSA keys also implement crypto.Decrypter.
func FromIdentity(id keyfile.Identity) (Key, error) {
	if id.Signer == nil || id.Certificate == nil {
		return nil, errors.New("key source: an identity needs a private key and its certificate")
	}
	k := &fileKey{signer: id.Signer, pub: id.Signer.Public(), cert: id.Certificate, chain: id.Chain}
	if _, ok := id.Signer.(*rsa.PrivateKey); ok {
		return rsaFileKey{k}, nil
	}
	return k, nil
}

// LoadPEM loads a key and its certificates from PEM files (in one file, or
// split across several, as rcodesign's repeatable --pem-source allows).
func LoadPEM(paths ...string) (Key, error) {
	id, err := keyfile.LoadPEM(paths...)
	if err != nil {
		return nil, err
	}
	return FromIdentity(id)
}

// LoadP12 loads a key and its certificates from a PKCS #12 file.
func LoadP12(path string, password []byte) (Key, error) {
	id, err := keyfile.LoadP12(path, password)
	if err != nil {
		return nil, err
	}
	return FromIdentity(id)
}

func (k *fileKey) Public() crypto.PublicKey { return k.pub }

func (k *fileKey) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signer == nil {
		return nil, ErrClosed
	}
	return k.signer.Sign(rand, digest, opts)
}

func (k *fileKey) Certificate() *x509.Certificate { return k.cert }

func (k *fileKey) Chain() []*x509.Certificate { return append([]*x509.Certificate(nil), k.chain...) }

// Close drops the reference to the private key. Go cannot reliably wipe a key
// from memory; this at least makes later use fail loudly.
func (k *fileKey) Close() error {
	k.mu.Lock()
	k.signer = nil
	k.mu.Unlock()
	return nil
}

// Decrypt decrypts with the RSA key (RSA-OAEP with *rsa.OAEPOptions, as
// publickey0 uses).
func (k rsaFileKey) Decrypt(rand io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signer == nil {
		return nil, ErrClosed
	}
	return k.signer.(*rsa.PrivateKey).Decrypt(rand, ciphertext, opts)
}
