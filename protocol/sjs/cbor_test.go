package sjs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The shapes below are where fxamacker/cbor's default mapping is more lenient
// than rcodesign's decoder (null read as a zero value, tags looked through,
// indefinite strings joined), or where rcodesign is more lenient than a strict
// CBOR decoder (unknown trailing items). They pin the checks in cbor.go.

func TestUnmarshalRejectsWhatRcodesignRejects(t *testing.T) {
	good := unhex(t, vecHex)
	cases := map[string][]byte{
		"tagged outer":           append([]byte{0xc1}, good...),
		"self-described outer":   append([]byte{0xd9, 0xd9, 0xf7}, good...),
		"tagged scheme":          append(append([]byte{0x82, 0xc1}, good[1:15]...), good[15:]...),
		"null session id":        append(append(bytes.Clone(good[:16]), 0xf6), good[54:]...),
		"indefinite session id":  append(append(append(bytes.Clone(good[:16]), 0x7f), good[16:54]...), append([]byte{0xff}, good[54:]...)...),
		"indefinite extra id":    append(append(append(bytes.Clone(good[:54]), 0x5f), good[54:71]...), append([]byte{0xff}, good[71:]...)...),
		"payload as map":         mutateAt(good, 15, 0xa3),
		"scheme as null":         append([]byte{0x82, 0xf6}, good[15:]...),
		"bignum in place of key": append(append(bytes.Clone(good[:54]), 0xc2), good[54:]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if js, err := Unmarshal(b); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Unmarshal(%x) = %#v, %v", b, js, err)
			}
		})
	}
}

func mutateAt(b []byte, i int, c byte) []byte {
	b = bytes.Clone(b)
	b[i] = c
	return b
}

func TestUnmarshalErrorMessages(t *testing.T) {
	good := unhex(t, vecHex)
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"outer map":        {[]byte{0xa0}, "outer container: expected array, found map"},
		"outer of 3":       {mutateAt(good, 0, 0x83), `unexpected "break"`},
		"outer of 1":       {[]byte{0x81, 0x61, 'x'}, "outer container: array has 1 items, want 2"},
		"null extra id":    {append(append(bytes.Clone(good[:54]), 0xf6), good[71:]...), "extra identifier: expected byte string, found null"},
		"indefinite outer": {append([]byte{0x9f}, good[1:]...), "outer container: indefinite-length array not allowed"},
		"trailing junk":    {append(bytes.Clone(good), 0xff), "3 unexpected bytes after the payload"},
		"long scheme":      {append(append([]byte{0x82, 0x78, 65}, bytes.Repeat([]byte{'a'}, 65)...), 0x80), "exceeds the limit of 64"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Unmarshal(c.b)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Unmarshal(%x) error = %v, want it to mention %q", c.b, err, c.want)
			}
		})
	}
}

func TestPublicKey0MessageStrictFields(t *testing.T) {
	ch, ag := uintArray(32, 0xaa), uintArray(32, 0xbb)
	withNull := append(bytes.Clone(ch[:2]), 0xf6)
	withNull = append(withNull, ch[4:]...)
	tagged := append([]byte{0x98, 32, 0xc1, 0x18, 0xaa}, ch[4:]...)
	nested := append([]byte{0x98, 32, 0x81, 0x18, 0xaa}, ch[4:]...)
	indefBytes := append(append([]byte{0x5f, 0x58, 32}, bytes.Repeat([]byte{0xaa}, 32)...), 0xff)
	cases := map[string][]byte{
		"null challenge item":     encodeMsg([]byte{0x84}, []byte{0xf6}, withNull, ag),
		"tagged challenge item":   encodeMsg([]byte{0x84}, []byte{0xf6}, tagged, ag),
		"nested challenge item":   encodeMsg([]byte{0x84}, []byte{0xf6}, nested, ag),
		"indefinite byte string":  encodeMsg([]byte{0x84}, []byte{0xf6}, indefBytes, ag),
		"challenge over 256":      encodeMsg([]byte{0x84}, []byte{0xf6}, append([]byte{0x99, 0x01, 0x01}, bytes.Repeat([]byte{1}, 257)...), ag),
		"undefined URL":           encodeMsg([]byte{0x84}, []byte{0xf7}, ch, ag),
		"indefinite URL":          encodeMsg([]byte{0x84}, []byte{0x7f, 0x61, 'x', 0xff}, ch, ag),
		"tagged URL":              encodeMsg([]byte{0x84}, []byte{0xc1, 0x61, 'x'}, ch, ag),
		"self-described message":  append([]byte{0xd9, 0xd9, 0xf7}, encodeMsg([]byte{0x84}, []byte{0xf6}, ch, ag)...),
		"map":                     {0xa0},
		"challenge as text":       encodeMsg([]byte{0x84}, []byte{0xf6}, []byte{0x61, 'x'}, ag),
		"oversized trailing item": encodeMsg([]byte{0x85}, []byte{0xf6}, ch, ag, append([]byte{0x99, 0x01, 0x01}, bytes.Repeat([]byte{1}, 257)...)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if m, err := UnmarshalPublicKey0Message(b); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted %#v (%v)", m, err)
			}
		})
	}
}

// rcodesign skips trailing items without interpreting them, so a tag whose
// content fxamacker would call invalid (a date tag on an integer, a bignum tag
// on text) must not make the message fail.
func TestPublicKey0MessageUninterpretedTrailingItems(t *testing.T) {
	ch, ag := uintArray(32, 0xaa), uintArray(32, 0xbb)
	b := encodeMsg([]byte{0x86}, []byte{0xf6}, ch, ag, 0xc0, 0x01, 0xc2, 0x61, 'x')
	if _, err := UnmarshalPublicKey0Message(b); err != nil {
		t.Fatal(err)
	}
}

// The largest challenge the bounds allow round-trips; the array head grows to
// two bytes of length, which minicbor also writes.
func TestPublicKey0MessageLargestChallenge(t *testing.T) {
	m := &PublicKey0Message{
		SessionID:       "s",
		Challenge:       bytes.Repeat([]byte{0xff}, maxChallenge),
		AgreementPublic: make([]byte, 32),
	}
	b, err := MarshalPublicKey0Message(m)
	if err != nil {
		t.Fatal(err)
	}
	// 84 array(4), f6 null, 61 73 "s", 99 0100 array(256), 18 ff 255, …
	if want := "84f6617399010018ff"; !strings.HasPrefix(hex.EncodeToString(b), want) {
		t.Fatalf("encoding starts %x", b[:9])
	}
	back, err := UnmarshalPublicKey0Message(b)
	if err != nil || !bytes.Equal(back.Challenge, m.Challenge) {
		t.Fatalf("round trip: %v", err)
	}
	m.Challenge = append(m.Challenge, 0)
	if _, err := MarshalPublicKey0Message(m); err == nil {
		t.Fatal("257-byte challenge encoded")
	}
}
