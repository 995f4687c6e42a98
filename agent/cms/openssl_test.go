package cms

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/testtsa"
)

// openssl runs the openssl command line, an independent CMS and RFC 3161
// implementation, and returns its combined output.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// openssl cms -verify accepts what Sign produces, checking the signature and the
// message digest over the detached content; and rejects it over other content.
func TestOpenSSLVerifiesSign(t *testing.T) {
	tsa := testtsa.New(t)
	cases := []struct {
		name  string
		id    identity
		ts    Timestamper
		chain bool
	}{
		{"rsa", selfSigned(t, applecert.RSA2048), nil, false},
		{"ecdsa", selfSigned(t, applecert.ECDSAP256), nil, false},
		{"rsa+timestamp", selfSigned(t, applecert.RSA2048), &HTTPTimestamper{URL: tsa.URL()}, false},
		{"ca-issued+chain", caIssued(t), nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cd := testCD(t, 4096)
			der, err := Sign(context.Background(), attrsFor(t, cd), tc.id.key, tc.id.cert, tc.id.chain, tc.ts)
			if err != nil {
				t.Fatal(err)
			}
			cmsPath := writeFile(t, dir, "cms.der", der)
			cdPath := writeFile(t, dir, "cd.bin", cd)
			out, err := openssl(t, "cms", "-verify", "-inform", "DER", "-in", cmsPath, "-content", cdPath, "-binary", "-noverify", "-out", os.DevNull)
			if err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			// Full chain check, with the trust anchor as CA file.
			anchor := tc.id.cert.Raw
			if tc.chain {
				anchor = tc.id.chain[len(tc.id.chain)-1].Raw
			}
			caPath := writeFile(t, dir, "ca.pem", pemCert(anchor))
			out, err = openssl(t, "cms", "-verify", "-inform", "DER", "-in", cmsPath, "-content", cdPath, "-binary",
				"-CAfile", caPath, "-purpose", "any", "-ignore_critical", "-out", os.DevNull)
			if err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify -CAfile: %v\n%s", err, out)
			}

			// The oracle can fail: other content must be rejected.
			cd[100] ^= 1
			otherPath := writeFile(t, dir, "other.bin", cd)
			out, err = openssl(t, "cms", "-verify", "-inform", "DER", "-in", cmsPath, "-content", otherPath, "-binary", "-noverify", "-out", os.DevNull)
			if err == nil {
				t.Fatalf("openssl accepted the CMS over other content:\n%s", out)
			}
		})
	}
}

// openssl ts -verify accepts the token HTTPTimestamper got from testtsa, over the
// signature bytes it time-stamps.
func TestOpenSSLVerifiesTimestampToken(t *testing.T) {
	tsa := testtsa.New(t)
	dir := t.TempDir()
	sig := []byte("the signature value a code signature would carry")
	token, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), sig)
	if err != nil {
		t.Fatal(err)
	}
	tokenPath := writeFile(t, dir, "token.der", token)
	dataPath := writeFile(t, dir, "sig.bin", sig)
	caPath := writeFile(t, dir, "ca.pem", pemCert(tsa.CACertificate().Raw))
	out, err := openssl(t, "ts", "-verify", "-data", dataPath, "-in", tokenPath, "-token_in", "-CAfile", caPath)
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	otherPath := writeFile(t, dir, "other.bin", []byte("other data"))
	if out, err := openssl(t, "ts", "-verify", "-data", otherPath, "-in", tokenPath, "-token_in", "-CAfile", caPath); err == nil {
		t.Fatalf("openssl ts -verify accepted the token over other data:\n%s", out)
	}
}

// openssl agrees with us about Apple's own CMS (BER) over node's CodeDirectory,
// including the chain to Apple Root CA at the signing time.
func TestOpenSSLVerifiesNode(t *testing.T) {
	cd, cmsDER := nodeSignature(t)
	dir := t.TempDir()
	cmsPath := writeFile(t, dir, "cms.der", cmsDER)
	cdPath := writeFile(t, dir, "cd.bin", cd)
	var roots []byte
	for _, c := range applecert.RootCertificates() {
		roots = append(roots, pemCert(c.Raw)...)
	}
	caPath := writeFile(t, dir, "apple-roots.pem", roots)
	sd, err := Parse(cmsDER)
	if err != nil {
		t.Fatal(err)
	}
	out, err := openssl(t, "cms", "-verify", "-inform", "DER", "-in", cmsPath, "-content", cdPath, "-binary",
		"-CAfile", caPath, "-purpose", "any", "-ignore_critical", "-attime", fmt.Sprint(sd.Signer.SigningTime.Unix()), "-out", os.DevNull)
	if err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify on node: %v\n%s", err, out)
	}
}
