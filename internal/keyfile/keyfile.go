// Package keyfile loads and writes signing identities — a private key, its
// certificate and the issuing chain — in the two file formats code-signing keys
// travel in: PKCS #12 (.p12, what Keychain Access exports) and PEM.
//
// Loading is strict about what matters and explains failures: a wrong p12 password,
// a key that matches none of the certificates, a missing key or certificate, or a key
// type Apple code signing cannot use are each their own error naming the file. The
// certificate whose public key matches the private key is the leaf; every other
// certificate is chain, ordered from the leaf's issuer upward.
package keyfile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// Identity is a signing key with its certificate and chain.
type Identity struct {
	// Signer is the private key (an *rsa.PrivateKey or *ecdsa.PrivateKey for
	// files loaded here).
	Signer crypto.Signer
	// Certificate is the certificate of Signer's public key.
	Certificate *x509.Certificate
	// Chain holds the other certificates, the leaf's issuer first.
	Chain []*x509.Certificate
}

// MaxFileSize bounds the files this package reads; key files are a few KB.
const MaxFileSize = 1 << 20

// ErrWrongPassword is wrapped by LoadP12 when the password does not open the file.
var ErrWrongPassword = errors.New("wrong password")

// LoadPEM loads an identity from one or more PEM files holding, between them, exactly
// one private key (PKCS #8 "PRIVATE KEY", PKCS #1 "RSA PRIVATE KEY" or SEC 1 "EC
// PRIVATE KEY", unencrypted) and one or more certificates.
func LoadPEM(paths ...string) (Identity, error) {
	if len(paths) == 0 {
		return Identity{}, errors.New("no PEM file given")
	}
	files := make([]namedData, len(paths))
	for i, path := range paths {
		data, err := readFile(path)
		if err != nil {
			return Identity{}, err
		}
		files[i] = namedData{path, data}
	}
	return parsePEM(files)
}

// namedData is a file's contents and the name errors use for it.
type namedData struct {
	name string
	data []byte
}

// parsePEM is LoadPEM after reading the files.
func parsePEM(files []namedData) (Identity, error) {
	var key crypto.Signer
	var keyFile string
	var certs []*x509.Certificate
	var paths []string
	for _, file := range files {
		path, data := file.name, file.data
		paths = append(paths, path)
		rest := data
		found := false
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			found = true
			switch block.Type {
			case "CERTIFICATE":
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return Identity{}, fmt.Errorf("%s: certificate: %v", path, err)
				}
				certs = append(certs, c)
			case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
				if _, enc := block.Headers["Proc-Type"]; enc {
					return Identity{}, fmt.Errorf("%s: the private key is encrypted; decrypt it first (openssl pkey -in %s -out key.pem)", path, path)
				}
				if key != nil {
					return Identity{}, fmt.Errorf("%s: a second private key (the first is in %s); give exactly one", path, keyFile)
				}
				k, err := parsePrivateKey(block)
				if err != nil {
					return Identity{}, fmt.Errorf("%s: %v", path, err)
				}
				key, keyFile = k, path
			case "ENCRYPTED PRIVATE KEY":
				return Identity{}, fmt.Errorf("%s: the private key is encrypted; decrypt it first (openssl pkey -in %s -out key.pem)", path, path)
			case "EC PARAMETERS":
				// openssl ecparam -genkey writes this next to the key; it adds
				// nothing the key doesn't say.
			default:
				return Identity{}, fmt.Errorf("%s: unexpected PEM block %q (want CERTIFICATE and PRIVATE KEY blocks)", path, block.Type)
			}
		}
		if !found {
			return Identity{}, fmt.Errorf("%s: no PEM data found", path)
		}
	}
	names := strings.Join(paths, ", ")
	if key == nil {
		return Identity{}, fmt.Errorf("no private key found in %s", names)
	}
	if len(certs) == 0 {
		return Identity{}, fmt.Errorf("no certificate found in %s", names)
	}
	return assemble(key, certs, names)
}

func parsePrivateKey(block *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", strings.ToLower(block.Type), err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// LoadP12 loads an identity from a PKCS #12 file, including legacy files encrypted
// with RC2-40 and 3DES (what older Keychain Access exports and `openssl pkcs12
// -legacy` writes) as well as modern AES ones. The password is not retained.
func LoadP12(path string, password []byte) (Identity, error) {
	data, err := readFile(path)
	if err != nil {
		return Identity{}, err
	}
	return parseP12(path, data, password)
}

// parseP12 is LoadP12 after reading the file.
func parseP12(path string, data, password []byte) (Identity, error) {
	key, cert, caCerts, err := pkcs12.DecodeChain(data, string(password))
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return Identity{}, fmt.Errorf("%w for p12 file %s", ErrWrongPassword, path)
		}
		return Identity{}, fmt.Errorf("p12 file %s: %v", path, strings.TrimPrefix(err.Error(), "pkcs12: "))
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return Identity{}, fmt.Errorf("p12 file %s: unsupported private key type %T", path, key)
	}
	return assemble(signer, append([]*x509.Certificate{cert}, caCerts...), path)
}

// assemble checks the key, picks the leaf and orders the chain.
func assemble(key crypto.Signer, certs []*x509.Certificate, files string) (Identity, error) {
	if err := checkKeyType(key.Public()); err != nil {
		return Identity{}, fmt.Errorf("%s: %v", files, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return Identity{}, fmt.Errorf("%s: unsupported private key type %T", files, key)
	}
	leafIdx := -1
	for i, c := range certs {
		if pub.Equal(c.PublicKey) {
			leafIdx = i
			break
		}
	}
	if leafIdx < 0 {
		subjects := make([]string, len(certs))
		for i, c := range certs {
			subjects[i] = fmt.Sprintf("%q", c.Subject.String())
		}
		return Identity{}, fmt.Errorf("%s: the private key does not match any certificate (%s)", files, strings.Join(subjects, ", "))
	}
	leaf := certs[leafIdx]
	var others []*x509.Certificate
	for i, c := range certs {
		if i != leafIdx && !bytes.Equal(c.Raw, leaf.Raw) && !containsCert(others, c) {
			others = append(others, c)
		}
	}
	return Identity{Signer: key, Certificate: leaf, Chain: orderChain(leaf, others)}, nil
}

// checkKeyType accepts the keys Apple code signing can use.
func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 {
			return fmt.Errorf("%d-bit RSA key; Apple code signing needs at least 2048 bits", bits)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve %s (use P-256)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return errors.New("unsupported key type Ed25519: Apple code signing needs RSA-2048 or ECDSA P-256")
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// orderChain puts the certificates that issued leaf first, nearest first, followed by
// any unrelated ones in their original order.
func orderChain(leaf *x509.Certificate, others []*x509.Certificate) []*x509.Certificate {
	var chain []*x509.Certificate
	rest := append([]*x509.Certificate(nil), others...)
	cur := leaf
	for !bytes.Equal(cur.RawSubject, cur.RawIssuer) {
		next := -1
		for i, c := range rest {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		cur = rest[next]
		chain = append(chain, cur)
		rest = append(rest[:next], rest[next+1:]...)
	}
	return append(chain, rest...)
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, l := range list {
		if bytes.Equal(l.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// ReadCertificates reads one or more certificates from a PEM or DER file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("%s: not a PEM file, and not a DER certificate: %v", path, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", path, len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE block found", path)
	}
	return certs, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a key file", path, MaxFileSize)
	}
	return data, nil
}
