package cms

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/farsign/farsign/internal/applecert"
)

// Run with: go test -run '^$' -bench . -benchtime 200x ./agent/cms/
// The baseline is a bare RSA PKCS #1 v1.5 signature over the same message: Sign's
// ratio to it is the price of building, parsing and verifying around the signature.

func benchAttrs(b *testing.B) []byte {
	cd := testCD(b, 1<<20)
	return attrsFor(b, cd)
}

func BenchmarkBaselineRSASignPKCS1v15(b *testing.B) {
	id := selfSigned(b, applecert.RSA2048)
	msg := benchAttrs(b)
	key := id.key.(*rsa.PrivateKey)
	b.ResetTimer()
	for b.Loop() {
		d := sha256.Sum256(msg)
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []applecert.KeyAlgorithm{applecert.RSA2048, applecert.ECDSAP256} {
		b.Run(string(alg), func(b *testing.B) {
			id := selfSigned(b, alg)
			msg := benchAttrs(b)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Sign(context.Background(), msg, id.key, id.cert, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseVerifyNode(b *testing.B) {
	raw := readTestdata(b, "node-cms.der")
	for b.Loop() {
		sd, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := sd.VerifyTimestamp(applecert.AppleRoots()); err != nil {
			b.Fatal(err)
		}
	}
}
