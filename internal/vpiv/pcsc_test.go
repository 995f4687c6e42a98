//go:build cgo

package vpiv_test

// These tests drive the virtual card through the real PC/SC stack (pcscd with the
// vpcd driver) with two independent clients: Yubico's own yubico-piv-tool (C,
// libykpiv) and go-piv/piv-go (the library farsign uses). Agreement of both with
// the card is what makes the card a faithful stand-in for a YubiKey.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/farsign/farsign/internal/pcsctest"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/vpiv"
)

// issue makes a certificate for pub signed by a throwaway CA: a client that only
// holds the card's public key cannot self-sign, and the tools only care that the
// certificate carries the slot's public key.
func issue(t *testing.T, pub crypto.PublicKey, cn string) *x509.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vpiv test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

type pivTool struct {
	t      *testing.T
	path   string
	reader string
}

func (p pivTool) run(args ...string) (string, error) {
	p.t.Helper()
	out, err := exec.Command(p.path, append([]string{"--reader", p.reader}, args...)...).CombinedOutput()
	return string(out), err
}

func (p pivTool) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("yubico-piv-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p pivTool) fail(want string, args ...string) {
	p.t.Helper()
	out, err := p.run(args...)
	if err == nil {
		p.t.Fatalf("yubico-piv-tool %s succeeded, want failure %q\n%s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(out, want) {
		p.t.Fatalf("yubico-piv-tool %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
	}
}

func contains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestYubicoPIVTool(t *testing.T) {
	path := testenv.LookPath(t, "yubico-piv-tool", "apt-get install yubico-piv-tool")
	card, reader := pcsctest.NewCard(t, vpiv.Config{Serial: 31337})
	tool := pivTool{t, path, reader}
	dir := t.TempDir()

	contains(t, tool.must("-a", "status"), "Version:\t5.4.3", "Serial Number:\t31337", "PIN tries left:\t3")

	for _, tc := range []struct{ alg, verified string }{
		{"RSA2048", "Successful RSA verification."},
		{"ECCP256", "Successful ECDSA verification."},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			tool := pivTool{t, path, reader}
			pubFile := filepath.Join(dir, tc.alg+".pub.pem")
			contains(t, tool.must("-a", "generate", "-s", "9c", "-A", tc.alg, "-o", pubFile), "Successfully generated a new private key.")
			b, _ := os.ReadFile(pubFile)
			blk, _ := pem.Decode(b)
			if blk == nil {
				t.Fatalf("generate wrote no public key PEM: %q", b)
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			cert := issue(t, pub, "yubico-piv-tool "+tc.alg)
			certFile := filepath.Join(dir, tc.alg+".crt.pem")
			writePEM(t, certFile, "CERTIFICATE", cert.Raw)
			contains(t, tool.must("-a", "import-certificate", "-s", "9c", "-i", certFile), "Successfully imported a new certificate.")

			// read-certificate returns exactly what was imported.
			out := tool.must("-a", "read-certificate", "-s", "9c")
			if blk, _ := pem.Decode([]byte(out)); blk == nil || !bytes.Equal(blk.Bytes, cert.Raw) {
				t.Errorf("read-certificate returned something else:\n%s", out)
			}
			// The card signs, and OpenSSL inside the tool verifies with the certificate.
			contains(t, tool.must("-a", "verify-pin", "-P", "123456", "-a", "test-signature", "-s", "9c", "-i", certFile), tc.verified)
			// Slot 9c is PIN-always: without the PIN there is no signature.
			tool.fail("Failed signing test data.", "-a", "test-signature", "-s", "9c", "-i", certFile)
			// Decryption (RSA) or key agreement (ECC), checked by the tool.
			contains(t, tool.must("-a", "verify-pin", "-P", "123456", "-a", "test-decipher", "-s", "9c", "-i", certFile), "Successfully performed")
			// The attestation chains to the card's attestation key.
			att := tool.must("-a", "attest", "-s", "9c")
			blk, _ = pem.Decode([]byte(att))
			if blk == nil {
				t.Fatalf("attest output: %s", att)
			}
			ac, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := ac.CheckSignatureFrom(card.AttestationCertificate()); err != nil {
				t.Errorf("attestation: %v", err)
			}
		})
	}

	t.Run("PIN retries", func(t *testing.T) {
		tool := pivTool{t, path, reader}
		tool.fail("Pin verification failed, 2 tries left before pin is blocked.", "-a", "verify-pin", "-P", "000000")
		contains(t, tool.must("-a", "status"), "PIN tries left:\t2")
		if n := card.PINRetries(); n != 2 {
			t.Errorf("card counts %d retries", n)
		}
		tool.fail("Pin verification failed, 1 tries left before pin is blocked.", "-a", "verify-pin", "-P", "000000")
		tool.fail("Pin code blocked, use unblock-pin action to unblock.", "-a", "verify-pin", "-P", "000000")
		tool.fail("Pin code blocked", "-a", "verify-pin", "-P", "123456")
		contains(t, tool.must("-a", "unblock-pin", "-P", "12345678", "-N", "24682468"), "Successfully unblocked the pin code.")
		contains(t, tool.must("-a", "verify-pin", "-P", "24682468"), "Successfully verified PIN.")
		contains(t, tool.must("-a", "change-pin", "-P", "24682468", "-N", "123456"), "Successfully changed the pin code.")
	})

	t.Run("management key", func(t *testing.T) {
		tool := pivTool{t, path, reader}
		custom := "0807060504030201080706050403020108070605040302ff"
		contains(t, tool.must("-a", "set-mgm-key", "-n", custom), "Successfully set new management key.")
		tool.fail("authentication", "-a", "generate", "-s", "9d", "-o", filepath.Join(dir, "x.pem"))
		tool.must("-k"+custom, "-a", "generate", "-s", "9d", "-A", "ECCP256", "-o", filepath.Join(dir, "x.pem"))
		tool.must("-k"+custom, "-a", "set-mgm-key", "-n", "010203040506070801020304050607080102030405060708")
	})
}

func TestPivGo(t *testing.T) {
	card, reader := pcsctest.NewCard(t, vpiv.Config{Serial: 4711})
	yk, err := piv.Open(reader)
	if err != nil {
		t.Fatal(err)
	}
	defer yk.Close()
	if s, err := yk.Serial(); err != nil || s != 4711 {
		t.Fatalf("serial %d, %v", s, err)
	}
	if v := yk.Version(); v != (piv.Version{Major: 5, Minor: 4, Patch: 3}) {
		t.Errorf("version %+v", v)
	}
	attRoots := x509.NewCertPool()
	attRoots.AddCert(card.AttestationCertificate())

	for _, tc := range []struct {
		name string
		alg  piv.Algorithm
		sig  x509.SignatureAlgorithm
	}{
		{"RSA2048", piv.AlgorithmRSA2048, x509.SHA256WithRSA},
		{"P256", piv.AlgorithmEC256, x509.ECDSAWithSHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotSignature,
				piv.Key{Algorithm: tc.alg, PINPolicy: piv.PINPolicyAlways, TouchPolicy: piv.TouchPolicyNever})
			if err != nil {
				t.Fatal(err)
			}
			cert := issue(t, pub, "piv-go "+tc.name)
			if err := yk.SetCertificate(piv.DefaultManagementKey, piv.SlotSignature, cert); err != nil {
				t.Fatal(err)
			}
			got, err := yk.Certificate(piv.SlotSignature)
			if err != nil || !got.Equal(cert) {
				t.Fatalf("certificate round trip: %v", err)
			}
			ki, err := yk.KeyInfo(piv.SlotSignature)
			if err != nil {
				t.Fatal(err)
			}
			if ki.Algorithm != tc.alg || ki.PINPolicy != piv.PINPolicyAlways || ki.Origin != piv.OriginGenerated || !ki.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Errorf("key info %+v", ki)
			}
			att, err := yk.Attest(piv.SlotSignature)
			if err != nil {
				t.Fatal(err)
			}
			ac, err := yk.AttestationCertificate()
			if err != nil {
				t.Fatal(err)
			}
			a, err := (&piv.Verifier{Roots: attRoots}).Verify(ac, att)
			if err != nil {
				t.Fatal(err)
			}
			if a.Serial != 4711 || a.PINPolicy != piv.PINPolicyAlways || a.Slot != piv.SlotSignature {
				t.Errorf("attestation %+v", a)
			}

			priv, err := yk.PrivateKey(piv.SlotSignature, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("signed through pcscd by piv-go")
			digest := sha256.Sum256(msg)
			for range 2 { // PIN-always: piv-go verifies before each signature
				sig, err := priv.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				if err := cert.CheckSignature(tc.sig, msg, sig); err != nil {
					t.Fatalf("signature does not verify with the certificate: %v", err)
				}
			}
			if rsaPub, ok := pub.(*rsa.PublicKey); ok {
				// piv-go's Decrypt understands PKCS #1 v1.5 padding only; this checks
				// the card's raw RSA operation through it.
				secret := []byte("0123456789abcdef")
				//lint:ignore SA1019 piv-go's only decryption mode
				ct, err := rsa.EncryptPKCS1v15(rand.Reader, rsaPub, secret)
				if err != nil {
					t.Fatal(err)
				}
				pt, err := priv.(crypto.Decrypter).Decrypt(rand.Reader, ct, nil)
				if err != nil || !bytes.Equal(pt, secret) {
					t.Fatalf("PKCS #1 v1.5 decryption: %q, %v", pt, err)
				}
			}
		})
	}

	t.Run("wrong PIN and blocking", func(t *testing.T) {
		for want := 2; want >= 0; want-- {
			var ae piv.AuthErr
			if err := yk.VerifyPIN("000000"); !errors.As(err, &ae) || ae.Retries != want {
				t.Fatalf("wrong PIN: %v, want %d retries", err, want)
			}
		}
		err := yk.VerifyPIN(piv.DefaultPIN)
		if err == nil || !strings.Contains(err.Error(), "authentication method blocked") {
			t.Fatalf("right PIN on blocked card: %v", err)
		}
		if n, err := yk.Retries(); err != nil || n != 0 {
			t.Fatalf("Retries on blocked card: %d, %v", n, err)
		}
		if err := yk.Unblock(piv.DefaultPUK, "13572468"); err != nil {
			t.Fatal(err)
		}
		if err := yk.VerifyPIN("13572468"); err != nil {
			t.Fatal(err)
		}
	})
}
