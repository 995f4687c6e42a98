package keysource_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/signer/keysource"
)

func generate(t *testing.T, alg applecert.KeyAlgorithm) keyfile.Identity {
	t.Helper()
	k, c, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileAppleDevelopment, Algorithm: alg, TeamID: "T", PersonName: "P"})
	if err != nil {
		t.Fatal(err)
	}
	return keyfile.Identity{Signer: k, Certificate: c}
}

func TestFileKeys(t *testing.T) {
	rsaID, ecID := generate(t, applecert.RSA2048), generate(t, applecert.ECDSAP256)
	dir := t.TempDir()
	pemPath := filepath.Join(dir, "rsa.pem")
	if err := keyfile.WritePEM(pemPath, rsaID); err != nil {
		t.Fatal(err)
	}
	p12Path := filepath.Join(dir, "ec.p12")
	if err := keyfile.WriteP12(p12Path, ecID, []byte("pw"), keyfile.P12Modern); err != nil {
		t.Fatal(err)
	}
	rsaKey, err := keysource.LoadPEM(pemPath)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := keysource.LoadP12(p12Path, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keysource.LoadP12(p12Path, []byte("wrong")); !errors.Is(err, keyfile.ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}

	for name, k := range map[string]keysource.Key{"rsa": rsaKey, "ecdsa": ecKey} {
		d := sha256.Sum256([]byte("message"))
		sig, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		alg := k.Certificate().SignatureAlgorithm
		if err := k.Certificate().CheckSignature(alg, []byte("message"), sig); err != nil {
			t.Errorf("%s: signature does not verify: %v", name, err)
		}
		if len(k.Chain()) != 0 {
			t.Errorf("%s: chain of a self-signed identity: %d", name, len(k.Chain()))
		}
	}

	// RSA keys decrypt publickey0's RSA-OAEP-SHA256; ECDSA keys cannot.
	dec, err := keysource.Decrypter(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("sixteen byte key")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaKey.Certificate().PublicKey.(*rsa.PublicKey), secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := dec.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
	if err != nil || string(pt) != string(secret) {
		t.Fatalf("OAEP round trip: %q %v", pt, err)
	}
	if _, err := keysource.Decrypter(ecKey); !errors.Is(err, keysource.ErrCannotDecrypt) {
		t.Errorf("ECDSA Decrypter: %v", err)
	}

	// A closed key refuses to work.
	rsaKey.Close()
	rsaKey.Close()
	if _, err := rsaKey.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); !errors.Is(err, keysource.ErrClosed) {
		t.Errorf("Sign after Close: %v", err)
	}
	if _, err := dec.Decrypt(rand.Reader, ct, nil); !errors.Is(err, keysource.ErrClosed) {
		t.Errorf("Decrypt after Close: %v", err)
	}
	if _, err := keysource.FromIdentity(keyfile.Identity{}); err == nil {
		t.Error("empty identity accepted")
	}
}
