package blob

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func sampleCD() *CodeDirectory {
	return &CodeDirectory{
		Version: CDVersionRuntime, Flags: FlagRuntime, HashType: HashSHA256, HashSize: 32,
		PageSizeLog2: 12, CodeLimit: 16400, ExecSegLimit: 16384, ExecSegFlags: ExecSegMainBinary,
		Runtime: 0x0b0000, Identifier: "exe", TeamID: "TEAM",
		Special: [][]byte{make([]byte, 32), bytes.Repeat([]byte{2}, 32)},
		Code:    [][]byte{bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{8}, 32)},
	}
}

func TestCodeDirectoryRoundTrip(t *testing.T) {
	cd := sampleCD()
	b := cd.Bytes()
	// Header 0x60, "exe\0" at 96, "TEAM\0" at 100, 2 special slots, 2 code slots.
	if got := binary.BigEndian.Uint32(b[16:]); got != 105+64 {
		t.Errorf("hashOffset %d", got)
	}
	if got := binary.BigEndian.Uint32(b[48:]); got != 100 {
		t.Errorf("teamOffset %d", got)
	}
	p, err := ParseCodeDirectory(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Identifier != "exe" || p.TeamID != "TEAM" || p.Runtime != 0x0b0000 || p.CodeLimit != 16400 || len(p.Special) != 2 || !bytes.Equal(p.SpecialHash(SlotRequirements), cd.Special[1]) || !bytes.Equal(p.Code[1], cd.Code[1]) {
		t.Fatalf("parsed %+v", p)
	}
	if !bytes.Equal(p.Bytes(), b) {
		t.Fatal("does not re-encode identically")
	}
	// Code limits above 4 GiB go to codeLimit64.
	cd.CodeLimit = 5 << 30
	p, err = ParseCodeDirectory(cd.Bytes())
	if err != nil || p.CodeLimit != 5<<30 || binary.BigEndian.Uint32(cd.Bytes()[32:]) != 0 {
		t.Fatalf("codeLimit64: %v %d", err, p.CodeLimit)
	}
}

func TestCodeDirectoryRejects(t *testing.T) {
	good := sampleCD().Bytes()
	mutate := func(off int, v uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
	for name, b := range map[string][]byte{
		"short":               good[:40],
		"length past data":    mutate(4, uint32(len(good)+1)),
		"hash offset":         mutate(16, uint32(len(good))),
		"too many code slots": mutate(28, 1000),
		"too many specials":   mutate(24, 1000),
		"ident outside":       mutate(20, 0xffffff),
		"bad version":         mutate(8, 0x10000),
		"hash size":           func() []byte { b := append([]byte(nil), good...); b[36] = 20; return b }(),
		"team unterminated":   mutate(48, uint32(len(good)-1)),
		"wrong magic":         mutate(0, MagicRequirement),
	} {
		if _, err := ParseCodeDirectory(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSuperBlob(t *testing.T) {
	cd := sampleCD().Bytes()
	req := []byte{0xfa, 0xde, 0x0c, 0x01, 0, 0, 0, 0x0c, 0, 0, 0, 0}
	wrap := Wrap(MagicBlobWrapper, nil)
	sb := BuildSuperBlob([]Entry{{Slot: SlotSignature, Data: wrap}, {Slot: SlotRequirements, Data: req}, {Slot: SlotCodeDirectory, Data: cd}})
	// Sorted by slot, back to back.
	if binary.BigEndian.Uint32(sb[12:]) != 0 || binary.BigEndian.Uint32(sb[16:]) != 36 || binary.BigEndian.Uint32(sb[24:]) != uint32(36+len(cd)) {
		t.Fatalf("index %x", sb[:36])
	}
	padded := append(append([]byte(nil), sb...), make([]byte, 100)...)
	p, err := ParseSuperBlob(padded)
	if err != nil {
		t.Fatal(err)
	}
	if int(p.Length) != len(sb) || len(p.Entries) != 3 {
		t.Fatalf("%+v", p)
	}
	if got, _ := p.Find(SlotRequirements); !bytes.Equal(got, req) {
		t.Error("requirements blob")
	}
	if !bytes.Equal(BuildSuperBlob(p.Entries), sb) {
		t.Error("does not rebuild identically")
	}
	for name, b := range map[string][]byte{
		"short": sb[:8],
		"count": func() []byte { b := append([]byte(nil), sb...); binary.BigEndian.PutUint32(b[8:], 1<<30); return b }(),
		"offset": func() []byte {
			b := append([]byte(nil), sb...)
			binary.BigEndian.PutUint32(b[16:], uint32(len(sb)))
			return b
		}(),
		"blob length": func() []byte { b := append([]byte(nil), sb...); binary.BigEndian.PutUint32(b[36+4:], 1<<20); return b }(),
		"duplicate":   func() []byte { b := append([]byte(nil), sb...); binary.BigEndian.PutUint32(b[20:], 0); return b }(),
		"magic":       func() []byte { b := append([]byte(nil), sb...); b[3] = 0; return b }(),
		"length": func() []byte {
			b := append([]byte(nil), sb...)
			binary.BigEndian.PutUint32(b[4:], uint32(len(sb)+1))
			return b
		}(),
	} {
		if _, err := ParseSuperBlob(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNames(t *testing.T) {
	if got := FlagNames(FlagAdhoc | FlagRuntime | 0x4000000); len(got) != 3 || got[0] != "adhoc" || got[1] != "runtime" || got[2] != "0x4000000" {
		t.Errorf("FlagNames %v", got)
	}
	if f, err := ParseFlag("runtime"); err != nil || f != FlagRuntime {
		t.Errorf("ParseFlag runtime: %v", err)
	}
	for _, bad := range []string{"adhoc", "bogus", ""} {
		if _, err := ParseFlag(bad); err == nil {
			t.Errorf("ParseFlag(%q) succeeded", bad)
		}
	}
	if h, err := ParseHashType("SHA256"); err != nil || h != HashSHA256 {
		t.Error("ParseHashType")
	}
	if _, err := ParseHashType("md5"); err == nil {
		t.Error("md5 accepted")
	}
	if s := (SlotAlternateCodeDirectory0 + 1).String(); s != "AlternateCodeDirectory1" {
		t.Error(s)
	}
}

// FuzzSuperBlob parses arbitrary signature data the way ReadSignature does:
// the SuperBlob, then every CodeDirectory in it. Nothing may panic, and whatever
// parses must re-encode to something that parses the same way.
func FuzzSuperBlob(f *testing.F) {
	cd := sampleCD().Bytes()
	f.Add(BuildSuperBlob([]Entry{{Slot: SlotCodeDirectory, Data: cd}, {Slot: SlotSignature, Data: Wrap(MagicBlobWrapper, nil)}}))
	f.Add(BuildSuperBlob([]Entry{{Slot: SlotCodeDirectory, Data: cd}, {Slot: SlotAlternateCodeDirectory0, Data: cd}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := ParseSuperBlob(data)
		if err != nil {
			return
		}
		again, err := ParseSuperBlob(BuildSuperBlob(sb.Entries))
		if err != nil || len(again.Entries) != len(sb.Entries) {
			t.Fatalf("rebuilt SuperBlob does not parse: %v", err)
		}
		for _, e := range sb.Entries {
			if e.Slot.IsCodeDirectory() {
				parseCD(t, e.Data)
			}
		}
	})
}

// FuzzCodeDirectory parses arbitrary CodeDirectory blobs.
func FuzzCodeDirectory(f *testing.F) {
	f.Add(sampleCD().Bytes())
	c := sampleCD()
	c.Version, c.TeamID = CDVersionExecSeg, ""
	f.Add(c.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) { parseCD(t, data) })
}

func parseCD(t *testing.T, data []byte) {
	cd, err := ParseCodeDirectory(data)
	if err != nil {
		return
	}
	if len(cd.Code)*int(cd.HashSize) > len(data) || len(cd.Special)*int(cd.HashSize) > len(data) {
		t.Fatalf("slots exceed the input: %d code, %d special", len(cd.Code), len(cd.Special))
	}
	back, err := ParseCodeDirectory(cd.Bytes())
	if err != nil {
		t.Fatalf("re-encoded CodeDirectory does not parse: %v", err)
	}
	if back.Identifier != cd.Identifier || len(back.Code) != len(cd.Code) || len(back.Special) != len(cd.Special) {
		t.Fatal("re-encoding changed the CodeDirectory")
	}
}
