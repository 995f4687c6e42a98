package piv

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
)

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// rawDecrypt is what the card computes: c^d mod n, as a modulus-sized block.
func rawDecrypt(k *rsa.PrivateKey, ct []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(ct), k.D, k.N)
	return m.FillBytes(make([]byte, k.Size()))
}

func TestDecodeOAEPMatchesCryptoRSA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hash  crypto.Hash
		label []byte
		msgs  []int
	}{
		{"publickey0", crypto.SHA256, nil, []int{16, 0, 1, 190}},
		{"label", crypto.SHA256, []byte("farsign"), []int{16}},
		{"sha1", crypto.SHA1, nil, []int{16, 214}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := sha256.New()
			if tc.hash == crypto.SHA1 {
				h = sha1.New()
			}
			for _, n := range tc.msgs {
				msg := make([]byte, n)
				rand.Read(msg)
				ct, err := rsa.EncryptOAEP(h, rand.Reader, &testKey.PublicKey, msg, tc.label)
				if err != nil {
					t.Fatal(err)
				}
				got, err := unpad(rawDecrypt(testKey, ct), &rsa.OAEPOptions{Hash: tc.hash, Label: tc.label})
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%d-byte message: %x, %v", n, got, err)
				}
				// Wrong label or hash: same single error.
				if _, err := unpad(rawDecrypt(testKey, ct), &rsa.OAEPOptions{Hash: tc.hash, Label: []byte("other")}); err != errDecryption {
					t.Errorf("wrong label: %v", err)
				}
			}
		})
	}
}

func TestDecodeOAEPRejectsCorruption(t *testing.T) {
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &testKey.PublicKey, []byte("sixteen byte key"), nil)
	em := rawDecrypt(testKey, ct)
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256}
	for _, i := range []int{0, 1, 20, 33, 64, 100, 255} {
		bad := append([]byte(nil), em...)
		bad[i] ^= 0x01
		if _, err := unpad(bad, opts); err != errDecryption {
			t.Errorf("flipped byte %d: %v", i, err)
		}
	}
	if _, err := unpad(em[:60], opts); err != errDecryption {
		t.Errorf("short block: %v", err)
	}
}

func TestOnlyOAEP(t *testing.T) {
	em := make([]byte, 256)
	for _, opts := range []crypto.DecrypterOpts{nil, crypto.SHA256} {
		if _, err := unpad(em, opts); err == nil || !strings.Contains(err.Error(), "RSA-OAEP only") {
			t.Errorf("options %T: %v", opts, err)
		}
	}
}

func FuzzDecodeOAEP(f *testing.F) {
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &testKey.PublicKey, []byte("sixteen byte key"), nil)
	f.Add(rawDecrypt(testKey, ct))
	f.Add(make([]byte, 256))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, em []byte) {
		out, err := decodeOAEP(crypto.SHA256, crypto.SHA256, nil, em)
		if err == nil && len(out) > len(em)-2*32-2 {
			t.Fatalf("message of %d bytes from a %d-byte block", len(out), len(em))
		}
	})
}
