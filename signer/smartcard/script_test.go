package smartcard_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/signer/smartcard"
	"github.com/farsign/farsign/signer/smartcard/smartcardtest"
)

// TestMain makes this test binary double as a "signer" made of the smart-card
// commands, so the scripts run them as a user would: as a separate process
// talking to pcscd.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"signer": func() {
			(&cli.App{Name: "signer", Summary: "smart-card commands under test", Commands: smartcard.Commands()}).Main()
		},
	})
}

func TestScripts(t *testing.T) {
	id := fileIdentity(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			if err := writeFixtures(env.WorkDir, id); err != nil {
				return err
			}
			return smartcardtest.Setup(env)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"vcard":    smartcardtest.Commands()["vcard"],
			"checkcsr": checkCSR,
		},
	})
}

// fileIdentity is an RSA-2048 key with a self-signed certificate, as a p12 or
// PEM file would hold it.
func fileIdentity(t *testing.T) keyfile.Identity {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "file identity"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyfile.Identity{Signer: key, Certificate: cert}
}

func writeFixtures(dir string, id keyfile.Identity) error {
	if err := keyfile.WritePEM(filepath.Join(dir, "id.pem"), id); err != nil {
		return err
	}
	if err := keyfile.WriteCertificatesPEM(filepath.Join(dir, "cert.pem"), id.Certificate); err != nil {
		return err
	}
	if err := keyfile.WriteP12(filepath.Join(dir, "id.p12"), id, []byte("p12 secret"), keyfile.P12Modern); err != nil {
		return err
	}
	for name, data := range map[string]string{"pw.txt": "p12 secret\n", "wrongpw.txt": "guess\n", "id.der": string(id.Certificate.Raw)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// checkCSR verifies a CSR's self-signature and, given a second PEM file, that
// the CSR carries the public key of that file's first CERTIFICATE or PUBLIC KEY
// block (a certificate file, or smartcard-scan output).
//
//	checkcsr csr.pem [keyfile.pem]
func checkCSR(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: checkcsr csr.pem [cert-or-public-key.pem]")
	}
	blk, _ := pem.Decode([]byte(ts.ReadFile(args[0])))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		ts.Fatalf("%s: no CERTIFICATE REQUEST block", args[0])
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	ts.Check(err)
	ts.Check(csr.CheckSignature())
	if len(args) == 1 {
		return
	}
	// smartcard-scan indents its PEM blocks; PEM wants them at the line start.
	var lines []string
	for _, l := range strings.Split(ts.ReadFile(args[1]), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	rest := []byte(strings.Join(lines, "\n"))
	var want crypto.PublicKey
	for want == nil {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			ts.Fatalf("%s: no CERTIFICATE or PUBLIC KEY block", args[1])
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			ts.Check(err)
			want = c.PublicKey
		case "PUBLIC KEY":
			want, err = x509.ParsePKIXPublicKey(b.Bytes)
			ts.Check(err)
		}
	}
	if !want.(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		ts.Fatalf("the CSR's public key is not the one in %s", args[1])
	}
}
