package cms

import (
	"debug/macho"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"

	"github.com/farsign/farsign/internal/fixtures"
)

// nodeSignature returns the primary CodeDirectory (slot 0) and the CMS payload (slot
// 0x10000, without its BlobWrapper header) of the Apple-signed node binary, read with
// debug/macho and a minimal SuperBlob walk, so these tests do not depend on the
// Mach-O package they serve.
func nodeSignature(t testing.TB) (cd, cmsDER []byte) {
	t.Helper()
	path := fixtures.NodeDarwinArm64(t)
	f, err := macho.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var off, size uint32
	for _, l := range f.Loads {
		raw := l.Raw()
		if f.ByteOrder.Uint32(raw) == 0x1d { // LC_CODE_SIGNATURE
			off, size = f.ByteOrder.Uint32(raw[8:]), f.ByteOrder.Uint32(raw[12:])
		}
	}
	if size == 0 {
		t.Fatal("node has no LC_CODE_SIGNATURE")
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sb := make([]byte, size)
	if _, err := r.ReadAt(sb, int64(off)); err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	if be.Uint32(sb) != 0xfade0cc0 {
		t.Fatalf("not an embedded-signature SuperBlob: %x", sb[:4])
	}
	for i := uint32(0); i < be.Uint32(sb[8:]); i++ {
		typ, o := be.Uint32(sb[12+8*i:]), be.Uint32(sb[16+8*i:])
		blob := sb[o : o+be.Uint32(sb[o+4:])]
		switch typ {
		case 0:
			cd = blob
		case 0x10000:
			cmsDER = blob[8:]
		}
	}
	if cd == nil || cmsDER == nil {
		t.Fatal("node's signature lacks a CodeDirectory or CMS")
	}
	return cd, cmsDER
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
