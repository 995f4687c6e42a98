package remote

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxPublicKeyFile bounds --remote-public-key-pem-file; a certificate chain in
// PEM is a few KB.
const maxPublicKeyFile = 256 << 10

// ParsePublicKey decodes rcodesign's --remote-public-key value: standard
// base64 of a DER SubjectPublicKeyInfo. It returns the DER, checked to parse.
func ParsePublicKey(b64 string) ([]byte, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, errors.New("--remote-public-key is not standard base64 (give the base64 of a DER public key, or use --remote-public-key-pem-file)")
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		return nil, fmt.Errorf("--remote-public-key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	return der, nil
}

// ReadPublicKeyPEM reads rcodesign's --remote-public-key-pem-file: the first
// PUBLIC KEY block (what `signer analyze-certificate` prints) or, failing
// that, the first CERTIFICATE's key. Indented blocks, as pasted from
// `signer smartcard-scan`, are accepted. It returns the DER
// SubjectPublicKeyInfo.
func ReadPublicKeyPEM(path string) ([]byte, error) {
	data, err := readSmallFile(path, maxPublicKeyFile, "public key")
	if err != nil {
		return nil, err
	}
	spki, err := parsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spki, nil
}

// readSmallFile reads a key or certificate file of at most limit bytes; what
// is larger is not such a file, and is not read into memory.
func readSmallFile(path string, limit int, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, limit+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a %s file", path, limit, what)
	}
	return buf[:n], nil
}

// unindent removes leading blanks from every line, so that PEM blocks pasted
// with indentation (as `signer smartcard-scan` and `signer
// analyze-certificate` print them) decode.
func unindent(data []byte) []byte {
	var text strings.Builder
	for line := range strings.Lines(string(data)) {
		text.WriteString(strings.TrimLeft(line, " \t"))
	}
	return []byte(text.String())
}

// parsePublicKeyPEM is ReadPublicKeyPEM's decoder.
func parsePublicKeyPEM(data []byte) ([]byte, error) {
	rest := unindent(data)
	var certSPKI []byte
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PUBLIC KEY":
			if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
				return nil, fmt.Errorf("PUBLIC KEY block: %v", err)
			}
			return b.Bytes, nil
		case "CERTIFICATE":
			if certSPKI == nil {
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					return nil, fmt.Errorf("CERTIFICATE block: %v", err)
				}
				certSPKI = c.RawSubjectPublicKeyInfo
			}
		}
	}
	if certSPKI != nil {
		return certSPKI, nil
	}
	return nil, errors.New("no PUBLIC KEY or CERTIFICATE block (print one with `signer analyze-certificate`)")
}
