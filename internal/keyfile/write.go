package keyfile

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"software.sslmate.com/src/go-pkcs12"
)

// P12Encoding selects the encryption of a written p12 file.
type P12Encoding int

const (
	// P12Modern uses PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) with an HMAC-SHA-256
	// MAC: OpenSSL 3's default.
	P12Modern P12Encoding = iota
	// P12Legacy uses 3DES with an HMAC-SHA-1 MAC, for software that can't read
	// modern files (macOS Keychain before macOS 15, rcodesign). Weak: protect the
	// file by other means.
	P12Legacy
)

// WritePEM writes the identity's private key (PKCS #8), certificate and chain to one
// new file, readable only by its owner.
func WritePEM(path string, id Identity) error {
	if id.Signer == nil || id.Certificate == nil {
		return errors.New("incomplete identity: key and certificate are required")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Signer)
	if err != nil {
		return fmt.Errorf("encoding private key: %w", err)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}); err != nil {
		return err
	}
	for _, c := range append([]*x509.Certificate{id.Certificate}, id.Chain...) {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return err
		}
	}
	return writeNew(path, buf.Bytes(), 0o600)
}

// WriteCertificatesPEM writes certificates (public data) to a new PEM file.
func WriteCertificatesPEM(path string, certs ...*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("no certificate to write")
	}
	var buf bytes.Buffer
	for _, c := range certs {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return err
		}
	}
	return writeNew(path, buf.Bytes(), 0o644)
}

// WriteP12 writes the identity to a new PKCS #12 file, readable only by its owner,
// encrypted with password.
func WriteP12(path string, id Identity, password []byte, enc P12Encoding) error {
	if id.Signer == nil || id.Certificate == nil {
		return errors.New("incomplete identity: key and certificate are required")
	}
	encoder := pkcs12.Modern
	if enc == P12Legacy {
		encoder = pkcs12.LegacyDES
	}
	data, err := encoder.Encode(id.Signer, id.Certificate, id.Chain, string(password))
	if err != nil {
		return fmt.Errorf("encoding p12: %w", err)
	}
	return writeNew(path, data, 0o600)
}

// writeNew writes data to a file that must not exist yet, atomically: the data goes
// to a temporary file in the same directory (created 0600, so a key is never
// readable by others, even briefly), is synced, and is then linked into place, which
// fails rather than overwrite an existing file. Readers never see a partial file.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		// File systems without hard links: rename (the existence check above
		// leaves only a narrow race).
		if err := os.Rename(name, path); err != nil {
			return err
		}
	}
	return nil
}
