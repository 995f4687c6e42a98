//go:build cgo || windows

package piv

import (
	"bytes"
	"testing"
)

func TestReadTLV(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300)
	for _, v := range [][]byte{nil, {1}, bytes.Repeat([]byte{7}, 200), long} {
		got, err := readTLV(appendTLV(nil, 0x82, v), 0x82)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%d bytes: %v", len(v), err)
		}
	}
	for _, bad := range [][]byte{{}, {0x82}, {0x81, 0x00}, {0x82, 0x05, 1}, {0x82, 0x81}, {0x82, 0x82, 0x01}, {0x82, 0x83, 0, 0, 1}} {
		if _, err := readTLV(bad, 0x82); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func FuzzReadTLV(f *testing.F) {
	f.Add([]byte{0x7c, 0x82, 0x01, 0x04, 0x82, 0x82, 0x01, 0x00})
	f.Add([]byte{0x7c, 0x03, 0x82, 0x01, 0xaa})
	f.Add([]byte{0x7c, 0x81, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := readTLV(b, 0x7c)
		if err == nil && len(v) > len(b) {
			t.Fatal("value longer than input")
		}
	})
}

func TestAuthErrMapping(t *testing.T) {
	if err := authErr(statusError(0x63c2)); err == nil || err.Error() != "verification failed (2 retries remaining)" {
		t.Errorf("63c2: %v", err)
	}
	if err := authErr(statusError(0x6983)); err == nil || err.Error() != "verification failed (0 retries remaining)" {
		t.Errorf("6983: %v", err)
	}
	if err := authErr(statusError(0x6a80)); err != statusError(0x6a80) {
		t.Errorf("6a80: %v", err)
	}
}
