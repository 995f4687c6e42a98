package keyfile

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// generatedIdentity writes a fresh ECDSA identity with a two-certificate chain (root
// and intermediate) as PEM and as legacy and modern p12 files (password "password"),
// and returns their contents: fuzz seeds made at run time, next to the committed ones
// in testdata/fuzz.
func generatedIdentity(f *testing.F) (pemData, legacyP12, modernP12 []byte) {
	f.Helper()
	p := newPKI(f)
	id := Identity{Signer: p.leafKey, Certificate: p.leaf, Chain: []*x509.Certificate{p.inter, p.root}}
	dir := f.TempDir()
	read := func(name string, write func(string) error) []byte {
		path := filepath.Join(dir, name)
		if err := write(path); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	pemData = read("id.pem", func(p string) error { return WritePEM(p, id) })
	legacyP12 = read("legacy.p12", func(p string) error { return WriteP12(p, id, []byte("password"), P12Legacy) })
	modernP12 = read("modern.p12", func(p string) error { return WriteP12(p, id, []byte("password"), P12Modern) })
	return pemData, legacyP12, modernP12
}

// FuzzParsePEM feeds LoadPEM's parser one or two files' worth of arbitrary bytes.
// Seeds: a generated identity (whole, and split between two files), and in
// testdata/fuzz/FuzzParsePEM an RSA key and certificate made by openssl.
func FuzzParsePEM(f *testing.F) {
	seed, _, _ := generatedIdentity(f)
	f.Add(seed, []byte(nil))
	f.Add(seed[:len(seed)/2], seed[len(seed)/2:])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		files := []namedData{{"a.pem", a}}
		if b != nil {
			files = append(files, namedData{"b.pem", b})
		}
		id, err := parsePEM(files)
		if err != nil {
			return
		}
		checkIdentity(t, id)
	})
}

// FuzzParseP12 feeds LoadP12's parser arbitrary bytes (password "password"). Seeds:
// WriteP12's legacy and modern files of a generated identity, and in
// testdata/fuzz/FuzzParseP12 openssl's legacy (RC2-40 + 3DES) and modern files.
func FuzzParseP12(f *testing.F) {
	_, legacy, modern := generatedIdentity(f)
	f.Add(legacy)
	f.Add(modern)
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := parseP12("f.p12", data, []byte("password"))
		if err != nil {
			return
		}
		checkIdentity(t, id)
	})
}

// checkIdentity asserts what every loaded identity guarantees.
func checkIdentity(t *testing.T, id Identity) {
	t.Helper()
	if id.Signer == nil || id.Certificate == nil {
		t.Fatal("identity without key or certificate")
	}
	pub, ok := id.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(id.Certificate.PublicKey) {
		t.Fatal("the key does not match the leaf certificate")
	}
	if err := checkKeyType(id.Certificate.PublicKey); err != nil {
		t.Fatalf("loaded a certificate with an unusable key: %v", err)
	}
	for _, c := range id.Chain {
		if c.Equal(id.Certificate) {
			t.Fatal("the leaf is repeated in the chain")
		}
	}
}

// readSeed decodes a committed corpus file ("go test fuzz v1" and one []byte(...)
// line per argument).
func readSeed(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", path)
	}
	var out [][]byte
	for _, l := range lines[1:] {
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(l, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// The committed seeds are valid identities, so fuzzing starts from inputs that reach
// the end of the parsers, not from ones rejected at the first byte.
func TestCommittedFuzzSeedsLoad(t *testing.T) {
	pems, _ := filepath.Glob("testdata/fuzz/FuzzParsePEM/*")
	p12s, _ := filepath.Glob("testdata/fuzz/FuzzParseP12/*")
	if len(pems) == 0 || len(p12s) < 2 {
		t.Fatalf("seed corpus missing: %d PEM, %d p12 files", len(pems), len(p12s))
	}
	for _, path := range pems {
		var files []namedData
		for i, b := range readSeed(t, path) {
			files = append(files, namedData{fmt.Sprint(i), b})
		}
		id, err := parsePEM(files)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		checkIdentity(t, id)
	}
	for _, path := range p12s {
		id, err := parseP12(path, readSeed(t, path)[0], []byte("password"))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		checkIdentity(t, id)
	}
}
