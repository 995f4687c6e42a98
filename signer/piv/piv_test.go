//go:build cgo

package piv_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/pcsctest"
	"github.com/farsign/farsign/internal/vpiv"
	"github.com/farsign/farsign/signer/keysource"
	"github.com/farsign/farsign/signer/piv"
)

// prompt is a scripted PIN prompt that records what it was asked.
type prompt struct {
	mu      sync.Mutex
	answers []string
	asked   []int // retries shown at each prompt
}

func (p *prompt) fn(t *testing.T) func(context.Context, int) (string, error) {
	return func(_ context.Context, retries int) (string, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.asked = append(p.asked, retries)
		if len(p.answers) == 0 {
			t.Errorf("unexpected PIN prompt (retries %d)", retries)
			return "", errors.New("no more scripted PINs")
		}
		a := p.answers[0]
		p.answers = p.answers[1:]
		return a, nil
	}
}

func pins(n int, pin string) *prompt {
	p := &prompt{}
	for range n {
		p.answers = append(p.answers, pin)
	}
	return p
}

// provision generates a key in slot on the card with the given serial and
// stores a self-signed certificate made by that key: what `signer
// smartcard-generate-key` does, through the library.
func provision(t *testing.T, serial uint32, slot piv.Slot, alg piv.Algorithm, pp piv.PINPolicy, tp piv.TouchPolicy, cn string) *x509.Certificate {
	t.Helper()
	dev, err := piv.OpenDevice(serial)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	pub, err := dev.GenerateKey(nil, slot, alg, pp, tp)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dev.Signer(context.Background(), slot, pub, piv.Options{PINPrompt: pins(1, vpiv.DefaultPIN).fn(t), Notice: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("card-made self-signed certificate does not verify: %v", err)
	}
	if err := dev.SetCertificate(nil, slot, cert); err != nil {
		t.Fatal(err)
	}
	return cert
}

func newCard(t *testing.T, cfg vpiv.Config) *vpiv.Card {
	t.Helper()
	card, _ := pcsctest.NewCard(t, cfg)
	return card
}

func sign(t *testing.T, k crypto.Signer, msg []byte) []byte {
	t.Helper()
	sig, err := crypto.SignMessage(k, rand.Reader, msg, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestSignRSAWithPINAlways(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	cert := provision(t, card.Serial(), piv.SlotSignature, piv.RSA2048, piv.PINDefault, piv.TouchDefault, "rsa 9c")
	p := pins(2, vpiv.DefaultPIN)
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9c", PINPrompt: p.fn(t), Notice: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if !k.Certificate().Equal(cert) || len(k.Chain()) != 0 {
		t.Fatal("wrong certificate or chain")
	}
	if pp, _ := k.(*piv.RSAKey).Policies(); pp != piv.PINAlways {
		t.Errorf("9c default PIN policy %q", pp)
	}
	for _, msg := range []string{"first", "second"} {
		sig := sign(t, k, []byte(msg))
		if err := cert.CheckSignature(x509.SHA256WithRSA, []byte(msg), sig); err != nil {
			t.Fatalf("signature does not verify with the slot certificate: %v", err)
		}
	}
	// PIN-always: one prompt per signature. (The retry count is unknown, -1,
	// while the card still holds an earlier verification, as a YubiKey does.)
	if len(p.asked) != 2 {
		t.Errorf("prompted %d times, want 2", len(p.asked))
	}
	if _, err := keysource.Decrypter(k); err != nil {
		t.Errorf("RSA slot key is not a Decrypter: %v", err)
	}
}

func TestSignECDSAWithPINOnce(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	cert := provision(t, card.Serial(), piv.SlotAuthentication, piv.P256, piv.PINOnce, piv.TouchNever, "p256 9a")
	p := pins(1, vpiv.DefaultPIN)
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9a", PINPrompt: p.fn(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, ok := k.Public().(*ecdsa.PublicKey); !ok {
		t.Fatalf("public key %T", k.Public())
	}
	for range 3 {
		sig := sign(t, k, []byte("code directory"))
		if err := cert.CheckSignature(x509.ECDSAWithSHA256, []byte("code directory"), sig); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.asked) != 1 {
		t.Errorf("PIN-once slot prompted %d times", len(p.asked))
	}
	if _, err := keysource.Decrypter(k); !errors.Is(err, keysource.ErrCannotDecrypt) {
		t.Errorf("ECDSA key as Decrypter: %v", err)
	}
}

// TestDecryptOAEP is the publickey0 path: the initiator encrypts an AES key to
// the signer's certificate with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label);
// the card does the raw RSA operation and the key source removes the padding.
func TestDecryptOAEP(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	cert := provision(t, card.Serial(), piv.SlotKeyManagement, piv.RSA2048, piv.PINOnce, piv.TouchNever, "rsa 9d")
	p := pins(1, vpiv.DefaultPIN)
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9d", PINPrompt: p.fn(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dec, err := keysource.Decrypter(k)
	if err != nil {
		t.Fatal(err)
	}
	pub := cert.PublicKey.(*rsa.PublicKey)
	oaep := &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}
	for range 3 {
		aesKey := make([]byte, 16)
		rand.Read(aesKey)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, aesKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decrypt(rand.Reader, ct, oaep)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, aesKey) {
			t.Fatalf("decrypted %x, want %x", got, aesKey)
		}
	}
	// The card connection survives the raw operations: signing still works and
	// the PIN-once slot does not ask again.
	msg := []byte("after decrypt")
	if err := cert.CheckSignature(x509.SHA256WithRSA, msg, sign(t, k, msg)); err != nil {
		t.Fatal(err)
	}
	if len(p.asked) != 1 {
		t.Errorf("PIN prompted %d times", len(p.asked))
	}
	// PKCS #1 v1.5 (a padding oracle) is refused, and a ciphertext for another
	// key fails with the one undifferentiated error.
	ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("secret"), nil)
	if _, err := dec.Decrypt(rand.Reader, ct, nil); err == nil || !strings.Contains(err.Error(), "RSA-OAEP only") {
		t.Fatalf("nil options: %v", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ct, _ = rsa.EncryptOAEP(sha256.New(), rand.Reader, &other.PublicKey, []byte("not for you"), nil)
	if ct[0] >= pub.N.Bytes()[0] {
		ct[0] = 0 // keep it below the modulus so the card actually decrypts it
	}
	if _, err := dec.Decrypt(rand.Reader, ct, oaep); err == nil || !strings.Contains(err.Error(), "decryption failed") {
		t.Fatalf("foreign ciphertext: %v", err)
	}
	if _, err := dec.Decrypt(rand.Reader, ct[:100], oaep); err == nil {
		t.Fatal("short ciphertext accepted")
	}
}

func TestWrongPINShowsRetriesThenSucceeds(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	provision(t, card.Serial(), piv.SlotSignature, piv.P256, piv.PINAlways, piv.TouchNever, "retries")
	p := &prompt{answers: []string{"000000", "111111", vpiv.DefaultPIN}}
	var notice bytes.Buffer
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9c", PINPrompt: p.fn(t), Notice: &notice})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sign(t, k, []byte("x"))
	if len(p.asked) != 3 || p.asked[1] != 2 || p.asked[2] != 1 {
		t.Errorf("prompts saw retries %v, want [_ 2 1]", p.asked)
	}
	for _, w := range []string{"wrong smart card PIN: 2 attempts left", "wrong smart card PIN: 1 attempt left"} {
		if !strings.Contains(notice.String(), w) {
			t.Errorf("notices lack %q:\n%s", w, notice.String())
		}
	}
	if card.PINRetries() != 3 {
		t.Errorf("retries not reset after the right PIN: %d", card.PINRetries())
	}
}

func TestPINFromEnvironment(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	cert := provision(t, card.Serial(), piv.SlotSignature, piv.RSA2048, piv.PINAlways, piv.TouchNever, "env")
	never := (&prompt{}).fn(t) // fails the test if called
	signWith := func(msg string) ([]byte, error) {
		k, err := piv.Open(context.Background(), piv.Options{Slot: "9c", PINEnv: "FARSIGN_TEST_PIN", PINPrompt: never})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		return crypto.SignMessage(k, rand.Reader, []byte(msg), crypto.SHA256)
	}

	t.Setenv("FARSIGN_TEST_PIN", "")
	_, err := signWith("x")
	if err == nil || !strings.Contains(err.Error(), "--smartcard-pin-env FARSIGN_TEST_PIN") {
		t.Fatalf("unset variable: %v", err)
	}
	t.Setenv("FARSIGN_TEST_PIN", "999999")
	_, err = signWith("x")
	var wrong *piv.WrongPINError
	if !errors.As(err, &wrong) || wrong.Retries != 2 || !strings.Contains(err.Error(), "$FARSIGN_TEST_PIN") {
		t.Fatalf("wrong PIN from the environment: %v", err)
	}
	if card.PINRetries() != 2 {
		t.Fatalf("a wrong PIN from the environment must be tried once only; retries left %d", card.PINRetries())
	}
	t.Setenv("FARSIGN_TEST_PIN", vpiv.DefaultPIN)
	sig, err := signWith("y")
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte("y"), sig); err != nil {
		t.Fatal(err)
	}
}

