package vpiv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"testing"
	"time"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"00a40400", "00c0000010", "00a4040005a000000308", "00a4040002a00020",
		"00c0000000ffff", "00db3fff000002aabb", "00db3fff000002aabb0000", "00db3fff0000", "10db3fffff"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseCommand(b)
		if err != nil {
			return
		}
		if len(cmd.Data) > len(b)-4 || cmd.Ne < 1 || cmd.Ne > 65536 {
			t.Fatalf("inconsistent parse of %x: Lc=%d Ne=%d", b, len(cmd.Data), cmd.Ne)
		}
		if !cmd.Extended && len(cmd.Data) > 255 {
			t.Fatalf("short APDU with %d data bytes", len(cmd.Data))
		}
	})
}

func FuzzParseTLVs(f *testing.F) {
	for _, s := range []string{"7c0a80083132333435363738", "5c035fc10a", "7f4903860100", "53820100", "5f2f024000", "53810100"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseTLVs(b)
		if err != nil {
			return
		}
		total := 0
		for _, e := range ts {
			total += len(e.value)
			// Re-encoding in minimal form and parsing again gives the same element.
			again, err := parseTLVs(appendTLV(nil, e.tag, e.value))
			if err != nil || len(again) != 1 || again[0].tag != e.tag || string(again[0].value) != string(e.value) {
				t.Fatalf("element %x/%d does not round-trip", e.tag, len(e.value))
			}
		}
		if total > len(b) {
			t.Fatalf("values longer than the input")
		}
	})
}

// fuzzCard is a card with keys in every algorithm, built once: generating RSA
// keys per fuzz input would make the fuzzer crawl.
var fuzzCard *Card

func newFuzzCard(f *testing.F) *Card {
	if fuzzCard != nil {
		return fuzzCard
	}
	c, err := New(Config{Serial: 1})
	if err != nil {
		f.Fatal(err)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c.keys[SlotSignature] = &slotKey{alg: AlgRSA2048, pinPolicy: PINPolicyAlways, touchPolicy: TouchPolicyNever, origin: originGenerated, rsa: rk}
	c.keys[SlotAuthentication] = &slotKey{alg: AlgECCP256, pinPolicy: PINPolicyOnce, touchPolicy: TouchPolicyCached, origin: originImported, ec: ek}
	c.objects[0x5fc10a] = certificateObject(make([]byte, 600))
	fuzzCard = c
	return c
}

// cloneForFuzz copies the card's state so every fuzz input starts from the same
// card, authenticated with the management key and the PIN to reach deep paths.
func cloneForFuzz(c *Card) *Card {
	n := &Card{
		serial: c.serial, version: c.version,
		pin: c.pin, puk: c.puk, pinMax: c.pinMax, pukMax: c.pukMax, pinLeft: c.pinLeft, pukLeft: c.pukLeft,
		pinDefault: c.pinDefault, pukDefault: c.pukDefault,
		mgmKey: c.mgmKey, mgmAlg: c.mgmAlg, mgmDefault: c.mgmDefault,
		keys: maps.Clone(c.keys), objects: maps.Clone(c.objects),
		attestKey: c.attestKey, attestCert: c.attestCert, lastTouch: map[byte]time.Time{},
		selected: aidPIV, pinVerified: true, pinJustNow: true, mgmAuthed: true,
	}
	return n
}

// FuzzTransmit feeds the card's command parser and applet a sequence of APDUs
// (each prefixed by a one-byte length). The card must never panic, and every
// answer must be a well-formed response APDU that fits a vpcd frame.
func FuzzTransmit(f *testing.F) {
	base := newFuzzCard(f)
	seq := func(apdus ...string) []byte {
		var b []byte
		for _, a := range apdus {
			x, _ := hex.DecodeString(a)
			b = append(append(b, byte(len(x))), x...)
		}
		return b
	}
	f.Add(seq("00a4040005a000000308", "00fd0000", "00f80000", "0020008000"))
	f.Add(seq("00200080083132333435360000", "002000800831323334353636ffff"))
	f.Add(seq("00cb3fff055c035fc10a", "00c0000000", "00c0000000"))
	f.Add(seq("0047009a0bac098001118a0101ab0101", "00f700009a", "00f9009a00"))
	f.Add(seq("1087119c05"+"7c0382008a", "0087119c02810a"))
	f.Add(seq("0087119a267c248200812030313233343536373839303132333435363738393031323334353637383930313233"))
	f.Add(seq("0087039b047c028000", "0087039b167c1480080102030405060708810801020304050607"))
	f.Add(seq("00db3fff0e5c035fc1055307700100710100fe00", "00cb3fff055c035fc105"))
	f.Add(seq("00fe119d227c200620" + "0101010101010101010101010101010101010101010101010101010101010101"))
	f.Add(seq("002c0080103132333435363738313132323333ffff", "00240081103132333435363738393837363534333231"))
	f.Add(seq("00fa0505", "00fb0000", "00ffffff1b039b18010203040506070801020304050607080102030405060708"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := cloneForFuzz(base)
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			if n > len(in) {
				n = len(in)
			}
			resp := c.Transmit(in[:n])
			in = in[n:]
			if len(resp) < 2 || len(resp) > 0xffff {
				t.Fatalf("response of %d bytes", len(resp))
			}
			sw := binary.BigEndian.Uint16(resp[len(resp)-2:])
			if sw>>8 == 0x61 && c.pendingReply == nil {
				t.Fatalf("61xx without pending data")
			}
			if sw>>8 != 0x61 && sw>>8 != 0x90 && len(resp) != 2 {
				t.Fatalf("error status %04x with data", sw)
			}
		}
	})
}
