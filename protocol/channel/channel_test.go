package channel

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"sync"
	"testing"
)

// Appendix A.2 session keys and the messages rcodesign's peers exchange first.
var a2 = []struct {
	scheme, keyA, keyB, pingA, pingB, pongA string
}{
	{
		scheme: "sharedsecret0",
		keyA:   "b219e14d2b114a8f652ad03960d780054e8fc87875d10e4b7f92f1ee570ee4fd",
		keyB:   "36e764392db13cf5a6b9dad73b8d1523399e61c2507f07cda40ce61a2816c401",
		pingA:  "lki6TB6oDpiAL9XCEA6BY9UdhxTnpBNaMpNB65liWvReQgACDdzixAoZ8ZPZgQ==",
		pingB:  "MAT4GDxp9EmDMmQj/DQ7FPCX8VHe3co5YU6x2P1LkdUHJaaa4YqW+DCKJnQn8w==",
		pongA:  "Ddt82rGgm2+iiyMpgmC8OUdpFkg2gfwMuTQYJSUlKc+W95G4PzeNC/i1JWHDIg==",
	},
	{
		scheme: "publickey0",
		keyA:   "fb1f38b0c5904b554155157b0eb19420432fca92e9fc0a986b0593b8f31a93a4",
		keyB:   "c755a561246c1d5b591b0ee7d1c67f9a0f2d67ba44be8886a671b6fd93f85501",
		pingA:  "3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ==",
		pingB:  "n4/T1TQPjCWJG7wfjXwJrPzmBi0r84J7pHX7MmZIagu7pi0h9BDBIjTG/8a1vA==",
	},
}

const (
	ping = `{"type":"ping","payload":null}`
	pong = `{"type":"pong","payload":null}`
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pair(t testing.TB, keyA, keyB []byte) (a, b *Channel) {
	t.Helper()
	a, err := New(keyA, keyB)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(keyB, keyA)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestVectorA2Messages(t *testing.T) {
	for _, v := range a2 {
		t.Run(v.scheme, func(t *testing.T) {
			a, b := pair(t, unhex(t, v.keyA), unhex(t, v.keyB))
			ct, err := a.Seal([]byte(ping))
			if err != nil {
				t.Fatal(err)
			}
			if got := base64.StdEncoding.EncodeToString(ct); got != v.pingA {
				t.Errorf("A ping = %s, want %s", got, v.pingA)
			}
			ct, err = b.Seal([]byte(ping))
			if err != nil {
				t.Fatal(err)
			}
			if got := base64.StdEncoding.EncodeToString(ct); got != v.pingB {
				t.Errorf("B ping = %s, want %s", got, v.pingB)
			}
			for _, c := range []struct {
				ch   *Channel
				b64  string
				want string
			}{{b, v.pingA, ping}, {a, v.pingB, ping}} {
				ct, _ := base64.StdEncoding.DecodeString(c.b64)
				pt, err := c.ch.Open(ct)
				if err != nil || string(pt) != c.want {
					t.Errorf("Open(%s) = %q, %v", c.b64, pt, err)
				}
			}
			if v.pongA != "" {
				ct, err := a.Seal([]byte(pong)) // nonce 1
				if err != nil {
					t.Fatal(err)
				}
				if got := base64.StdEncoding.EncodeToString(ct); got != v.pongA {
					t.Errorf("A pong = %s, want %s", got, v.pongA)
				}
				if pt, err := b.Open(ct); err != nil || string(pt) != pong {
					t.Errorf("B opening A's pong: %q, %v", pt, err)
				}
			}
		})
	}
}

// newPair returns two channels with fixed distinct keys.
func newPair(t testing.TB) (a, b *Channel) {
	return pair(t, bytes.Repeat([]byte{1}, KeySize), bytes.Repeat([]byte{2}, KeySize))
}

// sealN seals n messages "m0", "m1", … from a.
func sealN(t testing.TB, a *Channel, n int) [][]byte {
	t.Helper()
	var cts [][]byte
	for i := range n {
		ct, err := a.Seal([]byte{'m', byte('0' + i)})
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	return cts
}

// expectReject checks that Open fails with want and leaves the counter alone.
func expectReject(t *testing.T, b *Channel, ct []byte, want error) {
	t.Helper()
	_, before := b.Counters()
	pt, err := b.Open(ct)
	if !errors.Is(err, want) || pt != nil {
		t.Fatalf("Open = %q, %v; want error %v", pt, err, want)
	}
	if _, after := b.Counters(); after != before {
		t.Fatalf("receive counter moved from %d to %d on failure", before, after)
	}
}

func TestRejections(t *testing.T) {
	t.Run("replay", func(t *testing.T) {
		a, b := newPair(t)
		cts := sealN(t, a, 3)
		mustOpen(t, b, cts[0], "m0")
		mustOpen(t, b, cts[1], "m1")
		expectReject(t, b, cts[1], ErrReplay)
		expectReject(t, b, cts[0], ErrReplay)
		mustOpen(t, b, cts[2], "m2") // state unchanged: the stream continues
	})
	t.Run("reorder", func(t *testing.T) {
		a, b := newPair(t)
		cts := sealN(t, a, 3)
		mustOpen(t, b, cts[0], "m0")
		expectReject(t, b, cts[2], ErrReorder)
		mustOpen(t, b, cts[1], "m1")
		mustOpen(t, b, cts[2], "m2")
	})
	t.Run("reorder first", func(t *testing.T) {
		a, b := newPair(t)
		cts := sealN(t, a, 2)
		expectReject(t, b, cts[1], ErrReorder)
		mustOpen(t, b, cts[0], "m0")
	})
	t.Run("tampered", func(t *testing.T) {
		a, b := newPair(t)
		cts := sealN(t, a, 2)
		mustOpen(t, b, cts[0], "m0")
		for i := range cts[1] { // every byte, ciphertext and tag
			bad := bytes.Clone(cts[1])
			bad[i] ^= 0x80
			pt, err := b.Open(bad)
			if !errors.Is(err, ErrAuth) || errors.Is(err, ErrKeyMismatch) || pt != nil {
				t.Fatalf("byte %d flipped: %q, %v", i, pt, err)
			}
		}
		expectReject(t, b, cts[1][:len(cts[1])-1], ErrAuth)
		expectReject(t, b, cts[1][:Overhead-1], ErrAuth)
		expectReject(t, b, nil, ErrAuth)
		expectReject(t, b, append(bytes.Clone(cts[1]), 0), ErrAuth)
		mustOpen(t, b, cts[1], "m1")
	})
	t.Run("too large", func(t *testing.T) {
		a, b := newPair(t)
		if _, err := a.Seal(make([]byte, MaxPlaintextSize+1)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Seal oversized: %v", err)
		}
		if s, _ := a.Counters(); s != 0 {
			t.Fatal("send counter advanced on a refused Seal")
		}
		expectReject(t, b, make([]byte, MaxCiphertextSize+1), ErrTooLarge)
		ct, err := a.Seal(make([]byte, MaxPlaintextSize))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Open(ct); err != nil {
			t.Fatalf("largest message: %v", err)
		}
	})
	t.Run("wrong key on first message", func(t *testing.T) {
		a, _ := newPair(t)
		_, wrongB := pair(t, bytes.Repeat([]byte{9}, KeySize), bytes.Repeat([]byte{2}, KeySize))
		cts := sealN(t, a, 1)
		expectReject(t, wrongB, cts[0], ErrKeyMismatch)
		if _, err := wrongB.Open(cts[0]); !errors.Is(err, ErrAuth) {
			t.Fatalf("ErrKeyMismatch must also match ErrAuth: %v", err)
		}
	})
}

func mustOpen(t *testing.T, c *Channel, ct []byte, want string) {
	t.Helper()
	pt, err := c.Open(ct)
	if err != nil || string(pt) != want {
		t.Fatalf("Open = %q, %v; want %q", pt, err, want)
	}
}

func TestCounterNeverWraps(t *testing.T) {
	a, b := newPair(t)
	a.sendCtr, b.recvCtr = math.MaxUint32, math.MaxUint32
	ct, err := a.Seal([]byte("last"))
	if err != nil {
		t.Fatal(err)
	}
	mustOpen(t, b, ct, "last")
	if _, err := a.Seal([]byte("one more")); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Seal after 2^32 messages: %v", err)
	}
	if _, err := b.Open(ct); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Open after 2^32 messages: %v", err)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	if _, err := New(make([]byte, 31), make([]byte, 32)); err == nil {
		t.Fatal("31-byte key accepted")
	}
	if _, err := New(make([]byte, 32), nil); err == nil {
		t.Fatal("missing key accepted")
	}
}

// TestConcurrentDirections exercises the per-direction locks under -race.
func TestConcurrentDirections(t *testing.T) {
	a, b := newPair(t)
	const n = 200
	toB, toA := make(chan []byte, n), make(chan []byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(self *Channel, out chan<- []byte, in <-chan []byte) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				ct, err := self.Seal([]byte{byte(i)})
				if err != nil {
					errs <- err
					return
				}
				out <- ct
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				pt, err := self.Open(<-in)
				if err != nil || len(pt) != 1 || pt[0] != byte(i) {
					errs <- errors.Join(err, errors.New("bad plaintext"))
					return
				}
			}
		}()
	}
	run(a, toB, toA)
	run(b, toA, toB)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s, o := a.Counters(); s != n || o != n {
		t.Fatalf("counters %d/%d, want %d/%d", s, o, n, n)
	}
}

