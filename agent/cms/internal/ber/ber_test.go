package ber

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestToDER(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"DER unchanged":           {"30 06 02 01 01 04 01 ff", "30 06 02 01 01 04 01 ff"},
		"indefinite sequence":     {"30 80 02 01 01 00 00", "30 03 02 01 01"},
		"nested indefinite":       {"30 80 a0 80 04 02 aa bb 00 00 00 00", "30 06 a0 04 04 02 aa bb"},
		"empty indefinite":        {"30 80 00 00", "30 00"},
		"long-form short length":  {"04 81 02 aa bb", "04 02 aa bb"},
		"four-byte length":        {"04 84 00 00 00 01 aa", "04 01 aa"},
		"constructed octets":      {"24 80 04 01 aa 04 02 bb cc 00 00", "04 03 aa bb cc"},
		"nested constructed":      {"24 09 24 80 04 01 aa 00 00 04 00", "04 01 aa"},
		"empty constructed octet": {"24 00", "04 00"},
		"high tag number":         {"bf 81 00 80 05 00 00 00", "bf 81 00 02 05 00"},
	} {
		got, err := ToDER(h(tc.in))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, h(tc.want)) {
			t.Errorf("%s: got % x, want %s", name, got, tc.want)
		}
	}
	// A long definite element crosses into two-byte lengths.
	long := append([]byte{0x30, 0x80, 0x04, 0x81, 0xc8}, make([]byte, 200)...)
	long = append(long, 0, 0)
	got, err := ToDER(long)
	if err != nil || !bytes.Equal(got[:5], []byte{0x30, 0x81, 0xcb, 0x04, 0x81}) || len(got) != 206 {
		t.Errorf("long element: % x…, %v", got[:5], err)
	}
}

func TestToDERRejects(t *testing.T) {
	deep := bytes.Repeat([]byte{0x30, 0x80}, MaxDepth+2)
	deep = append(deep, bytes.Repeat([]byte{0, 0}, MaxDepth+2)...)
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"empty":                {nil, "truncated"},
		"trailing":             {h("05 00 00"), "trailing"},
		"truncated content":    {h("04 05 aa"), "truncated"},
		"truncated length":     {h("04 82 01"), "truncated"},
		"missing EOC":          {h("30 80 02 01 01"), "end-of-contents"},
		"primitive indefinite": {h("04 80 aa 00 00"), "primitive"},
		"reserved length":      {h("04 ff"), "reserved"},
		"huge length":          {h("04 85 01 00 00 00 00"), "32 bits"},
		"too deep":             {deep, "nesting"},
		"bad octet segment":    {h("24 03 02 01 01"), "holds a 0x02"},
		"long tag":             {h("1f 81 81 81 81 01 00"), "tag number too large"},
		"non-minimal tag":      {h("1f 80 01 00"), "non-minimal"},
		"child overruns":       {h("30 03 04 05 aa"), "truncated"},
	} {
		if _, err := ToDER(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
}

func FuzzToDER(f *testing.F) {
	for _, s := range []string{"30 80 02 01 01 00 00", "24 80 04 01 aa 04 02 bb cc 00 00", "30 81 03 02 01 01", "bf 81 00 80 05 00 00 00"} {
		f.Add(h(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ToDER(in)
		if err != nil {
			return
		}
		// The output is a fixed point: converting DER again changes nothing.
		again, err := ToDER(out)
		if err != nil {
			t.Fatalf("ToDER rejects its own output: %v", err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n% x\n% x", out, again)
		}
		if len(out) > 2*len(in)+8 {
			t.Fatalf("output %d bytes from %d", len(out), len(in))
		}
	})
}
