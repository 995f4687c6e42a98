package vpiv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeVPCD plays the reader side of the vpcd protocol over an in-memory pipe.
type fakeVPCD struct {
	t    *testing.T
	conn net.Conn
}

func (v *fakeVPCD) send(msg []byte) {
	v.t.Helper()
	v.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := v.conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(msg)))); err != nil {
		v.t.Fatal(err)
	}
	if len(msg) == 0 {
		return
	}
	if _, err := v.conn.Write(msg); err != nil {
		v.t.Fatal(err)
	}
}

func (v *fakeVPCD) recv() []byte {
	v.t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(v.conn, hdr[:]); err != nil {
		v.t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(v.conn, b); err != nil {
		v.t.Fatal(err)
	}
	return b
}

func startServe(t *testing.T) (*fakeVPCD, *Card, context.CancelFunc, chan error) {
	card, err := New(Config{Serial: 99})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, b, card) }()
	t.Cleanup(func() { cancel(); a.Close() })
	return &fakeVPCD{t, a}, card, cancel, done
}

func TestServeProtocol(t *testing.T) {
	v, card, cancel, done := startServe(t)
	v.send([]byte{ctrlPowerOn})
	v.send([]byte{ctrlGetATR})
	if atr := v.recv(); !bytes.Equal(atr, ATR) {
		t.Fatalf("ATR %x", atr)
	}
	v.send([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08})
	if r := v.recv(); !bytes.HasSuffix(r, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT answered %x", r)
	}
	v.send([]byte{0x00, 0xf8, 0x00, 0x00})
	if r := v.recv(); !bytes.Equal(r, []byte{0, 0, 0, 99, 0x90, 0x00}) {
		t.Fatalf("GET SERIAL answered %x", r)
	}
	// A wrong PIN is counted, and a reset keeps the counter but drops the selection.
	v.send([]byte{0x00, 0x20, 0x00, 0x80, 0x08, '0', '0', '0', '0', '0', '0', 0xff, 0xff})
	if r := v.recv(); !bytes.Equal(r, []byte{0x63, 0xc2}) {
		t.Fatalf("wrong PIN answered %x", r)
	}
	v.send([]byte{ctrlReset})
	v.send([]byte{0x00, 0xf8, 0x00, 0x00})
	if r := v.recv(); !bytes.Equal(r, []byte{0x6d, 0x00}) {
		t.Fatalf("after reset: %x", r)
	}
	if card.PINRetries() != 2 {
		t.Errorf("retries after reset: %d", card.PINRetries())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after cancel: %v", err)
	}
}

func TestServeRejectsGarbage(t *testing.T) {
	for name, msg := range map[string][]byte{
		"empty frame":     {},
		"unknown control": {0x09},
	} {
		t.Run(name, func(t *testing.T) {
			v, _, _, done := startServe(t)
			v.send(msg)
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Serve accepted a bad frame")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not stop")
			}
		})
	}
}

func TestServeReportsVPCDGone(t *testing.T) {
	v, _, _, done := startServe(t)
	v.conn.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "vpcd closed the connection") {
		t.Errorf("Serve after vpcd left: %v", err)
	}
}