func FuzzOpen(f *testing.F) {
	keyA := unhex(f, a2[0].keyA)
	keyB := unhex(f, a2[0].keyB)
	good, _ := base64.StdEncoding.DecodeString(a2[0].pingA)
	pongA, _ := base64.StdEncoding.DecodeString(a2[0].pongA)
	f.Add(good)
	f.Add(pongA)
	f.Add(good[:Overhead])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ct []byte) {
		_, b := pair(t, keyA, keyB)
		pt, err := b.Open(ct)
		_, opened := b.Counters()
		if err == nil {
			// Only the genuine first message may open.
			if !bytes.Equal(ct, good) || string(pt) != ping || opened != 1 {
				t.Fatalf("forged message opened: %x -> %q", ct, pt)
			}
			return
		}
		if pt != nil || opened != 0 {
			t.Fatalf("failed Open returned %q or advanced the counter to %d", pt, opened)
		}
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrReorder) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

func benchPayload() []byte { return bytes.Repeat([]byte("x"), 16<<10) }

func BenchmarkSeal16KiB(b *testing.B) {
	a, _ := newPair(b)
	msg := benchPayload()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := a.Seal(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen16KiB(b *testing.B) {
	// Each iteration needs the next counter's ciphertext; pre-seal them with a
	// sender whose counter tracks the receiver's.
	key := bytes.Repeat([]byte{1}, KeySize)
	msg := benchPayload()
	send, _ := New(key, key)
	recv, _ := New(key, key)
	cts := make([][]byte, 1024)
	for i := range cts {
		cts[i], _ = send.Seal(msg)
	}
	b.SetBytes(int64(len(msg)))
	i := 0
	for b.Loop() {
		if i == len(cts) {
			b.StopTimer()
			send, _ = New(key, key)
			recv, _ = New(key, key)
			for j := range cts {
				cts[j], _ = send.Seal(msg)
			}
			i = 0
			b.StartTimer()
		}
		if _, err := recv.Open(cts[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
