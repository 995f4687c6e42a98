package remote

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/peer"
)

func sum256(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

// colonHex is openssl's fingerprint form: upper case, colon-separated pairs.
func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var pairs []string
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseExpectedCertificate: every accepted spelling of a pin gives the
// certificate's DER SHA-256, and every malformed one a clear error.
func TestParseExpectedCertificate(t *testing.T) {
	rsaA, ec, _ := ids(t)
	want := sum256(rsaA.cert)
	lower := hex.EncodeToString(want[:])
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsaA.cert.Raw})
	var indented string
	for line := range strings.Lines(string(certPEM)) {
		indented += "    " + line
	}

	for name, value := range map[string]string{
		"lower hex":            "sha256:" + lower,
		"upper hex":            "sha256:" + strings.ToUpper(lower),
		"upper prefix":         "SHA256:" + lower,
		"openssl colon form":   "sha256:" + colonHex(want[:]),
		"lower colon form":     "sha256:" + strings.ToLower(colonHex(want[:])),
		"PEM file":             writeFile(t, dir, "cert.pem", certPEM),
		"indented PEM file":    writeFile(t, dir, "indented.txt", []byte("certificate:\n"+indented)),
		"DER file":             writeFile(t, dir, "cert.der", rsaA.cert.Raw),
		"PEM with a key too":   writeFile(t, dir, "withkey.pem", append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaA.cert.RawSubjectPublicKeyInfo}), certPEM...)),
		"PEM with text around": writeFile(t, dir, "text.pem", []byte("Subject: P\n"+string(certPEM)+"trailer\n")),
	} {
		e, err := ParseExpectedCertificate(value)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e.SHA256 != want {
			t.Errorf("%s: fingerprint %x, want %x", name, e.SHA256, want)
		}
		if e.Fingerprint() != "sha256:"+lower {
			t.Errorf("%s: Fingerprint() = %s", name, e.Fingerprint())
		}
		if isFile := !strings.HasPrefix(strings.ToLower(value), "sha256:"); isFile != (e.Certificate != nil) || (isFile && !e.Certificate.Equal(rsaA.cert)) {
			t.Errorf("%s: Certificate = %v", name, e.Certificate)
		}
	}

	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ec.cert.Raw})
	big := make([]byte, maxPublicKeyFile+1)
	for _, tc := range []struct {
		name, value, want string
	}{
		{"empty", "", "empty value"},
		{"empty fingerprint", "sha256:", "0 hex digits, want 64"},
		{"bad hex", "sha256:" + lower[:10] + "g" + lower[11:], `'g' at position 11 is not a hex digit`},
		{"short", "sha256:" + lower[:62], "62 hex digits, want 64 (the SHA-256 of the DER certificate, as signer analyze-certificate prints it)"},
		{"long", "sha256:" + lower + "00", "66 hex digits, want 64"},
		{"SHA-1 sized", "sha256:" + lower[:40], "40 hex digits, want 64"},
		{"colon form short", "sha256:" + colonHex(want[:31]), "31 bytes, want 32"},
		{"colon form ragged", "sha256:" + colonHex(want[:])[1:], "every byte is two hex digits"},
		{"colon form bad hex", "sha256:" + "ZZ" + colonHex(want[:])[2:], `'Z' at position 1 is not a hex digit`},
		{"spaces", "sha256:" + lower[:32] + " " + lower[32:], `' ' at position 33 is not a hex digit`},
		{"unreadable file", filepath.Join(dir, "missing.pem"), "no such file"},
		{"fingerprint without prefix", lower, "no file " + lower + "; for a fingerprint write sha256:" + lower},
		{"directory", dir, "is a directory"},
		{"text file", writeFile(t, dir, "notes.txt", []byte("not a certificate\n")), "notes.txt: not a PEM file, and not a DER certificate"},
		{"public key only", writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaA.cert.RawSubjectPublicKeyInfo})), "pub.pem: no CERTIFICATE block (found PUBLIC KEY); pin the signer's certificate, not its key"},
		{"broken certificate", writeFile(t, dir, "broken.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})), "broken.pem: CERTIFICATE block 1: "},
		{"chain file", writeFile(t, dir, "chain.pem", append(append([]byte{}, certPEM...), ecPEM...)), "chain.pem: 2 certificates; give a file with only the signer's certificate (repeat the flag to accept several)"},
		{"empty PEM", writeFile(t, dir, "empty.pem", []byte("-----BEGIN nothing")), "empty.pem: no CERTIFICATE block"},
		{"huge file", writeFile(t, dir, "huge.der", big), "is larger than 262144 bytes; not a certificate file"},
	} {
		e, err := ParseExpectedCertificate(tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want error %q", tc.name, e, err, tc.want)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", tc.name, err)
		}
	}
}

