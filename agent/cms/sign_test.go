package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
)

// identity is a test signing identity.
type identity struct {
	key   crypto.Signer
	cert  *x509.Certificate
	chain []*x509.Certificate
	roots *x509.CertPool
}

var (
	identMu    sync.Mutex
	identCache = map[applecert.KeyAlgorithm]identity{}
)

// selfSigned returns a (cached) self-signed Developer ID Application identity.
func selfSigned(t testing.TB, alg applecert.KeyAlgorithm) identity {
	t.Helper()
	identMu.Lock()
	defer identMu.Unlock()
	if id, ok := identCache[alg]; ok {
		return id
	}
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
		Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg,
		TeamID: "TEAM123456", PersonName: "farsign test",
	})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	id := identity{key: key, cert: cert, roots: roots}
	identCache[alg] = id
	return id
}

// caIssued returns an identity whose leaf is issued by a fresh CA, with the CA as chain.
func caIssued(t testing.TB) identity {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA", Organization: []string{"farsign"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test leaf", Organization: []string{"farsign"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return identity{key: key, cert: cert, chain: []*x509.Certificate{ca}, roots: roots}
}

// testCD is arbitrary content standing in for a CodeDirectory.
func testCD(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func attrsFor(t testing.TB, cd []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(cd)
	attrs, err := SignedAttributes(cd, []CDHash{{crypto.SHA256, sum[:]}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range []applecert.KeyAlgorithm{applecert.RSA2048, applecert.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			id := selfSigned(t, alg)
			cd := testCD(t, 1000)
			der, err := Sign(context.Background(), attrsFor(t, cd), id.key, id.cert, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			sd, err := Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sd.Raw, der) {
				t.Error("Parse(DER).Raw differs from the DER input")
			}
			if err := sd.Verify(cd); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			wantAlg := map[applecert.KeyAlgorithm]string{applecert.RSA2048: "sha256WithRSAEncryption", applecert.ECDSAP256: "ecdsa-with-SHA256"}[alg]
			if sd.Signer.SignatureAlgorithmName != wantAlg {
				t.Errorf("signature algorithm %s, want %s", sd.Signer.SignatureAlgorithmName, wantAlg)
			}
			if len(sd.Certificates) != 1 || !sd.Certificates[0].Equal(id.cert) || sd.Signer.SignerCertificate == nil {
				t.Errorf("certificates %d, signer certificate %v", len(sd.Certificates), sd.Signer.SignerCertificate)
			}
			chains, err := sd.VerifyChain(id.roots, time.Now())
			if err != nil {
				t.Fatalf("VerifyChain (self-signed root, Apple critical extension): %v", err)
			}
			if len(chains[0]) != 1 {
				t.Errorf("chain %v", chains)
			}

			bad := bytes.Clone(cd)
			bad[0] ^= 1
			if err := sd.Verify(bad); !errors.Is(err, ErrContentDigest) {
				t.Errorf("Verify(tampered content) = %v, want ErrContentDigest", err)
			}
			// One flipped bit in the signature value.
			sigAt := bytes.Index(der, sd.Signer.Signature)
			tampered := bytes.Clone(der)
			tampered[sigAt+len(sd.Signer.Signature)-5] ^= 0x10
			sd2, err := Parse(tampered)
			if err != nil {
				t.Fatal(err)
			}
			if err := sd2.Verify(cd); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify(tampered signature) = %v, want ErrSignature", err)
			}
			// One changed byte in the signed signing time: the signature breaks.
			attrAt := bytes.Index(der, sd.Signer.SignedAttrs.Raw[1:])
			timeAt := bytes.Index(der[attrAt:], []byte{0x17, 0x0d}) + attrAt + 3
			tampered = bytes.Clone(der)
			tampered[timeAt] ^= 0x01 // a year digit
			sd3, err := Parse(tampered)
			if err != nil {
				t.Fatal(err)
			}
			if err := sd3.Verify(cd); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify(tampered signing time) = %v, want ErrSignature", err)
			}
		})
	}
}

func TestSignWithChain(t *testing.T) {
	id := caIssued(t)
	cd := testCD(t, 300)
	// The chain repeats the leaf, which must be dropped, not duplicated.
	der, err := Sign(context.Background(), attrsFor(t, cd), id.key, id.cert, append(id.chain, id.cert), nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.Certificates) != 2 {
		t.Fatalf("%d certificates, want leaf + CA", len(sd.Certificates))
	}
	if err := sd.Verify(cd); err != nil {
		t.Fatal(err)
	}
	chains, err := sd.VerifyChain(id.roots, time.Now())
	if err != nil || len(chains[0]) != 2 {
		t.Fatalf("VerifyChain: %v %v", chains, err)
	}
	if _, err := sd.VerifyChain(x509.NewCertPool(), time.Now()); err == nil {
		t.Error("VerifyChain succeeded with an empty root pool")
	}
	if _, err := sd.VerifyChain(id.roots, time.Now().Add(48*time.Hour)); err == nil {
		t.Error("VerifyChain succeeded after the certificates expired")
	}
}

// messageSigner is a remote-style crypto.MessageSigner for tests.
type messageSigner struct {
	pub  crypto.PublicKey
	sign func(msg []byte) ([]byte, error)
	got  []byte
}

