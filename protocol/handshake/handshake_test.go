package handshake

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/sjs"
)

var (
	keysOnce sync.Once
	keys     [2]*rsa.PrivateKey
	keysErr  error
)

// testKey returns one of two RSA-2048 keys generated once per test binary.
func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for n := range keys {
			if keys[n], keysErr = rsa.GenerateKey(rand.Reader, 2048); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys[i]
}

func spkiOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// converse checks that the two channels talk in both directions, several times.
func converse(t *testing.T, a, b *channel.Channel) {
	t.Helper()
	for i, m := range []string{ping, ping, pong, pong, "request", "answer"} {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		ct, err := from.Seal([]byte(m))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := to.Open(ct)
		if err != nil || string(pt) != m {
			t.Fatalf("message %d: %q, %v", i, pt, err)
		}
	}
}

// reparse prints the join string the way the initiator does and reads it back the
// way the signer does, in both text forms, returning the PEM-parsed result.
func reparse(t *testing.T, init *Initiator) sjs.JoinString {
	t.Helper()
	fromLine, err := sjs.Parse(init.Line())
	if err != nil {
		t.Fatal(err)
	}
	fromPEM, err := sjs.Parse("# pasted\n" + init.PEM())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sjs.Marshal(fromLine)
	b, _ := sjs.Marshal(fromPEM)
	if !bytes.Equal(a, init.JoinString()) || !bytes.Equal(b, a) {
		t.Fatal("text forms do not round-trip to the same join string")
	}
	return fromPEM
}

func TestPublicKey0RoundTrip(t *testing.T) {
	key := testKey(t, 0)
	for _, url := range []string{"wss://relay.example/", ""} {
		init, err := NewPublicKey0(spkiOf(t, &key.PublicKey), url)
		if err != nil {
			t.Fatal(err)
		}
		card := &oaepCard{t: t, key: key}
		j, err := Join(reparse(t, init), Credentials{Key: card})
		if err != nil {
			t.Fatal(err)
		}
		if card.calls != 1 {
			t.Fatalf("Decrypt called %d times", card.calls)
		}
		if j.ServerURL() != url || j.SessionID() != init.SessionID() || j.Scheme() != sjs.SchemePublicKey0 {
			t.Fatalf("joiner url %q session %q scheme %q", j.ServerURL(), j.SessionID(), j.Scheme())
		}
		chA, err := init.Finish(j.JoinContext())
		if err != nil {
			t.Fatal(err)
		}
		chB, err := j.Finish()
		if err != nil {
			t.Fatal(err)
		}
		converse(t, chA, chB)
		if _, err := init.Finish(j.JoinContext()); !errors.Is(err, ErrFinished) {
			t.Fatalf("second Initiator.Finish: %v", err)
		}
		if _, err := j.Finish(); !errors.Is(err, ErrFinished) {
			t.Fatalf("second Joiner.Finish: %v", err)
		}
	}
}

func TestSharedSecret0RoundTrip(t *testing.T) {
	init, err := NewSharedSecret0([]byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(init.Line()); n != 144 {
		t.Errorf("sharedsecret0 line is %d chars, want 144", n)
	}
	j, err := Join(reparse(t, init), Credentials{Password: []byte("correct horse battery staple")})
	if err != nil {
		t.Fatal(err)
	}
	if j.ServerURL() != "" || j.SessionID() != init.SessionID() || len(j.JoinContext()) != 44 {
		t.Fatalf("joiner url %q session %q context %q", j.ServerURL(), j.SessionID(), j.JoinContext())
	}
	chA, err := init.Finish(j.JoinContext())
	if err != nil {
		t.Fatal(err)
	}
	chB, _ := j.Finish()
	converse(t, chA, chB)
}

func TestSessionIDsAreUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		id, err := newSessionID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) || strings.ToLower(id) != id || seen[id] {
			t.Fatalf("bad or repeated UUIDv4 %q", id)
		}
		seen[id] = true
	}
}

