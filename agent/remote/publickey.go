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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxPublicKeyFile+1)
	n, _ := io.ReadFull(f, buf)
	if n > maxPublicKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a public key file", path, maxPublicKeyFile)
	}
	spki, err := parsePublicKeyPEM(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spki, nil
}

// parsePublicKeyPEM is ReadPublicKeyPEM's decoder.
func parsePublicKeyPEM(data []byte) ([]byte, error) {
	var text strings.Builder
	for line := range strings.Lines(string(data)) {
		text.WriteString(strings.TrimLeft(line, " \t"))
	}
	rest := []byte(text.String())
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
