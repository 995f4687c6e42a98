package keyfile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testenv"
)

// pki is a three-level test hierarchy: root → intermediate → leaf (ECDSA).
type pki struct {
	root, inter, leaf *x509.Certificate
	leafKey           *ecdsa.PrivateKey
}

func newPKI(t testing.TB) pki {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ca := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	}
	rootKey, interKey, leafKey := key(), key(), key()
	root := mk(ca(1, "root"), ca(1, "root"), rootKey.Public(), rootKey)
	inter := mk(ca(2, "intermediate"), root, interKey.Public(), rootKey)
	leaf := mk(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, inter, leafKey.Public(), interKey)
	return pki{root: root, inter: inter, leaf: leaf, leafKey: leafKey}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func write(t *testing.T, dir, name string, parts ...[]byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, bytes.Join(parts, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPEMVariants(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	sec1, _ := x509.MarshalECPrivateKey(p.leafKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCertDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(9),
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}, &x509.Certificate{SerialNumber: big.NewInt(9)}, &rsaKey.PublicKey, rsaKey)
	rsaCert, _ := x509.ParseCertificate(rsaCertDER)

	keyPKCS8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	keySEC1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 3, 1, 7}})
	keyPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})

	for name, tc := range map[string]struct {
		files     [][]byte
		leaf      *x509.Certificate
		wantChain []*x509.Certificate
	}{
		// Certificates in scrambled order: the chain still comes out leaf-issuer first.
		"one file, PKCS#8":         {[][]byte{bytes.Join([][]byte{certPEM(p.root), keyPKCS8, certPEM(p.leaf), certPEM(p.inter)}, nil)}, p.leaf, []*x509.Certificate{p.inter, p.root}},
		"key and certs separately": {[][]byte{certPEM(p.leaf), keyPKCS8, append(certPEM(p.root), certPEM(p.inter)...)}, p.leaf, []*x509.Certificate{p.inter, p.root}},
		"SEC 1 with EC PARAMETERS": {[][]byte{append(append(ecParams, keySEC1...), certPEM(p.leaf)...)}, p.leaf, nil},
		"PKCS#1 RSA":               {[][]byte{append(keyPKCS1, certPEM(rsaCert)...)}, rsaCert, nil},
		"duplicate leaf certs":     {[][]byte{bytes.Join([][]byte{certPEM(p.leaf), keyPKCS8, certPEM(p.leaf)}, nil)}, p.leaf, nil},
		"unrelated cert kept last": {[][]byte{bytes.Join([][]byte{certPEM(rsaCert), certPEM(p.inter), keyPKCS8, certPEM(p.leaf)}, nil)}, p.leaf, []*x509.Certificate{p.inter, rsaCert}},
	} {
		var paths []string
		for i, f := range tc.files {
			paths = append(paths, write(t, dir, strings.ReplaceAll(name, " ", "_")+string(rune('a'+i))+".pem", f))
		}
		id, err := LoadPEM(paths...)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !id.Certificate.Equal(tc.leaf) {
			t.Errorf("%s: leaf %q", name, id.Certificate.Subject)
		}
		if len(id.Chain) != len(tc.wantChain) {
			t.Errorf("%s: chain of %d, want %d", name, len(id.Chain), len(tc.wantChain))
			continue
		}
		for i := range id.Chain {
			if !id.Chain[i].Equal(tc.wantChain[i]) {
				t.Errorf("%s: chain[%d] = %q", name, i, id.Chain[i].Subject)
			}
		}
		// The key signs for the certificate.
		d := make([]byte, 32)
		sig, err := id.Signer.Sign(rand.Reader, d, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		switch pub := id.Certificate.PublicKey.(type) {
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, d, sig) {
				t.Errorf("%s: signature does not verify", name)
			}
		case *rsa.PublicKey:
			if rsa.VerifyPKCS1v15(pub, crypto.SHA256, d, sig) != nil {
				t.Errorf("%s: signature does not verify", name)
			}
		}
	}
}

