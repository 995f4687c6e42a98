package spake2

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// Appendix A.1: the spake2 crate's own test vectors.
const (
	vecX     = "2611694063369306139794446498317402240796898290761098242657700742213257926693"
	vecY     = "7002393159576182977806091886122272758628412261510164356026361256515836884383"
	vecW     = "3515301705789368674385125653994241092664323519848410154015274772661223168839"
	vecAMsg  = "416fc960df73c9cf8ed7198b0c9534e2e96a5984bfc5edc023fd24dacf371f2af9"
	vecBMsg  = "42354e97b88406922b1df4bea1d7870f17aed3dba7c720b313edae315b00959309"
	vecKey   = "712295de7219c675ddd31942184aa26e0a957cf216bc230d165b215047b520c1"
	vecTHash = "d59d9ba920f7092565cec747b08d5b2e981d553ac32fde0f25e5b4a4cfca3efd"
)

// decimalScalar converts a decimal integer < L to a scalar (little-endian bytes).
func decimalScalar(t testing.TB, dec string) *edwards25519.Scalar {
	t.Helper()
	n, ok := new(big.Int).SetString(dec, 10)
	if !ok {
		t.Fatalf("bad decimal %q", dec)
	}
	be := n.FillBytes(make([]byte, 32))
	slices.Reverse(be)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(be)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorA1PasswordScalar(t *testing.T) {
	var w edwards25519.Scalar
	if err := passwordScalar(&w, []byte("password")); err != nil {
		t.Fatal(err)
	}
	if want := decimalScalar(t, vecW); w.Equal(want) != 1 {
		t.Fatalf("w = %x, want %x", w.Bytes(), want.Bytes())
	}
}

func TestVectorA1Exchange(t *testing.T) {
	pw, idA, idB := []byte("password"), []byte("idA"), []byte("idB")
	a, err := start(SideA, pw, idA, idB, decimalScalar(t, vecX))
	if err != nil {
		t.Fatal(err)
	}
	b, err := start(SideB, pw, idA, idB, decimalScalar(t, vecY))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(a.Message()); got != vecAMsg {
		t.Errorf("A message = %s, want %s", got, vecAMsg)
	}
	if got := hex.EncodeToString(b.Message()); got != vecBMsg {
		t.Errorf("B message = %s, want %s", got, vecBMsg)
	}
	ka, err := a.Finish(unhex(t, vecBMsg))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Finish(unhex(t, vecAMsg))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(ka); got != vecKey {
		t.Errorf("A key = %s, want %s", got, vecKey)
	}
	if got := hex.EncodeToString(kb); got != vecKey {
		t.Errorf("B key = %s, want %s", got, vecKey)
	}
}

func TestVectorA1TranscriptHash(t *testing.T) {
	pw, idA, idB := sha256.Sum256([]byte("pw")), sha256.Sum256([]byte("idA")), sha256.Sum256([]byte("idB"))
	got := transcriptKey(&pw, &idA, &idB,
		bytes.Repeat([]byte("X"), 32), bytes.Repeat([]byte("Y"), 32), bytes.Repeat([]byte("K"), 32))
	if hex.EncodeToString(got) != vecTHash {
		t.Fatalf("transcript hash = %x, want %s", got, vecTHash)
	}
}

func TestConstantsInPrimeOrderSubgroup(t *testing.T) {
	for name, p := range map[string]*edwards25519.Point{"M": pointM, "N": pointN, "G": edwards25519.NewGeneratorPoint()} {
		if !inPrimeOrderSubgroup(p) {
			t.Errorf("%s is not in the prime-order subgroup", name)
		}
	}
}

func TestRandomExchangeAgrees(t *testing.T) {
	for _, pw := range [][]byte{[]byte("correct horse battery staple"), {}, []byte("pässwörd\x00\xff")} {
		a, am, err := Start(SideA, pw, []byte("A:x"), []byte("B:x"))
		if err != nil {
			t.Fatal(err)
		}
		b, bm, err := Start(SideB, pw, []byte("A:x"), []byte("B:x"))
		if err != nil {
			t.Fatal(err)
		}
		ka, err := a.Finish(bm)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := b.Finish(am)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ka, kb) || len(ka) != KeySize {
			t.Fatalf("keys differ: %x vs %x", ka, kb)
		}
	}
}

func TestWrongPasswordOrIdentityGivesDifferentKeys(t *testing.T) {
	cases := []struct {
		name            string
		pwB, idAB, idBB []byte
	}{
		{"password", []byte("wrong"), []byte("idA"), []byte("idB")},
		{"idA", []byte("right"), []byte("idA2"), []byte("idB")},
		{"idB", []byte("right"), []byte("idA"), []byte("idB2")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, am, _ := Start(SideA, []byte("right"), []byte("idA"), []byte("idB"))
			b, bm, _ := Start(SideB, c.pwB, c.idAB, c.idBB)
			ka, errA := a.Finish(bm)
			kb, errB := b.Finish(am)
			if errA != nil || errB != nil {
				t.Fatalf("SPAKE2 has no confirmation; Finish must succeed: %v, %v", errA, errB)
			}
			if bytes.Equal(ka, kb) {
				t.Fatal("keys agree despite a mismatch")
			}
		})
	}
}

