package vpiv_test

import (
	"testing"

	"github.com/farsign/farsign/internal/pcsctest"
	"github.com/farsign/farsign/internal/vpiv"
	"github.com/farsign/farsign/signer/piv/scard"
)

// BenchmarkAPDURoundTrip measures one APDU (GET SERIAL) from a PC/SC client
// through pcscd and vpcd to the virtual card and back. "quickack" is the card as
// shipped; "delayed-ack" disables the TCP_QUICKACK fix to show what it buys: the
// baseline, in the same run.
func BenchmarkAPDURoundTrip(b *testing.B) {
	for _, mode := range []string{"delayed-ack", "quickack"} {
		b.Run(mode, func(b *testing.B) {
			restore := vpiv.SetQuickAckForTest(mode == "quickack")
			defer restore()
			card, err := vpiv.New(vpiv.Config{})
			if err != nil {
				b.Fatal(err)
			}
			reader := pcsctest.Start(b, card)[0]
			c, err := scard.Connect(reader)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Transmit([]byte{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				r, err := c.Transmit([]byte{0x00, 0xf8, 0x00, 0x00})
				if err != nil || len(r) != 6 {
					b.Fatalf("GET SERIAL: %x, %v", r, err)
				}
			}
		})
	}
}
