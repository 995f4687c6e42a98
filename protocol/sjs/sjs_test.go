package sjs

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Appendix A.2 sharedsecret0 join string.
const (
	vecHex = "826d7368617265647365637265743083782430623661346133632d356431652d346632612d396233632d37643865396630613162326350000102030405060708090a0b0c0d0e0f582141c90b892258994d12c051f689d5ba7ec375b1805aa2d27ffaae66616e90dc135bffff"
	vecURL = "gm1zaGFyZWRzZWNyZXQwg3gkMGI2YTRhM2MtNWQxZS00ZjJhLTliM2MtN2Q4ZTlmMGExYjJjUAABAgMEBQYHCAkKCwwNDg9YIUHJC4kiWJlNEsBR9onVun7DdbGAWqLSf_quZmFukNwTW___"
	vecPEM = "-----BEGIN SESSION JOIN STRING-----\r\n" +
		"gm1zaGFyZWRzZWNyZXQwg3gkMGI2YTRhM2MtNWQxZS00ZjJhLTliM2MtN2Q4ZTlm\r\n" +
		"MGExYjJjUAABAgMEBQYHCAkKCwwNDg9YIUHJC4kiWJlNEsBR9onVun7DdbGAWqLS\r\n" +
		"f/quZmFukNwTW///\r\n" +
		"-----END SESSION JOIN STRING-----\r\n"
	// The inner plaintext of the A.2 publickey0 vector.
	vecInner = "8478237773733a2f2f77732e636f64657369676e2e677265676f7279737a6f72632e636f6d2f782433663235303465302d346638392d343164332d396130632d303330356538326333333031982018a018a118a218a318a418a518a618a718a818a918aa18ab18ac18ad18ae18af18b018b118b218b318b418b518b618b718b818b918ba18bb18bc18bd18be18bf98200718a3187c18bc141820189318c818b7185518dc181b1018e8186c18b418261837184a18d1186a18a8185318ed0b18df18c018b218b8186d181c187c"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vector(t testing.TB) *SharedSecret0 {
	return &SharedSecret0{
		SessionID: "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c",
		ExtraID:   unhex(t, "000102030405060708090a0b0c0d0e0f"),
		Message:   unhex(t, "41c90b892258994d12c051f689d5ba7ec375b1805aa2d27ffaae66616e90dc135b"),
	}
}

// samplePK0 is a publickey0 join string with RSA-2048-sized fields.
func samplePK0() *PublicKey0 {
	return &PublicKey0{
		EncryptedKey:     bytes.Repeat([]byte{0xa5}, 256),
		SignerPublicKey:  bytes.Repeat([]byte{0x30}, 294),
		EncryptedMessage: bytes.Repeat([]byte{0x5a}, 220),
	}
}

func TestVectorA2Encodings(t *testing.T) {
	raw, err := Marshal(vector(t))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(raw) != vecHex {
		t.Fatalf("Marshal = %x\nwant     %s", raw, vecHex)
	}
	if got := EncodeLine(raw); got != vecURL {
		t.Errorf("EncodeLine = %s", got)
	}
	if got := EncodePEM(raw); got != vecPEM {
		t.Errorf("EncodePEM = %q", got)
	}
	js, err := Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(js, vector(t)) {
		t.Fatalf("Unmarshal = %#v", js)
	}
}

func TestPublicKey0RoundTrip(t *testing.T) {
	raw, err := Marshal(samplePK0())
	if err != nil {
		t.Fatal(err)
	}
	// 82 6a "publickey0" 83 59 0100 … 59 0126 … 58 dc … FF FF
	if !bytes.HasPrefix(raw, append([]byte("\x82\x6apublickey0\x83\x59\x01\x00"), 0xa5)) || !bytes.HasSuffix(raw, []byte{0xff, 0xff}) {
		t.Fatalf("unexpected framing: %x … %x", raw[:16], raw[len(raw)-4:])
	}
	if !strings.HasPrefix(EncodeLine(raw), "gmpwdWJsaWNrZXkwg") {
		t.Errorf("line starts %s", EncodeLine(raw)[:17])
	}
	js, err := Parse(EncodePEM(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(js, samplePK0()) {
		t.Fatal("PEM round trip changed the join string")
	}
}

func TestPEMShape(t *testing.T) {
	raw, _ := Marshal(samplePK0())
	pem := EncodePEM(raw)
	lines := strings.Split(strings.TrimSuffix(pem, "\r\n"), "\r\n")
	if lines[0] != "-----BEGIN SESSION JOIN STRING-----" || lines[len(lines)-1] != "-----END SESSION JOIN STRING-----" {
		t.Fatalf("armor lines: %q / %q", lines[0], lines[len(lines)-1])
	}
	for i, l := range lines[1 : len(lines)-1] {
		if len(l) > 64 || (i < len(lines)-3 && len(l) != 64) || strings.ContainsAny(l, "\r\n-_") {
			t.Fatalf("body line %d: %q", i, l)
		}
	}
	if strings.Count(pem, "\n") != strings.Count(pem, "\r\n") {
		t.Fatal("bare LF in PEM")
	}
}

// Everything a person may paste decodes to the vector.
func TestParseLenient(t *testing.T) {
	stdPadded := base64.StdEncoding.EncodeToString(unhex(t, vecHex))
	lf := strings.ReplaceAll(vecPEM, "\r\n", "\n")
	rcodesignOutput := "connecting to wss://ws.codesign.gregoryszorc.com/\nsession successfully created on server\n\n" +
		"Run the following command to join this signing session:\n\n    rcodesign remote-sign " + vecURL + "\n\n" +
		"Or if this output is too long, paste the following output:\n\n" + lf + "\nInto an interactive editor using:\n"
	cases := map[string]string{
		"line":                     vecURL,
		"line with whitespace":     "  \t" + vecURL + "\r\n\n",
		"line wrapped":             vecURL[:50] + "\n" + vecURL[50:100] + "\r\n" + vecURL[100:],
		"line padded":              vecURL + "==",
		"line std alphabet":        strings.TrimRight(stdPadded, "="),
		"std padded":               stdPadded,
		"rcodesign command":        "rcodesign remote-sign " + vecURL,
		"line then prose":          "    rcodesign remote-sign " + vecURL[:70] + "\n" + vecURL[70:] + "\n\nOr if this output is too long\n",
		"signer command prompt":    "$ signer remote-sign --pem-source key.pem " + vecURL + "\n",
		"line after comments":      "# Please enter the -----BEGIN SESSION JOIN STRING---- content below.\n# Remember to save the file!\n" + vecURL + "\n",
		"PEM CRLF":                 vecPEM,
		"PEM LF":                   lf,
		"PEM no final newline":     strings.TrimRight(lf, "\n"),
		"PEM indented":             "    " + strings.ReplaceAll(strings.TrimRight(lf, "\n"), "\n", "\n    "),
		"PEM one line":             strings.ReplaceAll(strings.TrimRight(lf, "\n"), "\n", " "),
		"PEM rewrapped":            "-----BEGIN SESSION JOIN STRING-----\n" + stdPadded[:30] + "\n" + stdPadded[30:] + "\n-----END SESSION JOIN STRING-----",
		"PEM url alphabet":         "-----BEGIN SESSION JOIN STRING-----\n" + vecURL + "\n-----END SESSION JOIN STRING-----",
		"PEM with editor comments": "# Please enter the -----BEGIN SESSION JOIN STRING---- content below.\n# Remember to save the file!\n" + lf,
		"PEM with headers":         strings.Replace(lf, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\nComment: x\n\n", 1),
		"whole rcodesign output":   rcodesignOutput,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			js, err := Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(js, vector(t)) {
				t.Fatalf("Parse = %#v", js)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]struct{ text, want string }{
		"empty":                        {"", "empty"},
		"only comments":                {"# nothing\n  # here\n", "empty"},
		"prose":                        {"hello there", "no join string"},
		"not base64":                   {"gm1z!!!", "not base64"},
		"impossible length":            {vecURL[:141], "not base64"},
		"truncated line":               {vecURL[:100], "truncated"},
		"wrong PEM label":              {strings.ReplaceAll(vecPEM, "SESSION JOIN STRING", "PUBLIC KEY"), `"PUBLIC KEY"`},
		"PEM without END":              {vecPEM[:len(vecPEM)-40], "no END"},
		"PEM bad BEGIN":                {"-----BEGIN SESSION JOIN STRING\n" + vecURL, "malformed PEM"},
		"PEM empty":                    {"-----BEGIN SESSION JOIN STRING-----\n-----END SESSION JOIN STRING-----\n", "empty"},
		"oversized":                    {strings.Repeat("A", MaxTextSize+1), "limit"},
		"oversized base64":             {"gm" + strings.Repeat("A", MaxSize*4/3+8), "limit"},
		"base64 but not a join string": {"QUJDRA==", "no join string"},
		"truncated CBOR":               {vecURL[:20], "was all of it pasted"},
		"middle padding":               {vecURL[:40] + "=" + vecURL[40:], "not base64"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			js, err := Parse(c.text)
			if err == nil || js != nil {
				t.Fatalf("accepted: %#v", js)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestUnmarshalTrailer(t *testing.T) {
	raw := unhex(t, vecHex)
	body := raw[:len(raw)-2]
	for _, ok := range [][]byte{body, append(bytes.Clone(body), 0xff), raw} {
		if _, err := Unmarshal(ok); err != nil {
			t.Errorf("%d trailing bytes: %v", len(ok)-len(body), err)
		}
	}
	for _, bad := range [][]byte{append(bytes.Clone(raw), 0xff), append(bytes.Clone(body), 0x00), append(bytes.Clone(body), 0xff, 0x00)} {
		if _, err := Unmarshal(bad); err == nil {
			t.Errorf("trailer %x accepted", bad[len(body):])
		}
	}
}

// Every truncation of a valid join string is an error (not a panic), except
// dropping the optional trailer.
func TestUnmarshalEveryTruncation(t *testing.T) {
	for _, js := range []JoinString{vector(t), samplePK0()} {
		raw, _ := Marshal(js)
		for n := 0; n < len(raw)-2; n++ {
			if got, err := Unmarshal(raw[:n]); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s truncated to %d bytes: %#v, %v", js.Scheme(), n, got, err)
			}
		}
	}
}

func TestUnmarshalRejectsShapes(t *testing.T) {
	good := unhex(t, vecHex)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"not an array":            {0xa2},
		"outer array of 3":        mutate(func(b []byte) []byte { b[0] = 0x83; return b }),
		"outer indefinite":        append([]byte{0x9f}, good[1:]...),
		"scheme as bytes":         mutate(func(b []byte) []byte { b[1] = 0x4d; return b }),
		"payload of 2":            mutate(func(b []byte) []byte { b[15] = 0x82; return b }),
		"session id as bytes":     mutate(func(b []byte) []byte { b[16] = 0x58; return b }),
		"extra id as text":        mutate(func(b []byte) []byte { b[54] = 0x70; return b }),
		"SPAKE message from B":    mutate(func(b []byte) []byte { b[73] = 'B'; return b }),
		"session id with a space": mutate(func(b []byte) []byte { b[20] = ' '; return b }),
		"session id not UTF-8":    mutate(func(b []byte) []byte { b[20] = 0xff; return b }),
		"reserved initial byte":   {0x82, 0x7c},
		"huge length":             append([]byte("\x82\x6dsharedsecret0\x83\x7b"), bytes.Repeat([]byte{0xff}, 8)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if js, err := Unmarshal(b); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Unmarshal(%x) = %#v, %v", b, js, err)
			}
		})
	}
}

func TestUnknownScheme(t *testing.T) {
	raw := []byte("\x82\x6apublickey1\x83\x41\x00\x41\x00\x41\x00")
	_, err := Unmarshal(raw)
	if !errors.Is(err, ErrUnknownScheme) || !strings.Contains(err.Error(), `"publickey1"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse(EncodeLine(raw)); !errors.Is(err, ErrUnknownScheme) {
		t.Fatalf("Parse: %v", err)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	bad := []JoinString{
		&SharedSecret0{SessionID: "", ExtraID: []byte{1}, Message: vector(t).Message},
		&SharedSecret0{SessionID: "s", ExtraID: nil, Message: vector(t).Message},
		&SharedSecret0{SessionID: "s", ExtraID: []byte{1}, Message: []byte("A")},
		&PublicKey0{EncryptedKey: []byte{1}, SignerPublicKey: []byte{1}, EncryptedMessage: make([]byte, 16)},
		&PublicKey0{EncryptedKey: make([]byte, maxRSACipher+1), SignerPublicKey: []byte{1}, EncryptedMessage: make([]byte, 17)},
	}
	for _, js := range bad {
		if raw, err := Marshal(js); err == nil {
			t.Errorf("Marshal(%#v) = %x", js, raw)
		}
	}
}

func TestPublicKey0MessageVector(t *testing.T) {
	m := &PublicKey0Message{
		ServerURL:       "wss://ws.codesign.gregoryszorc.com/",
		SessionID:       "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		Challenge:       unhex(t, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"),
		AgreementPublic: unhex(t, "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"),
	}
	b, err := MarshalPublicKey0Message(m)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(b) != vecInner {
		t.Fatalf("inner plaintext = %x", b)
	}
	back, err := UnmarshalPublicKey0Message(b)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip: %#v, %v", back, err)
	}
	m.ServerURL = ""
	b, _ = MarshalPublicKey0Message(m)
	if !bytes.HasPrefix(b, unhex(t, "84f6782433663235")) {
		t.Fatalf("null URL encoding starts %x", b[:8])
	}
	if back, err := UnmarshalPublicKey0Message(b); err != nil || back.ServerURL != "" {
		t.Fatalf("null URL: %#v, %v", back, err)
	}
}

// encodeMsg hand-builds publickey0 plaintexts in shapes our encoder never emits.
func encodeMsg(header []byte, url []byte, challenge, agreement []byte, trailer ...byte) []byte {
	b := append([]byte{}, header...)
	b = append(b, url...)
	b = append(b, 0x61, 's') // session id "s"
	b = append(b, challenge...)
	b = append(b, agreement...)
	return append(b, trailer...)
}

func uintArray(n int, v byte) []byte {
	b := []byte{0x98, byte(n)}
	for range n {
		b = append(b, 0x18, v)
	}
	return b
}

func TestPublicKey0MessageLenient(t *testing.T) {
	ch, ag := uintArray(32, 0xaa), uintArray(32, 0xbb)
	bytesCh := append([]byte{0x58, 32}, bytes.Repeat([]byte{0xaa}, 32)...)
	indefCh := append(append([]byte{0x9f}, ch[2:]...), 0xff)
	cases := map[string][]byte{
		"definite":             encodeMsg([]byte{0x84}, []byte{0xf6}, ch, ag),
		"indefinite outer":     encodeMsg([]byte{0x9f}, []byte{0xf6}, ch, ag, 0xff),
		"indefinite challenge": encodeMsg([]byte{0x84}, []byte{0xf6}, indefCh, ag),
		"byte strings":         encodeMsg([]byte{0x84}, []byte{0xf6}, bytesCh, append([]byte{0x58, 32}, bytes.Repeat([]byte{0xbb}, 32)...)),
		"extra items":          encodeMsg([]byte{0x86}, []byte{0xf6}, ch, ag, 0x01, 0xa1, 0x01, 0x82, 0x01, 0x02),
		"extra items indef":    encodeMsg([]byte{0x9f}, []byte{0xf6}, ch, ag, 0xc1, 0x01, 0x7f, 0x61, 'x', 0xff, 0xff),
		"non-minimal uints":    encodeMsg([]byte{0x84}, []byte{0xf6}, bytes.ReplaceAll(ch, []byte{0x18, 0xaa}, []byte{0x19, 0x00, 0xaa}), ag),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := UnmarshalPublicKey0Message(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.SessionID != "s" || !bytes.Equal(m.Challenge, bytes.Repeat([]byte{0xaa}, 32)) || !bytes.Equal(m.AgreementPublic, bytes.Repeat([]byte{0xbb}, 32)) {
				t.Fatalf("decoded %#v", m)
			}
		})
	}
}

func TestPublicKey0MessageRejects(t *testing.T) {
	ch, ag := uintArray(32, 0xaa), uintArray(32, 0xbb)
	cases := map[string][]byte{
		"3 items":          encodeMsg([]byte{0x83}, nil, ch, ag),
		"short key":        encodeMsg([]byte{0x84}, []byte{0xf6}, ch, uintArray(31, 1)),
		"long key":         encodeMsg([]byte{0x84}, []byte{0xf6}, ch, uintArray(33, 1)),
		"short challenge":  encodeMsg([]byte{0x84}, []byte{0xf6}, uintArray(8, 1), ag),
		"uint over 255":    encodeMsg([]byte{0x84}, []byte{0xf6}, append([]byte{0x98, 32, 0x19, 0x01, 0x00}, ch[4:]...), ag),
		"negative int":     encodeMsg([]byte{0x84}, []byte{0xf6}, append([]byte{0x98, 32, 0x20}, ch[4:]...), ag),
		"url as bytes":     encodeMsg([]byte{0x84}, []byte{0x41, 'x'}, ch, ag),
		"trailing bytes":   encodeMsg([]byte{0x84}, []byte{0xf6}, ch, ag, 0x00),
		"unclosed indef":   encodeMsg([]byte{0x9f}, []byte{0xf6}, ch, ag),
		"deep extra item":  encodeMsg([]byte{0x85}, []byte{0xf6}, ch, ag, bytes.Repeat([]byte{0x81}, 40)...),
		"empty":            {},
		"huge array count": {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if m, err := UnmarshalPublicKey0Message(b); err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted %#v (%v)", m, err)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(unhex(f, vecHex))
	raw, _ := Marshal(samplePK0())
	f.Add(raw)
	f.Add([]byte("\x82\x6apublickey1\x83\x41\x00\x41\x00\x41\x00"))
	f.Add([]byte{0x9f, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := Unmarshal(b)
		if err != nil {
			if js != nil {
				t.Fatal("join string returned with an error")
			}
			return
		}
		// Whatever decodes re-encodes, and the re-encoding decodes to the same value.
		enc, err := Marshal(js)
		if err != nil {
			t.Fatalf("decoded %#v but cannot re-encode: %v", js, err)
		}
		js2, err := Unmarshal(enc)
		if err != nil || !reflect.DeepEqual(js, js2) {
			t.Fatalf("re-encoding differs: %#v vs %#v (%v)", js, js2, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(vecURL)
	f.Add(vecPEM)
	f.Add("rcodesign remote-sign " + vecURL)
	f.Add("# comment\n-----BEGIN SESSION JOIN STRING-----\nProc-Type: x\n\ngm1z\n-----END SESSION JOIN STRING-----")
	f.Add("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----")
	f.Fuzz(func(t *testing.T, text string) {
		js, err := Parse(text)
		if err != nil {
			if js != nil || (!errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownScheme)) {
				t.Fatalf("Parse = %#v, %v", js, err)
			}
			return
		}
		// Anything accepted must survive both printed forms unchanged.
		raw, err := Marshal(js)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []string{EncodeLine(raw), EncodePEM(raw)} {
			again, err := Parse(form)
			if err != nil || !reflect.DeepEqual(js, again) {
				t.Fatalf("printed form %q does not parse back: %v", form, err)
			}
		}
	})
}

func FuzzPublicKey0Message(f *testing.F) {
	f.Add(unhex(f, vecInner))
	f.Add(encodeMsg([]byte{0x9f}, []byte{0xf6}, uintArray(32, 1), uintArray(32, 2), 0xc1, 0x01, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalPublicKey0Message(b)
		if err != nil {
			return
		}
		enc, err := MarshalPublicKey0Message(m)
		if err != nil {
			t.Fatalf("decoded %#v but cannot re-encode: %v", m, err)
		}
		m2, err := UnmarshalPublicKey0Message(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding differs: %#v vs %#v (%v)", m, m2, err)
		}
	})
}
