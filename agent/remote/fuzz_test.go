package remote

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/protocol/peer"
)

// FuzzCheckSignature: whatever a (hostile) signer returns, checkSignature
// accepts only a signature that really verifies. The seed corpus holds the
// one valid answer; every mutation of it must be refused.
func FuzzCheckSignature(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	msg := []byte("signed attributes")
	d := sha256.Sum256(msg)
	good, _ := ecdsa.SignASN1(rand.Reader, key, d[:])
	goodOID, _ := peer.MarshalOID(peer.OIDECDSAWithSHA256)
	f.Add(msg, good, goodOID)
	f.Add([]byte{}, good, goodOID)
	rsaOID, _ := peer.MarshalOID(peer.OIDSHA256WithRSA)
	f.Add(msg, good, rsaOID)
	f.Add(msg, []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, goodOID)
	want, _ := expectedAlgorithm(cert.PublicKey, crypto.SHA256)
	f.Fuzz(func(t *testing.T, echo, sig, oidDER []byte) {
		oid, err := peer.ParseOID(oidDER)
		if err != nil {
			return
		}
		err = checkSignature(cert, want, msg, &peer.Signature{Message: echo, Signature: sig, AlgorithmOID: oid})
		if err != nil {
			return
		}
		if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) || !oid.Equal(peer.OIDECDSAWithSHA256) ||
			(len(echo) != 0 && !bytes.Equal(echo, msg)) {
			t.Fatalf("accepted an invalid answer: echo=%x sig=%x oid=%v", echo, sig, oid)
		}
	})
}

// FuzzParsePublicKeyPEM: whatever file is given as
// --remote-public-key-pem-file, the decoder never panics and returns only a
// public key that parses.
func FuzzParsePublicKeyPEM(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	f.Add([]byte("  -----BEGIN PUBLIC KEY-----\n  AAAA\n  -----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parsePublicKeyPEM(data)
		if err != nil {
			return
		}
		if _, err := x509.ParsePKIXPublicKey(got); err != nil {
			t.Fatalf("returned a key that does not parse: %v", err)
		}
	})
}

// FuzzParseFingerprint: whatever follows "sha256:" in
// --remote-expect-certificate, the parser never panics and accepts only 32
// bytes written as 64 hex digits, bare or in colon-separated pairs, which it
// decodes exactly.
func FuzzParseFingerprint(f *testing.F) {
	sum := sha256.Sum256([]byte("certificate"))
	h := hex.EncodeToString(sum[:])
	f.Add(h)
	f.Add(strings.ToUpper(h))
	f.Add(colonHex(sum[:]))
	f.Add(h[:62])
	f.Add("zz" + h[2:])
	f.Add(":" + h)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseFingerprint(s)
		if err != nil {
			return
		}
		digits := strings.ReplaceAll(s, ":", "")
		if (digits != s && len(s) != 3*sha256.Size-1) || len(digits) != 2*sha256.Size {
			t.Fatalf("accepted %q", s)
		}
		if e.Fingerprint() != "sha256:"+strings.ToLower(digits) {
			t.Fatalf("%q decoded as %s", s, e.Fingerprint())
		}
	})
}

// FuzzParseCertificateFile: whatever file is given to
// --remote-expect-certificate, the decoder never panics and returns only a
// certificate that parses from its own DER.
func FuzzParseCertificateFile(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	f.Add(der)
	f.Add(certPEM)
	f.Add(append(append([]byte{}, certPEM...), certPEM...))
	f.Add([]byte("  -----BEGIN CERTIFICATE-----\n  AAAA\n  -----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCertificateFile(data)
		if err != nil {
			return
		}
		if _, err := x509.ParseCertificate(c.Raw); err != nil {
			t.Fatalf("returned a certificate that does not parse: %v", err)
		}
	})
}
