package cbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// Minimal-length heads, as minicbor writes them (RFC 8949 appendix A examples).
func TestWriterHeads(t *testing.T) {
	cases := []struct {
		write func(w *Writer)
		want  string
	}{
		{func(w *Writer) { w.Uint(0) }, "00"},
		{func(w *Writer) { w.Uint(23) }, "17"},
		{func(w *Writer) { w.Uint(24) }, "1818"},
		{func(w *Writer) { w.Uint(255) }, "18ff"},
		{func(w *Writer) { w.Uint(256) }, "190100"},
		{func(w *Writer) { w.Uint(1000000) }, "1a000f4240"},
		{func(w *Writer) { w.Uint(1 << 32) }, "1b0000000100000000"},
		{func(w *Writer) { w.Text("IETF") }, "6449455446"},
		{func(w *Writer) { w.ByteString([]byte{1, 2, 3, 4}) }, "4401020304"},
		{func(w *Writer) { w.Array(3) }, "83"},
		{func(w *Writer) { w.Array(25) }, "9819"},
		{func(w *Writer) { w.Null() }, "f6"},
		{func(w *Writer) { w.Break() }, "ff"},
		{func(w *Writer) { w.UintArray([]byte{1, 0x20}) }, "82011820"},
	}
	for _, c := range cases {
		var w Writer
		c.write(&w)
		if got := hex.EncodeToString(w.Bytes()); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}

func TestReaderRoundTrip(t *testing.T) {
	var w Writer
	w.Array(4)
	w.Text("héllo")
	w.ByteString(bytes.Repeat([]byte{7}, 300))
	w.UintArray([]byte{0, 23, 24, 255})
	w.Null()
	r := NewReader(w.Bytes())
	if err := r.DefiniteArray(4); err != nil {
		t.Fatal(err)
	}
	if s, err := r.Text(10); err != nil || s != "héllo" {
		t.Fatalf("Text = %q, %v", s, err)
	}
	if b, err := r.ByteString(300); err != nil || len(b) != 300 {
		t.Fatalf("ByteString = %d bytes, %v", len(b), err)
	}
	if b, err := r.ByteArray(4); err != nil || !bytes.Equal(b, []byte{0, 23, 24, 255}) {
		t.Fatalf("ByteArray = %x, %v", b, err)
	}
	if !r.AtNull() {
		t.Fatal("null expected")
	}
	r.Skip1()
	if len(r.Rest()) != 0 || r.Offset() != len(w.Bytes()) {
		t.Fatal("bytes left over")
	}
}

func TestReaderLimitsAndErrors(t *testing.T) {
	cases := map[string]func(r *Reader) error{
		"text over limit":  func(r *Reader) error { _, err := r.Text(2); return err },
		"bytes over limit": func(r *Reader) error { _, err := r.ByteString(2); return err },
		"array over limit": func(r *Reader) error { _, err := r.ByteArray(2); return err },
	}
	inputs := map[string][]byte{
		"text over limit":  {0x63, 'a', 'b', 'c'},
		"bytes over limit": {0x43, 1, 2, 3},
		"array over limit": {0x83, 1, 2, 3},
	}
	for name, f := range cases {
		if err := f(NewReader(inputs[name])); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, b := range map[string][]byte{
		"truncated length": {0x59, 0x01},
		"truncated body":   {0x45, 1, 2},
		"huge length":      {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"reserved ai":      {0x5c},
		"indefinite bytes": {0x5f, 0x41, 0x00, 0xff},
		"wrong type":       {0x63, 'a', 'b', 'c'},
	} {
		if _, err := NewReader(b).ByteString(100); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewReader([]byte{0x61, 0xff}).Text(10); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if _, err := NewReader([]byte{0x45}).ByteString(10); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncation error = %v", err)
	}
}

func TestSkip(t *testing.T) {
	ok := map[string]string{
		"uint":            "1b0000000100000000",
		"negative":        "20",
		"float":           "fb3ff199999999999a",
		"tagged":          "c11a514b67b0",
		"map":             "a201020304",
		"indefinite map":  "bf6161f5ff",
		"indefinite text": "7f61616162ff",
		"nested":          "8301820203820405",
	}
	for name, h := range ok {
		b, _ := hex.DecodeString(h)
		r := NewReader(b)
		if err := r.Skip(); err != nil || len(r.Rest()) != 0 {
			t.Errorf("%s: %v, %d bytes left", name, err, len(r.Rest()))
		}
	}
	bad := map[string][]byte{
		"break":              {0xff},
		"deep":               bytes.Repeat([]byte{0x81}, 64),
		"bad chunk":          {0x7f, 0x41, 0x00, 0xff},
		"unterminated":       {0x9f, 0x01},
		"count beyond input": {0x9a, 0xff, 0xff, 0xff, 0xff},
		"map beyond input":   {0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"indefinite uint":    {0x1f},
	}
	for name, b := range bad {
		if err := NewReader(b).Skip(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
