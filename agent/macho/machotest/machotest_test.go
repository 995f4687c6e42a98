package machotest

import (
	"bytes"
	"crypto/sha256"
	"debug/macho"
	"encoding/hex"
	"strings"
	"testing"
)

// The published facts about `rcodesign debug-create-macho exe` (spec §12 A): size
// and the first/last hex digits of the SHA-256. Matching them proves the synthetic
// fixture is rcodesign's, so the signing goldens built on it mean something.
func TestFixtureGoldens(t *testing.T) {
	for _, tc := range []struct {
		name           string
		opts           Options
		size           int
		prefix, suffix string
	}{
		{"arm64", Options{Arch: ARM64}, 16386, "4cfaf70b", "430c"},
		{"x86_64", Options{Arch: X86_64}, 4098, "4e139a94", "a226"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Exe(tc.opts)
			if len(b) != tc.size {
				t.Fatalf("size %d, want %d", len(b), tc.size)
			}
			sum := sha256.Sum256(b)
			h := hex.EncodeToString(sum[:])
			if !strings.HasPrefix(h, tc.prefix) || !strings.HasSuffix(h, tc.suffix) {
				t.Fatalf("sha256 %s, want %s…%s", h, tc.prefix, tc.suffix)
			}
			// The standard library agrees it is a well-formed executable.
			f, err := macho.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != macho.TypeExec || len(f.Loads) != 7 || f.Segment("__LINKEDIT") == nil {
				t.Fatalf("unexpected structure: type %v, %d loads", f.Type, len(f.Loads))
			}
		})
	}
}

func TestTargetingOptions(t *testing.T) {
	b := Exe(Options{MinOS: 10<<16 | 11<<8 | 3})
	f, err := macho.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw := f.Loads[6].Raw()
	if got := le32(raw[12:]); got != 0x0a0b03 {
		t.Errorf("minos %#x", got)
	}
	if got := le32(raw[16:]); got != 0x0a0b03 {
		t.Errorf("sdk %#x, want the minimum version (rcodesign's default)", got)
	}
	b = Exe(Options{NoTargeting: true})
	f, err = macho.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Loads) != 6 || len(b) != 16386 {
		t.Errorf("no-targeting: %d loads, %d bytes", len(f.Loads), len(b))
	}
}

func TestUniversal(t *testing.T) {
	u := Universal(Exe(Options{Arch: ARM64}), Exe(Options{Arch: X86_64}))
	f, err := macho.NewFatFile(bytes.NewReader(u))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Arches) != 2 || f.Arches[0].Offset != 16384 || f.Arches[1].Offset != 49152 {
		t.Fatalf("arches %+v", f.Arches)
	}
	if len(u) != 49152+4098 {
		t.Fatalf("size %d", len(u))
	}
}