func TestBlockedPINIsExplained(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	provision(t, card.Serial(), piv.SlotSignature, piv.P256, piv.PINAlways, piv.TouchNever, "blocked")
	p := pins(3, "000000")
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9c", PINPrompt: p.fn(t), Notice: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	_, err = crypto.SignMessage(k, rand.Reader, []byte("x"), crypto.SHA256)
	if !errors.Is(err, piv.ErrPINBlocked) {
		t.Fatalf("after three wrong PINs: %v", err)
	}
	for _, w := range []string{"blocked", "PUK", "unblock-pin"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	// Once blocked, no prompt: the card says so before anyone types a PIN.
	_, err = crypto.SignMessage(k, rand.Reader, []byte("x"), crypto.SHA256)
	if !errors.Is(err, piv.ErrPINBlocked) || len(p.asked) != 3 {
		t.Fatalf("second attempt: %v after %d prompts", err, len(p.asked))
	}
}

func TestTouchNotice(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	provision(t, card.Serial(), piv.SlotCardAuthentication, piv.P256, piv.PINNever, piv.TouchAlways, "touch")
	touchesBefore := card.Touches()
	var notice bytes.Buffer
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9e", Notice: &notice, PINPrompt: (&prompt{}).fn(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sign(t, k, []byte("touch me"))
	if !strings.Contains(notice.String(), "Touch the smart card (serial") {
		t.Errorf("no touch notice: %q", notice.String())
	}
	if card.Touches() != touchesBefore+1 {
		t.Errorf("card saw %d touches", card.Touches()-touchesBefore)
	}
}

func TestSelectsCardBySerial(t *testing.T) {
	a, err := vpiv.New(vpiv.Config{Serial: 11111111})
	if err != nil {
		t.Fatal(err)
	}
	b, err := vpiv.New(vpiv.Config{Serial: 22222222})
	if err != nil {
		t.Fatal(err)
	}
	pcsctest.Start(t, a, b)
	provision(t, 11111111, piv.SlotSignature, piv.P256, piv.PINNever, piv.TouchNever, "card A")
	provision(t, 22222222, piv.SlotSignature, piv.P256, piv.PINNever, piv.TouchNever, "card B")

	_, err = piv.Open(context.Background(), piv.Options{Slot: "9c"})
	var multi *piv.MultipleDevicesError
	if !errors.As(err, &multi) || len(multi.Serials) != 2 || !strings.Contains(err.Error(), "--smartcard-serial") {
		t.Fatalf("two cards, no serial: %v", err)
	}
	k, err := piv.Open(context.Background(), piv.Options{Slot: "9c", Serial: 22222222})
	if err != nil {
		t.Fatal(err)
	}
	if cn := k.Certificate().Subject.CommonName; cn != "card B" {
		t.Errorf("opened %q", cn)
	}
	k.Close()
	if _, err := piv.Open(context.Background(), piv.Options{Slot: "9c", Serial: 33333333}); err == nil || !strings.Contains(err.Error(), "no smart card with serial 33333333") {
		t.Fatalf("unknown serial: %v", err)
	}
	infos, err := piv.Scan()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]string{}
	for _, d := range infos {
		for _, s := range d.Slots {
			if s.Slot == piv.SlotSignature && s.Certificate != nil && s.Key != nil && s.Key.Generated {
				seen[d.Serial] = s.Certificate.Subject.CommonName
			}
		}
	}
	if seen[11111111] != "card A" || seen[22222222] != "card B" {
		t.Errorf("scan saw %v", seen)
	}
}