// A wrong shared secret is invisible until the first message, where both sides
// get channel.ErrKeyMismatch.
func TestWrongSharedSecretDetectedAtFirstMessage(t *testing.T) {
	init, err := NewSharedSecret0([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := sjs.Unmarshal(init.JoinString())
	j, err := JoinSharedSecret0(js.(*sjs.SharedSecret0), []byte("wrong"))
	if err != nil {
		t.Fatalf("join must succeed (SPAKE2 has no confirmation): %v", err)
	}
	chA, err := init.Finish(j.JoinContext())
	if err != nil {
		t.Fatal(err)
	}
	chB, _ := j.Finish()
	for _, dir := range []struct {
		name     string
		from, to *channel.Channel
	}{{"signer opens initiator's ping", chA, chB}, {"initiator opens signer's ping", chB, chA}} {
		ct, _ := dir.from.Seal([]byte(ping))
		_, err := dir.to.Open(ct)
		if !errors.Is(err, channel.ErrKeyMismatch) {
			t.Fatalf("%s: %v, want ErrKeyMismatch", dir.name, err)
		}
		if !strings.Contains(err.Error(), "wrong shared secret") {
			t.Errorf("%s: message %q does not name the likely cause", dir.name, err)
		}
	}
}

func TestWrongRSAKeyRefused(t *testing.T) {
	right, wrong := testKey(t, 0), testKey(t, 1)
	init, err := NewPublicKey0(spkiOf(t, &right.PublicKey), "wss://relay.example/")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := sjs.Unmarshal(init.JoinString())
	card := &oaepCard{t: t, key: wrong}
	_, err = JoinPublicKey0(js.(*sjs.PublicKey0), card)
	var km *KeyMismatchError
	if !errors.As(err, &km) || !errors.Is(err, ErrWrongKey) {
		t.Fatalf("err = %v, want *KeyMismatchError", err)
	}
	wantJS, wantOurs := SPKIFingerprint(spkiOf(t, &right.PublicKey)), SPKIFingerprint(spkiOf(t, &wrong.PublicKey))
	if km.JoinStringKey != wantJS || km.SignerKey != wantOurs {
		t.Fatalf("fingerprints %s / %s, want %s / %s", km.JoinStringKey, km.SignerKey, wantJS, wantOurs)
	}
	if msg := err.Error(); !strings.Contains(msg, wantJS) || !strings.Contains(msg, wantOurs) || !strings.Contains(msg, "different key") {
		t.Fatalf("message does not show both fingerprints: %s", msg)
	}
	if card.calls != 0 {
		t.Fatal("the wrong key was used to decrypt")
	}
}

// An SJS whose SPKI was swapped for the signer's own (so the fingerprint check
// passes) still fails: the RSA ciphertext is for another key.
func TestSwappedSPKIFailsToDecrypt(t *testing.T) {
	right, wrong := testKey(t, 0), testKey(t, 1)
	init, _ := NewPublicKey0(spkiOf(t, &right.PublicKey), "")
	js, _ := sjs.Unmarshal(init.JoinString())
	pk := js.(*sjs.PublicKey0)
	pk.SignerPublicKey = spkiOf(t, &wrong.PublicKey)
	_, err := JoinPublicKey0(pk, wrong)
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("err = %v", err)
	}
}

func TestTamperedJoinString(t *testing.T) {
	key := testKey(t, 0)
	init, _ := NewPublicKey0(spkiOf(t, &key.PublicKey), "wss://relay.example/")
	js, _ := sjs.Unmarshal(init.JoinString())
	for i := range js.(*sjs.PublicKey0).EncryptedMessage {
		pk := *js.(*sjs.PublicKey0)
		pk.EncryptedMessage = bytes.Clone(pk.EncryptedMessage)
		pk.EncryptedMessage[i] ^= 1
		if _, err := JoinPublicKey0(&pk, key); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	pk := *js.(*sjs.PublicKey0)
	pk.EncryptedKey = bytes.Clone(pk.EncryptedKey)
	pk.EncryptedKey[10] ^= 1
	if _, err := JoinPublicKey0(&pk, key); err == nil {
		t.Fatal("tampered RSA ciphertext accepted")
	}
}

// sealedJoinString builds a publickey0 join string around an arbitrary sealed
// message, to reach the signer's checks the initiator would never let through.
func sealedJoinString(t *testing.T, key *rsa.PrivateKey, msg []byte) *sjs.PublicKey0 {
	t.Helper()
	aesKey := make([]byte, 16)
	rand.Read(aesKey)
	gcm, _ := newGCM(aesKey)
	ek, err := rsa.EncryptOAEP(oaepOptions.Hash.New(), rand.Reader, &key.PublicKey, aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &sjs.PublicKey0{EncryptedKey: ek, SignerPublicKey: spkiOf(t, &key.PublicKey), EncryptedMessage: gcm.Seal(nil, gcmNonce, msg, nil)}
}

func TestJoinPublicKey0RejectsBadSealedMessage(t *testing.T) {
	key := testKey(t, 0)
	good := &sjs.PublicKey0Message{SessionID: "s", Challenge: make([]byte, 32), AgreementPublic: make([]byte, 32)}
	good.AgreementPublic[0] = 9 // the X25519 base point: a valid key
	enc := func(m sjs.PublicKey0Message) []byte {
		b, err := sjs.MarshalPublicKey0Message(&m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := JoinPublicKey0(sealedJoinString(t, key, enc(*good)), key); err != nil {
		t.Fatalf("control case failed: %v", err)
	}
	cases := map[string][]byte{
		"not CBOR":         []byte("hello"),
		"http relay":       enc(sjs.PublicKey0Message{ServerURL: "https://evil.example/", SessionID: "s", Challenge: good.Challenge, AgreementPublic: good.AgreementPublic}),
		"relay not a URL":  enc(sjs.PublicKey0Message{ServerURL: "::", SessionID: "s", Challenge: good.Challenge, AgreementPublic: good.AgreementPublic}),
		"low-order X25519": enc(sjs.PublicKey0Message{SessionID: "s", Challenge: good.Challenge, AgreementPublic: make([]byte, 32)}),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			if j, err := JoinPublicKey0(sealedJoinString(t, key, msg), key); err == nil {
				t.Fatalf("accepted, joining %q at %q", j.SessionID(), j.ServerURL())
			}
		})
	}
}

func TestKeyTypeErrors(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		spki []byte
		want string
	}{
		"ECDSA":    {spkiOf(t, &ec.PublicKey), "ECDSA P-256"},
		"RSA-1024": {spkiOf(t, &small.PublicKey), "RSA-1024"},
		"garbage":  {[]byte("not DER"), "SubjectPublicKeyInfo"},
	} {
		if _, err := NewPublicKey0(c.spki, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewPublicKey0 err = %v, want mention of %q", name, err, c.want)
		}
	}
	if _, err := NewPublicKey0(spkiOf(t, &testKey(t, 0).PublicKey), "http://relay.example/"); err == nil {
		t.Error("http:// relay URL accepted")
	}
	init, _ := NewPublicKey0(spkiOf(t, &testKey(t, 0).PublicKey), "")
	js, _ := sjs.Unmarshal(init.JoinString())
	if _, err := JoinPublicKey0(js.(*sjs.PublicKey0), ecDecrypter{t, &ec.PublicKey}); err == nil || !strings.Contains(err.Error(), "needs an RSA key") {
		t.Errorf("ECDSA signer key: %v", err)
	}
}

// ecDecrypter is an EC key posing as a decrypter, as a PIV slot with an EC key would.
type ecDecrypter struct {
	t   *testing.T
	pub crypto.PublicKey
}

func (e ecDecrypter) Public() crypto.PublicKey { return e.pub }
func (e ecDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	e.t.Error("Decrypt called on an EC key")
	return nil, errors.New("unsupported")
}

func TestJoinNeedsTheRightCredential(t *testing.T) {
	pk, _ := NewPublicKey0(spkiOf(t, &testKey(t, 0).PublicKey), "")
	ss, _ := NewSharedSecret0([]byte("pw"))
	pkJS, _ := sjs.Unmarshal(pk.JoinString())
	ssJS, _ := sjs.Unmarshal(ss.JoinString())
	if _, err := Join(pkJS, Credentials{Password: []byte("pw")}); !errors.Is(err, ErrNeedKey) {
		t.Errorf("publickey0 with a password: %v", err)
	}
	if _, err := Join(ssJS, Credentials{Key: testKey(t, 0)}); !errors.Is(err, ErrNeedPassword) {
		t.Errorf("sharedsecret0 with a key: %v", err)
	}
	if _, err := NewSharedSecret0(nil); err == nil {
		t.Error("empty shared secret accepted by the initiator")
	}
	if _, err := JoinSharedSecret0(ssJS.(*sjs.SharedSecret0), []byte{}); err == nil {
		t.Error("empty shared secret accepted by the signer")
	}
}

func TestInitiatorFinishRejectsBadContext(t *testing.T) {
	zero32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	identityB := base64.StdEncoding.EncodeToString(append([]byte{'B', 1}, make([]byte, 31)...))
	for _, c := range []struct {
		scheme, ctx string
	}{
		{"publickey0", ""},
		{"publickey0", "not base64!"},
		{"publickey0", base64.RawStdEncoding.EncodeToString(make([]byte, 32))}, // unpadded
		{"publickey0", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"publickey0", zero32}, // low-order point: all-zero shared secret
		{"sharedsecret0", zero32},
		{"sharedsecret0", identityB},
		{"sharedsecret0", base64.StdEncoding.EncodeToString(append([]byte{'A'}, make([]byte, 32)...))},
	} {
		var init *Initiator
		var err error
		if c.scheme == "publickey0" {
			init, err = NewPublicKey0(spkiOf(t, &testKey(t, 0).PublicKey), "")
		} else {
			init, err = NewSharedSecret0([]byte("pw"))
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch, err := init.Finish(c.ctx); err == nil || ch != nil {
			t.Errorf("%s context %q accepted", c.scheme, c.ctx)
		}
		if _, err := init.Finish(c.ctx); !errors.Is(err, ErrFinished) {
			t.Errorf("%s: a failed Finish must be final, got %v", c.scheme, err)
		}
	}
}

func FuzzInitiatorFinish(f *testing.F) {
	f.Add("publickey0", "WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns=")
	f.Add("sharedsecret0", "Qt44SrPWLKuDebc8MJ65GcPeqpp5g3zoxd9wPMmIvJyc")
	f.Add("sharedsecret0", "QQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("publickey0", "")
	key := testKey(f, 0)
	spki := spkiOf(f, &key.PublicKey)
	aPriv, _ := ecdh.X25519().NewPrivateKey(seq(1, 32))
	f.Fuzz(func(t *testing.T, scheme, ctx string) {
		var init *Initiator
		var err error
		if scheme == "publickey0" {
			init, err = newPublicKey0(spki, "", "fuzz", seq(0, 31), seq(0, 15), aPriv)
		} else {
			init, err = NewSharedSecret0([]byte("pw"))
		}
		if err != nil {
			t.Fatal(err)
		}
		ch, err := init.Finish(ctx)
		if (err == nil) != (ch != nil) {
			t.Fatalf("channel %v with error %v", ch, err)
		}
	})
}

func BenchmarkPublicKey0Agreement(b *testing.B) {
	key := testKey(b, 0)
	spki := spkiOf(b, &key.PublicKey)
	for b.Loop() {
		init, err := NewPublicKey0(spki, "wss://relay.example/")
		if err != nil {
			b.Fatal(err)
		}
		js, err := sjs.Unmarshal(init.JoinString())
		if err != nil {
			b.Fatal(err)
		}
		j, err := JoinPublicKey0(js.(*sjs.PublicKey0), key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := init.Finish(j.JoinContext()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSharedSecret0Agreement(b *testing.B) {
	pw := []byte("correct horse battery staple")
	for b.Loop() {
		init, err := NewSharedSecret0(pw)
		if err != nil {
			b.Fatal(err)
		}
		js, err := sjs.Unmarshal(init.JoinString())
		if err != nil {
			b.Fatal(err)
		}
		j, err := JoinSharedSecret0(js.(*sjs.SharedSecret0), pw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := init.Finish(j.JoinContext()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSA2048DecryptOAEP is the baseline for BenchmarkPublicKey0Agreement: the
// one private-key operation a publickey0 agreement costs the signer.
func BenchmarkRSA2048DecryptOAEP(b *testing.B) {
	key := testKey(b, 0)
	ct, err := rsa.EncryptOAEP(oaepOptions.Hash.New(), rand.Reader, &key.PublicKey, make([]byte, 16), nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := key.Decrypt(nil, ct, oaepOptions); err != nil {
			b.Fatal(err)
		}
	}
}