func TestLoadPEMErrors(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t)
	other := newPKI(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakDER, _ := x509.MarshalPKCS8PrivateKey(weak)

	for name, tc := range map[string]struct {
		files [][]byte
		want  string
	}{
		"mismatch":        {[][]byte{append(key, certPEM(other.leaf)...)}, `does not match any certificate ("CN=leaf")`},
		"no key":          {[][]byte{certPEM(p.leaf)}, "no private key found"},
		"no cert":         {[][]byte{key}, "no certificate found"},
		"two keys":        {[][]byte{key, append(key, certPEM(p.leaf)...)}, "a second private key"},
		"encrypted PKCS8": {[][]byte{pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})}, "encrypted"},
		"legacy encrypted": {[][]byte{pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})}, "encrypted"},
		"unknown block": {[][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})}, `unexpected PEM block "PUBLIC KEY"`},
		"not PEM":       {[][]byte{[]byte("hello")}, "no PEM data found"},
		"garbage key":   {[][]byte{pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})}, "private key"},
		"garbage cert":  {[][]byte{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})}, "certificate"},
		"ed25519": {[][]byte{append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), certPEM(p.leaf)...)},
			"unsupported key type Ed25519"},
		"rsa 1024": {[][]byte{append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: weakDER}), certPEM(p.leaf)...)},
			"1024-bit RSA key"},
	} {
		var paths []string
		for i, f := range tc.files {
			paths = append(paths, write(t, dir, strings.ReplaceAll(name, " ", "_")+string(rune('a'+i)), f))
		}
		_, err := LoadPEM(paths...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := LoadPEM(); err == nil {
		t.Error("LoadPEM() with no files accepted")
	}
	if _, err := LoadPEM(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bigFile := write(t, dir, "big.pem", make([]byte, MaxFileSize+1))
	if _, err := LoadPEM(bigFile); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileAppleDevelopment, TeamID: "T1", PersonName: "P"})
	if err != nil {
		t.Fatal(err)
	}
	p := newPKI(t)
	id := Identity{Signer: key, Certificate: cert, Chain: []*x509.Certificate{p.inter}}

	pemPath := filepath.Join(dir, "id.pem")
	if err := WritePEM(pemPath, id); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPEM(pemPath)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Certificate.Equal(cert) || len(got.Chain) != 1 || !got.Chain[0].Equal(p.inter) {
		t.Errorf("PEM round trip: %v %v", got.Certificate.Subject, got.Chain)
	}
	for _, enc := range []P12Encoding{P12Modern, P12Legacy} {
		p12Path := filepath.Join(dir, map[P12Encoding]string{P12Modern: "modern.p12", P12Legacy: "legacy.p12"}[enc])
		if err := WriteP12(p12Path, id, []byte("s3cret"), enc); err != nil {
			t.Fatal(err)
		}
		got, err := LoadP12(p12Path, []byte("s3cret"))
		if err != nil {
			t.Fatalf("%s: %v", p12Path, err)
		}
		if !got.Certificate.Equal(cert) || len(got.Chain) != 1 {
			t.Errorf("%s round trip: %v %v", p12Path, got.Certificate.Subject, got.Chain)
		}
		if _, err := LoadP12(p12Path, []byte("wrong")); !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password for p12 file "+p12Path {
			t.Errorf("%s with a wrong password: %v", p12Path, err)
		}
		checkMode(t, p12Path, 0o600)
	}
	checkMode(t, pemPath, 0o600)
	certPath := filepath.Join(dir, "cert.pem")
	if err := WriteCertificatesPEM(certPath, cert, p.inter); err != nil {
		t.Fatal(err)
	}
	checkMode(t, certPath, 0o644)
	certs, err := ReadCertificates(certPath)
	if err != nil || len(certs) != 2 || !certs[0].Equal(cert) {
		t.Errorf("ReadCertificates(PEM) = %v, %v", certs, err)
	}
	derPath := write(t, dir, "cert.der", cert.Raw)
	certs, err = ReadCertificates(derPath)
	if err != nil || len(certs) != 1 || !certs[0].Equal(cert) {
		t.Errorf("ReadCertificates(DER) = %v, %v", certs, err)
	}
	if _, err := ReadCertificates(write(t, dir, "junk", []byte("junk"))); err == nil {
		t.Error("ReadCertificates(junk) accepted")
	}

	// Existing files are never overwritten, and no temporary files are left over.
	before, _ := os.ReadFile(pemPath)
	if err := WritePEM(pemPath, id); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second WritePEM: %v", err)
	}
	if after, _ := os.ReadFile(pemPath); !bytes.Equal(before, after) {
		t.Error("existing file changed")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if err := WritePEM(filepath.Join(dir, "x.pem"), Identity{}); err == nil {
		t.Error("WritePEM of an empty identity accepted")
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

// p12Info returns what `openssl pkcs12 -info` says about a file's encryption and MAC.
func p12Info(t *testing.T, bin, path, password string, legacy bool) string {
	t.Helper()
	args := []string{"pkcs12", "-info", "-noout", "-in", path, "-passin", "pass:" + password}
	if legacy {
		args = append(args, "-legacy")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		if legacy && strings.Contains(string(out), "legacy") {
			testenv.Missing(t, "openssl's legacy provider is not installed: "+string(out))
		}
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// A legacy p12 as older Keychain Access exports it: certificates under RC2-40, the
// key under 3DES, a SHA-1 MAC. openssl makes it, at test time, from an RSA "Apple
// Development" identity written with WritePEM; openssl's own -info confirms the
// algorithms, so the test cannot silently fall back to a modern file.
func TestLoadP12LegacyRC2(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	dir := t.TempDir()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileAppleDevelopment,
		Algorithm: applecert.RSA2048, TeamID: "ABCDE12345", PersonName: "RSA Apple Development (test)"})
	if err != nil {
		t.Fatal(err)
	}
	pemPath := filepath.Join(dir, "identity.pem")
	if err := WritePEM(pemPath, Identity{Signer: key, Certificate: cert}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "legacy.p12")
	args := []string{"pkcs12", "-export", "-legacy", "-certpbe", "PBE-SHA1-RC2-40", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1",
		"-in", pemPath, "-passout", "pass:password", "-out", path}
	if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		if strings.Contains(string(msg), "legacy") || strings.Contains(string(msg), "RC2") {
			testenv.Missing(t, "openssl's legacy provider is not installed: "+string(msg))
		}
		t.Fatalf("openssl %v: %v\n%s", args, err, msg)
	}
	info := p12Info(t, bin, path, "password", true)
	for _, want := range []string{"MAC: sha1", "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"} {
		if !strings.Contains(info, want) {
			t.Fatalf("openssl made no legacy RC2-40/3DES file; -info lacks %q:\n%s", want, info)
		}
	}

	id, err := LoadP12(path, []byte("password"))
	if err != nil {
		t.Fatal(err)
	}
	if cn := id.Certificate.Subject.CommonName; cn != "Apple Development: RSA Apple Development (test) (ABCDE12345)" {
		t.Errorf("CN %q", cn)
	}
	rsaKey, ok := id.Signer.(*rsa.PrivateKey)
	if !ok || !rsaKey.Equal(key) || !id.Certificate.Equal(cert) || len(id.Chain) != 0 {
		t.Errorf("loaded key %T, certificate %q, chain %d: not the identity openssl was given", id.Signer, id.Certificate.Subject, len(id.Chain))
	}
	if applecert.GuessProfile(id.Certificate) != applecert.ProfileAppleDevelopment {
		t.Errorf("profile %v", applecert.GuessProfile(id.Certificate))
	}
	// The PEM the p12 was made from loads to the same certificate and key.
	fromPEM, err := LoadPEM(pemPath)
	if err != nil {
		t.Fatal(err)
	}
	if !fromPEM.Certificate.Equal(id.Certificate) || !fromPEM.Signer.(*rsa.PrivateKey).Equal(id.Signer) {
		t.Error("the PEM and p12 copies of the identity differ")
	}
	if _, err := LoadP12(path, []byte("password123")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := LoadP12(filepath.Join(dir, "missing.p12"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadP12(write(t, dir, "junk.p12", []byte("not a p12")), nil); err == nil || !strings.Contains(err.Error(), "junk.p12") {
		t.Errorf("junk p12: %v", err)
	}

	// Our writer's two encodings are what they claim, by openssl's reading.
	for enc, wants := range map[P12Encoding][]string{
		P12Legacy: {"MAC: sha1", "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"},
		P12Modern: {"MAC: sha256", "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC", "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC"},
	} {
		out := filepath.Join(dir, map[P12Encoding]string{P12Legacy: "ours-legacy.p12", P12Modern: "ours-modern.p12"}[enc])
		if err := WriteP12(out, id, []byte("password"), enc); err != nil {
			t.Fatal(err)
		}
		info := p12Info(t, bin, out, "password", enc == P12Legacy)
		for _, want := range wants {
			if !strings.Contains(info, want) {
				t.Errorf("%s: openssl -info lacks %q:\n%s", out, want, info)
			}
		}
		back, err := LoadP12(out, []byte("password"))
		if err != nil || !back.Certificate.Equal(cert) || !back.Signer.(*rsa.PrivateKey).Equal(key) {
			t.Errorf("%s does not load back to the identity: %v", out, err)
		}
	}
}

// p12 files made by openssl 3: its modern default (AES-256, PBKDF2) and -legacy
// (RC2-40 + 3DES, what Keychain Access long exported).
func TestLoadP12FromOpenSSL(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	dir := t.TempDir()
	p := newPKI(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	keyPath := write(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	certPath := write(t, dir, "cert.pem", certPEM(p.leaf))
	chainPath := write(t, dir, "chain.pem", certPEM(p.root), certPEM(p.inter))
	for _, mode := range [][]string{nil, {"-legacy"}, {"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"}} {
		out := filepath.Join(dir, "id"+strings.Join(mode, "")+".p12")
		args := append([]string{"pkcs12", "-export", "-inkey", keyPath, "-in", certPath, "-certfile", chainPath,
			"-passout", "pass:hunter2", "-out", out}, mode...)
		if msg, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			if len(mode) > 0 && mode[0] == "-legacy" && strings.Contains(string(msg), "legacy") {
				testenv.Missing(t, "openssl's legacy provider is not installed: "+string(msg))
			}
			t.Fatalf("openssl %v: %v\n%s", args, err, msg)
		}
		id, err := LoadP12(out, []byte("hunter2"))
		if err != nil {
			t.Errorf("openssl p12 %v: %v", mode, err)
			continue
		}
		if !id.Certificate.Equal(p.leaf) || len(id.Chain) != 2 || !id.Chain[0].Equal(p.inter) || !id.Chain[1].Equal(p.root) {
			t.Errorf("openssl p12 %v: leaf %q chain %d", mode, id.Certificate.Subject, len(id.Chain))
		}
		if _, err := LoadP12(out, []byte("hunter3")); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("openssl p12 %v, wrong password: %v", mode, err)
		}
	}
}

// Our p12 files open in openssl (modern by default; legacy with -legacy).
func TestWrittenP12OpensInOpenSSL(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	dir := t.TempDir()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileDeveloperIDApplication, TeamID: "T1", PersonName: "P"})
	if err != nil {
		t.Fatal(err)
	}
	for enc, extra := range map[P12Encoding][]string{P12Modern: nil, P12Legacy: {"-legacy"}} {
		path := filepath.Join(dir, map[P12Encoding]string{P12Modern: "m.p12", P12Legacy: "l.p12"}[enc])
		if err := WriteP12(path, Identity{Signer: key, Certificate: cert}, []byte("pw"), enc); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"pkcs12", "-in", path, "-passin", "pass:pw", "-nodes", "-info"}, extra...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Developer ID Application: P (T1)") || !strings.Contains(string(out), "PRIVATE KEY") {
			t.Errorf("openssl %v: %v\n%s", args, err, out)
		}
	}
}