// reissue makes another self-signed certificate for id's key: what a renewal
// that keeps the key looks like.
func reissue(t *testing.T, id identity) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "Reissued \x1b[31mCert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.key.Public(), id.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pin(t *testing.T, c *x509.Certificate) ExpectedCertificate {
	t.Helper()
	e, err := ParseExpectedCertificate("sha256:" + colonHex(func() []byte { s := sum256(c); return s[:] }()))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExpectCertificates runs sessions against a signer presenting a given
// certificate: with a pinned one the session proceeds to sign; with any other
// the agent refuses it before any sign request, tells the signer why, and
// names both fingerprints.
func TestExpectCertificates(t *testing.T) {
	rsaA, ec, rsaB := ids(t)
	reissued := reissue(t, rsaA)
	fileA := ExpectedCertificate{SHA256: sum256(rsaA.cert), Certificate: rsaA.cert}
	hexOf := func(c *x509.Certificate) string { s := sum256(c); return "sha256:" + hex.EncodeToString(s[:]) }

	for _, tc := range []struct {
		name      string
		publicKey bool // publickey0 to rsaA's key, else sharedsecret0
		expect    []ExpectedCertificate
		id        identity
		cert      *x509.Certificate // presented; id.cert when nil
		want      string            // "" means accepted
	}{
		{name: "match by fingerprint", expect: []ExpectedCertificate{pin(t, ec.cert)}, id: ec},
		{name: "match by file", expect: []ExpectedCertificate{fileA}, id: rsaA},
		{name: "one of several", expect: []ExpectedCertificate{pin(t, rsaB.cert), pin(t, ec.cert), fileA}, id: ec},
		{name: "publickey0 match", publicKey: true, expect: []ExpectedCertificate{fileA}, id: rsaA},
		{name: "no pin accepts anything", id: rsaB},
		{name: "mismatch by fingerprint", expect: []ExpectedCertificate{pin(t, rsaA.cert)}, id: ec,
			want: `the signer's certificate is not the expected one: it presented "Apple Development: P (T)" (` + hexOf(ec.cert) + `), expected ` + hexOf(rsaA.cert)},
		{name: "mismatch by file", expect: []ExpectedCertificate{fileA}, id: rsaB,
			want: `it presented "Apple Development: P (T)" (` + hexOf(rsaB.cert) + `), expected ` + hexOf(rsaA.cert)},
		{name: "mismatch of several", expect: []ExpectedCertificate{pin(t, rsaB.cert), fileA}, id: ec,
			want: `(` + hexOf(ec.cert) + `), expected ` + hexOf(rsaB.cert) + " or " + hexOf(rsaA.cert)},
		// The key check of publickey0 passes (same key); the pin does not.
		{name: "publickey0 reissued certificate", publicKey: true, expect: []ExpectedCertificate{fileA}, id: rsaA, cert: reissued,
			want: `it presented "Reissued ?[31mCert" (` + hexOf(reissued) + `), expected ` + hexOf(rsaA.cert)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ExpectCertificates: tc.expect}
			fs := fakeSigner{cert: tc.cert, sign: honest(tc.id.key, oidFor(t, tc.id))}
			if fs.cert == nil {
				fs.cert = tc.id.cert
			}
			if tc.publicKey {
				cfg.SignerPublicKey = rsaA.cert.RawSubjectPublicKeyInfo
				fs.decrypt = rsaA.key.(*rsa.PrivateKey)
			} else {
				cfg.SharedSecret = []byte("pw")
				fs.secret = []byte("pw")
			}
			var signRequests atomic.Int32
			sign := fs.sign
			fs.sign = func(m []byte) *peer.Signature { signRequests.Add(1); return sign(m) }
			var log bytes.Buffer
			cfg.Log = &log
			s, url := startSession(t, cfg)
			done := fs.run(t, url, s.JoinLine())
			signer, err := s.Wait(context.Background())
			presented := hexOf(fs.cert)
			var closed *relayclient.SessionClosedError
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := signer.SignMessage(rand.Reader, []byte("m"), crypto.SHA256); err != nil {
					t.Fatal(err)
				}
				wantLine := "remote signer's certificate fingerprint: " + presented + "\n"
				if tc.expect != nil {
					wantLine = "remote signer's certificate " + presented + " is an expected one\n"
				}
				if !strings.Contains(log.String(), wantLine) {
					t.Errorf("log lacks %q:\n%s", wantLine, log.String())
				}
				signer.Close()
				if err := <-done; !errors.As(err, &closed) || closed.Reason != ReasonCompleted {
					t.Errorf("signer ended with %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("error is not one printable line: %q", err)
			}
			if strings.Contains(log.String(), "is an expected one") {
				t.Errorf("log claims a match:\n%s", log.String())
			}
			// The signer is told, with a reason, and was never asked to sign.
			if err := <-done; !errors.As(err, &closed) || closed.Reason != ReasonCertificateRejected {
				t.Errorf("signer ended with %v, want goodbye %q", err, ReasonCertificateRejected)
			}
			if n := signRequests.Load(); n != 0 {
				t.Errorf("%d sign requests reached the signer", n)
			}
		})
	}
}