func TestFinishRejects(t *testing.T) {
	_, bm, err := Start(SideB, []byte("pw"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	order2 := unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // (0, −1)
	t2, err := new(edwards25519.Point).SetBytes(order2)
	if err != nil {
		t.Fatal(err)
	}
	mixed := new(edwards25519.Point).Add(edwards25519.NewGeneratorPoint(), t2).Bytes() // order 2L
	identity := edwards25519.NewIdentityPoint().Bytes()
	notOnCurve := unhex(t, "0200000000000000000000000000000000000000000000000000000000000000")
	if _, err := new(edwards25519.Point).SetBytes(notOnCurve); err == nil {
		t.Fatal("test premise: y=2 should not decode")
	}
	nonCanonicalIdentity := unhex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // y = p+1

	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrWrongLength},
		{"short", bm[:32], ErrWrongLength},
		{"long", append(slices.Clone(bm), 0), ErrWrongLength},
		{"same side", append([]byte{'A'}, bm[1:]...), ErrBadSide},
		{"unknown side", append([]byte{'S'}, bm[1:]...), ErrBadSide},
		{"not a point", append([]byte{'B'}, notOnCurve...), ErrCorrupt},
		{"non-canonical", append([]byte{'B'}, nonCanonicalIdentity...), ErrCorrupt},
		{"identity", append([]byte{'B'}, identity...), ErrWeakPoint},
		{"order 2", append([]byte{'B'}, order2...), ErrWeakPoint},
		{"order 2L", append([]byte{'B'}, mixed...), ErrWeakPoint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, _, err := Start(SideA, []byte("pw"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, err := a.Finish(c.msg)
			if !errors.Is(err, c.want) || key != nil {
				t.Fatalf("Finish = %x, %v; want %v", key, err, c.want)
			}
			// A failed Finish erases the secrets: the state is spent.
			if _, err := a.Finish(bm); !errors.Is(err, ErrFinished) {
				t.Fatalf("second Finish = %v, want ErrFinished", err)
			}
		})
	}
	t.Run("reflection", func(t *testing.T) {
		// Our own point sent back with the other side's letter.
		a, am, _ := Start(SideA, []byte("pw"), nil, nil)
		if _, err := a.Finish(append([]byte{'B'}, am[1:]...)); !errors.Is(err, ErrReflection) {
			t.Fatalf("err = %v, want ErrReflection", err)
		}
	})
}

func TestInvalidSide(t *testing.T) {
	if _, _, err := Start('S', []byte("pw"), nil, nil); err == nil {
		t.Fatal("side 'S' accepted")
	}
}

func TestFinishErasesSecrets(t *testing.T) {
	a, _, _ := Start(SideA, []byte("pw"), nil, nil)
	_, bm, _ := Start(SideB, []byte("pw"), nil, nil)
	if _, err := a.Finish(bm); err != nil {
		t.Fatal(err)
	}
	zero := edwards25519.NewScalar()
	if a.x.Equal(zero) != 1 || a.w.Equal(zero) != 1 || a.pwHash != [32]byte{} {
		t.Fatal("secrets still present after Finish")
	}
}

func FuzzFinish(f *testing.F) {
	f.Add(unhex(f, vecBMsg))
	f.Add(unhex(f, vecAMsg))
	f.Add([]byte{'B'})
	f.Add(append([]byte{'B'}, make([]byte, 32)...))
	f.Add(append([]byte{'B'}, unhex(f, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")...))
	a, err := start(SideA, []byte("password"), []byte("idA"), []byte("idB"), decimalScalar(f, vecX))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := *a // a fresh copy of the state for every input
		key, err := s.Finish(msg)
		if (err == nil) != (key != nil) {
			t.Fatalf("key %x with err %v", key, err)
		}
		if err == nil && len(key) != KeySize {
			t.Fatalf("key of %d bytes", len(key))
		}
		if bytes.Equal(msg, unhex(t, vecBMsg)) && hex.EncodeToString(key) != vecKey {
			t.Fatalf("vector key mismatch: %x", key)
		}
	})
}

// Appendix A.2, sharedsecret0: the SPAKE2 layer with rcodesign's identities
// ("A:"/"B:" ‖ session id ‖ ":" ‖ extra id) and A.1's ephemeral scalars.
func TestVectorA2SharedSecret0SPAKE2(t *testing.T) {
	const (
		idAHex   = "413a30623661346133632d356431652d346632612d396233632d3764386539663061316232633a000102030405060708090a0b0c0d0e0f"
		wLE      = "da22d56a44a092df850b089162e6655d4f295e03cd659d494da9c12bc4e0c909"
		aMsg     = "41c90b892258994d12c051f689d5ba7ec375b1805aa2d27ffaae66616e90dc135b"
		bMsg     = "42de384ab3d62cab8379b73c309eb919c3deaa9a79837ce8c5df703cc988bc9c9c"
		spakeKey = "e1ceb9a4573452fab5bad63b7ac7234724cda24b48e88add2b18098fcf9b30db"
	)
	pw := []byte("correct horse battery staple")
	idA := unhex(t, idAHex)
	idB := append([]byte{'B'}, idA[1:]...)
	var w edwards25519.Scalar
	if err := passwordScalar(&w, pw); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(w.Bytes()); got != wLE {
		t.Errorf("w = %s, want %s", got, wLE)
	}
	a, _ := start(SideA, pw, idA, idB, decimalScalar(t, vecX))
	b, _ := start(SideB, pw, idA, idB, decimalScalar(t, vecY))
	if got := hex.EncodeToString(a.Message()); got != aMsg {
		t.Errorf("A message = %s, want %s", got, aMsg)
	}
	if got := hex.EncodeToString(b.Message()); got != bMsg {
		t.Errorf("B message = %s, want %s", got, bMsg)
	}
	ka, errA := a.Finish(unhex(t, bMsg))
	kb, errB := b.Finish(unhex(t, aMsg))
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if hex.EncodeToString(ka) != spakeKey || hex.EncodeToString(kb) != spakeKey {
		t.Errorf("keys %x / %x, want %s", ka, kb, spakeKey)
	}
}