func TestRefusesMismatchedOrMissingCertificate(t *testing.T) {
	card := newCard(t, vpiv.Config{})
	if _, err := piv.Open(context.Background(), piv.Options{Slot: "9c"}); err == nil || !strings.Contains(err.Error(), "holds no certificate") {
		t.Fatalf("empty slot: %v", err)
	}
	provision(t, card.Serial(), piv.SlotSignature, piv.P256, piv.PINNever, piv.TouchNever, "stale")
	dev, err := piv.OpenDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.GenerateKey(nil, piv.SlotSignature, piv.P256, piv.PINNever, piv.TouchNever); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if _, err := piv.Open(context.Background(), piv.Options{Slot: "9c"}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("stale certificate: %v", err)
	}
	if _, err := piv.Open(context.Background(), piv.Options{Slot: "9b"}); err == nil || !strings.Contains(err.Error(), "invalid smart card slot") {
		t.Fatalf("bad slot: %v", err)
	}
}

func TestManagementKey(t *testing.T) {
	custom := bytes.Repeat([]byte{0x5a}, 24)
	card := newCard(t, vpiv.Config{ManagementKey: custom})
	dev, err := piv.OpenDevice(card.Serial())
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	_, err = dev.GenerateKey(nil, piv.SlotSignature, piv.P256, piv.PINDefault, piv.TouchDefault)
	if err == nil || !strings.Contains(err.Error(), "--management-key-env") {
		t.Fatalf("default key on a card with a custom one: %v", err)
	}
	if _, err := dev.GenerateKey(custom, piv.SlotSignature, piv.P256, piv.PINDefault, piv.TouchDefault); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSign compares an RSA-2048 signature made by the virtual card through
// pcscd (PIN verification + GENERAL AUTHENTICATE, per signature on a PIN-always
// slot) with the same signature made in-process by crypto/rsa, the baseline.
func BenchmarkSign(b *testing.B) {
	card, err := vpiv.New(vpiv.Config{})
	if err != nil {
		b.Fatal(err)
	}
	pcsctest.Start(b, card)
	dev, err := piv.OpenDevice(card.Serial())
	if err != nil {
		b.Fatal(err)
	}
	pub, err := dev.GenerateKey(nil, piv.SlotSignature, piv.RSA2048, piv.PINAlways, piv.TouchNever)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := dev.Signer(context.Background(), piv.SlotSignature, pub, piv.Options{PINPrompt: func(context.Context, int) (string, error) { return vpiv.DefaultPIN, nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	digest := sha256.Sum256([]byte("benchmark"))
	soft, _ := rsa.GenerateKey(rand.Reader, 2048)
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if _, err := soft.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("virtual-card-via-pcscd", func(b *testing.B) {
		for b.Loop() {
			if _, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}