func oidFor(t *testing.T, id identity) asn1.ObjectIdentifier {
	t.Helper()
	if _, ok := id.key.Public().(*rsa.PublicKey); ok {
		return peer.OIDSHA256WithRSA
	}
	return peer.OIDECDSAWithSHA256
}

// TestCheckExpectedKey: in publickey0 a pinned certificate file for another
// key can never match, so Start refuses it before contacting the relay;
// fingerprints cannot be checked then and pass.
func TestCheckExpectedKey(t *testing.T) {
	rsaA, _, rsaB := ids(t)
	spkiA := rsaA.cert.RawSubjectPublicKeyInfo
	fileA := ExpectedCertificate{SHA256: sum256(rsaA.cert), Certificate: rsaA.cert}
	fileB := ExpectedCertificate{SHA256: sum256(rsaB.cert), Certificate: rsaB.cert}
	if err := CheckExpectedKey([]ExpectedCertificate{fileA, pin(t, rsaB.cert)}, spkiA); err != nil {
		t.Errorf("same key and a fingerprint: %v", err)
	}
	if err := CheckExpectedKey(nil, []byte("junk")); err != nil {
		t.Errorf("nothing expected: %v", err)
	}
	want := "the expected certificate " + fileB.Fingerprint() + ` ("Apple Development: P (T)") is for a different key (SPKI sha256 ` +
		handshake.SPKIFingerprint(rsaB.cert.RawSubjectPublicKeyInfo) + ") than the signer's public key (SPKI sha256 " +
		handshake.SPKIFingerprint(spkiA) + "), so it could never be accepted"
	if err := CheckExpectedKey([]ExpectedCertificate{fileA, fileB}, spkiA); err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	// Start checks before it connects: this relay address would refuse.
	_, err := Start(context.Background(), Config{SignerPublicKey: spkiA, ExpectCertificates: []ExpectedCertificate{fileB}, RelayURL: "ws://127.0.0.1:1/", StepSummary: "-"})
	if err == nil || err.Error() != want {
		t.Errorf("Start: %v", err)
	}
}
