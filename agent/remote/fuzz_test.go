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
	"encoding/pem"
	"math/big"
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