func (m *messageSigner) Public() crypto.PublicKey { return m.pub }
func (m *messageSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("a remote signer signs messages, not digests")
}
func (m *messageSigner) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, errors.New("unexpected hash")
	}
	m.got = bytes.Clone(msg)
	return m.sign(msg)
}

func TestSignMessageSigner(t *testing.T) {
	id := selfSigned(t, applecert.RSA2048)
	other := selfSigned(t, applecert.ECDSAP256)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cd := testCD(t, 100)
	attrs := attrsFor(t, cd)
	signWith := func(k crypto.Signer) func([]byte) ([]byte, error) {
		return func(msg []byte) ([]byte, error) { return crypto.SignMessage(k, rand.Reader, msg, crypto.SHA256) }
	}

	good := &messageSigner{pub: id.cert.PublicKey, sign: signWith(id.key)}
	der, err := Sign(context.Background(), attrs, good, id.cert, nil, nil)
	if err != nil {
		t.Fatalf("Sign with a remote-style MessageSigner: %v", err)
	}
	if !bytes.Equal(good.got, attrs) {
		t.Error("the MessageSigner was not given the full signed-attributes message")
	}
	if sd, err := Parse(der); err != nil || sd.Verify(cd) != nil {
		t.Fatalf("result does not verify: %v", err)
	}

	for name, m := range map[string]*messageSigner{
		"garbage":       {pub: id.cert.PublicKey, sign: func([]byte) ([]byte, error) { return bytes.Repeat([]byte{7}, 256), nil }},
		"empty":         {pub: id.cert.PublicKey, sign: func([]byte) ([]byte, error) { return nil, nil }},
		"other RSA key": {pub: id.cert.PublicKey, sign: signWith(otherRSA)},
		"other message": {pub: id.cert.PublicKey, sign: func([]byte) ([]byte, error) {
			return crypto.SignMessage(id.key, rand.Reader, []byte("something else"), crypto.SHA256)
		}},
	} {
		_, err := Sign(context.Background(), attrs, m, id.cert, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "does not verify against the certificate") {
			t.Errorf("%s: Sign = %v, want a verification error", name, err)
		}
	}

	// A signer whose public key is not the certificate's is refused before signing.
	called := false
	mismatch := &messageSigner{pub: other.cert.PublicKey, sign: func([]byte) ([]byte, error) { called = true; return nil, nil }}
	if _, err := Sign(context.Background(), attrs, mismatch, id.cert, nil, nil); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: %v", err)
	}
	if called {
		t.Error("a mismatched signer was asked to sign")
	}
	// A signer error is passed on.
	failing := &messageSigner{pub: id.cert.PublicKey, sign: func([]byte) ([]byte, error) { return nil, errors.New("user declined") }}
	if _, err := Sign(context.Background(), attrs, failing, id.cert, nil, nil); err == nil || !strings.Contains(err.Error(), "user declined") {
		t.Errorf("failing signer: %v", err)
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	id := selfSigned(t, applecert.ECDSAP256)
	ctx := context.Background()
	if _, err := Sign(ctx, []byte("not attributes"), id.key, id.cert, nil, nil); err == nil || !strings.Contains(err.Error(), "refusing to sign") {
		t.Errorf("non-attribute message: %v", err)
	}
	attrs := attrsFor(t, testCD(t, 10))
	if _, err := Sign(ctx, attrs, nil, id.cert, nil, nil); err == nil {
		t.Error("nil signer accepted")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Sign(cancelled, attrs, id.key, id.cert, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakCert := &x509.Certificate{PublicKey: &weak.PublicKey}
	if _, err := Sign(ctx, attrs, weak, weakCert, nil, nil); err == nil || !strings.Contains(err.Error(), "2048") {
		t.Errorf("1024-bit RSA: %v", err)
	}
}

func TestCheckSignatureAndAlgorithmOID(t *testing.T) {
	for alg, want := range map[applecert.KeyAlgorithm]string{applecert.RSA2048: "1.2.840.113549.1.1.11", applecert.ECDSAP256: "1.2.840.10045.4.3.2"} {
		id := selfSigned(t, alg)
		oid, err := SignatureAlgorithmOID(id.cert.PublicKey)
		if err != nil || oid.String() != want {
			t.Errorf("%s: SignatureAlgorithmOID = %v, %v; want %s", alg, oid, err, want)
		}
		msg := []byte("message")
		sig, err := crypto.SignMessage(id.key, rand.Reader, msg, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSignature(id.cert, msg, sig); err != nil {
			t.Errorf("%s: CheckSignature: %v", alg, err)
		}
		if err := CheckSignature(id.cert, []byte("other"), sig); err == nil {
			t.Errorf("%s: CheckSignature accepted a signature over another message", alg)
		}
		// SHA-1 instead of SHA-256 must not pass.
		d := sha1.Sum(msg)
		sha1Sig, _ := id.key.Sign(rand.Reader, d[:], crypto.SHA1)
		if err := CheckSignature(id.cert, msg, sha1Sig); err == nil {
			t.Errorf("%s: CheckSignature accepted a SHA-1 signature", alg)
		}
	}
}
