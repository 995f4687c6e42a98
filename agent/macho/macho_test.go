package macho

import (
	"bytes"
	stdmacho "debug/macho"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/farsign/farsign/agent/macho/machotest"
)

func parse(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseFixture(t *testing.T) {
	b := machotest.Exe(machotest.Options{})
	f := parse(t, b)
	if !f.Is64 || f.CPU != CPUARM64 || f.Type != TypeExecute || f.NCmds != 7 || f.SizeOfCmds != 728 {
		t.Fatalf("header %+v", f)
	}
	if len(f.Segments) != 5 || f.Segment("__TEXT").FileSize != 16384 || len(f.Segment("__TEXT").Sections) != 2 {
		t.Fatalf("segments %+v", f.Segments)
	}
	if f.Target == nil || f.Target.Platform != PlatformMacOS || f.Target.MinOS.String() != "11.0.0" || f.Target.SDK.String() != "11.0.0" {
		t.Fatalf("target %+v", f.Target)
	}
	if f.CodeSignature != nil {
		t.Fatal("fixture is unsigned")
	}
	le, err := f.Linkedit()
	if err != nil || le.FileOff != 16384 || le.FileSize != 2 {
		t.Fatalf("linkedit %+v %v", le, err)
	}
	if err := f.CheckSignable(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if lim, _ := f.CodeLimit(); lim != 16386 {
		t.Fatalf("code limit %d", lim)
	}
}

// The planned layout matches rcodesign's: signature 16-aligned after __LINKEDIT's
// data, LC_CODE_SIGNATURE appended, __LINKEDIT sizes updated, and the result is
// a Mach-O the standard library reads.
func TestPlanSignature(t *testing.T) {
	b := machotest.Exe(machotest.Options{})
	f := parse(t, b)
	p, err := f.PlanSignature(6144)
	if err != nil {
		t.Fatal(err)
	}
	if p.CopyEnd != 16386 || p.SignatureOffset != 16400 || p.Size != 16400+6144 || len(p.Header) != 32+728+16 {
		t.Fatalf("plan %+v", p)
	}
	var out bytes.Buffer
	sig := bytes.Repeat([]byte{0xab}, 6144)
	if _, err := p.WriteTo(&out, bytes.NewReader(b), sig); err != nil {
		t.Fatal(err)
	}
	// CodeReader yields exactly the output's first CodeLimit bytes.
	code := make([]byte, p.CodeLimit())
	if _, err := p.CodeReader(bytes.NewReader(b)).ReadAt(code, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(code, out.Bytes()[:p.CodeLimit()]) {
		t.Fatal("CodeReader disagrees with the written file")
	}
	sf, err := stdmacho.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	le := sf.Segment("__LINKEDIT")
	if le.Filesz != 16+6144 || le.Memsz != 16384 {
		t.Errorf("__LINKEDIT filesize %d vmsize %d", le.Filesz, le.Memsz)
	}
	nf := parse(t, out.Bytes())
	if nf.CodeSignature == nil || nf.CodeSignature.DataOff != 16400 || nf.CodeSignature.DataSize != 6144 {
		t.Fatalf("LC_CODE_SIGNATURE %+v", nf.CodeSignature)
	}
	// Re-planning the signed file replaces the signature in place.
	p2, err := nf.PlanSignature(4096)
	if err != nil {
		t.Fatal(err)
	}
	if p2.CopyEnd != 16400 || p2.SignatureOffset != 16400 || len(p2.Header) != 32+728+16 {
		t.Fatalf("re-plan %+v", p2)
	}
}

func TestCodeReaderPieces(t *testing.T) {
	p := &Plan{Header: []byte("HDR"), CopyEnd: 8, SignatureOffset: 12}
	in := bytes.NewReader([]byte("xxxABCDEyyyy"))
	r := p.CodeReader(in)
	buf := make([]byte, 20)
	n, err := r.ReadAt(buf, 0)
	if n != 12 || err != io.EOF || string(buf[:12]) != "HDRABCDE\x00\x00\x00\x00" {
		t.Fatalf("%d %v %q", n, err, buf[:n])
	}
	n, err = r.ReadAt(buf[:4], 2)
	if n != 4 || err != nil || string(buf[:4]) != "RABC" {
		t.Fatalf("%d %v %q", n, err, buf[:n])
	}
	if _, err := r.ReadAt(buf[:1], 12); err != io.EOF {
		t.Fatalf("read at the limit: %v", err)
	}
}

func TestTruncatedAndMalformed(t *testing.T) {
	b := machotest.Exe(machotest.Options{})
	for _, n := range []int{0, 3, 27, 31, 100, 760, 16385} {
		_, err := Parse(bytes.NewReader(b[:n]), int64(n))
		if err == nil {
			t.Errorf("Parse of %d of %d bytes succeeded", n, len(b))
			continue
		}
		if n >= 4 && !errors.Is(err, ErrTruncated) {
			t.Errorf("%d bytes: %v does not say truncated", n, err)
		}
	}
	// ncmds larger than the load commands can hold.
	bad := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(bad[16:], 1000)
	if _, err := Parse(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Error("absurd ncmds accepted")
	}
	// A load command whose size runs past the area.
	bad = append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(bad[32+4:], 0x10000)
	if _, err := Parse(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Error("oversized load command accepted")
	}
	if _, err := Parse(bytes.NewReader([]byte("#!/bin/sh\necho hi\n")), 18); !errors.Is(err, ErrNotMachO) {
		t.Errorf("script: %v", err)
	}
	// Trailing data after __LINKEDIT is refused rather than dropped.
	f := parse(t, append(append([]byte(nil), b...), 1, 2, 3))
	if err := f.CheckSignable(bytes.NewReader(b)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestNoRoomForLoadCommand(t *testing.T) {
	b := machotest.Exe(machotest.Options{})
	// Put data right after the load commands, where LC_CODE_SIGNATURE would go.
	b[32+728] = 0xff
	f := parse(t, b)
	if err := f.CheckSignable(bytes.NewReader(b)); err == nil {
		t.Fatal("a non-empty gap was accepted for the new load command")
	}
}

func TestUniversal(t *testing.T) {
	u := machotest.Universal(machotest.Exe(machotest.Options{}), machotest.Exe(machotest.Options{Arch: machotest.X86_64}))
	bin, err := Open(bytes.NewReader(u), int64(len(u)))
	if err != nil {
		t.Fatal(err)
	}
	if !bin.Fat || len(bin.Slices) != 2 || bin.Slices[1].File.CPUName() != "x86_64" || bin.Slices[1].Arch.Offset != 49152 {
		t.Fatalf("%+v", bin)
	}
	hdr, offs, err := FatLayout([]Arch{{CPU: CPUARM64, Size: 22544}, {CPU: CPUX86_64, SubCPU: 3, Size: 10256}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr) != 16384 || offs[0] != 16384 || offs[1] != 49152 {
		t.Fatalf("layout %d %v", len(hdr), offs)
	}
	// Truncated universal files.
	for _, n := range []int{4, 8, 20, 16384, 20000} {
		if _, err := Open(bytes.NewReader(u[:n]), int64(n)); err == nil {
			t.Errorf("universal truncated to %d bytes accepted", n)
		}
	}
	// Overlapping slices.
	bad := append([]byte(nil), u...)
	binary.BigEndian.PutUint32(bad[8+20+8:], 16384)
	if _, err := Open(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Error("overlapping slices accepted")
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]string{"11": "11.0.0", "10.11.4": "10.11.4", "15.5": "15.5.0"} {
		v, err := ParseVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v", in, v, err)
		}
	}
	for _, in := range []string{"", "1.", "a", "1.2.3.4", "1.256", "70000"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) succeeded", in)
		}
	}
}

// FuzzOpen parses arbitrary bytes as a thin or universal Mach-O and, when that
// works, plans a signature: nothing may panic, and a plan must be internally
// consistent.
func FuzzOpen(f *testing.F) {
	exe := machotest.Exe(machotest.Options{})
	f.Add(exe)
	f.Add(machotest.Exe(machotest.Options{Arch: machotest.X86_64, NoTargeting: true}))
	f.Add(machotest.Universal(exe, machotest.Exe(machotest.Options{Arch: machotest.X86_64})))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		bin, err := Open(r, int64(len(data)))
		if err != nil {
			return
		}
		for _, sl := range bin.Slices {
			if sl.File == nil || sl.File.CheckSignable(sl.Reader) != nil {
				continue
			}
			p, err := sl.File.PlanSignature(4096)
			if err != nil {
				continue
			}
			if p.SignatureOffset%SignatureAlign != 0 || p.CopyEnd > p.SignatureOffset || int64(len(p.Header)) > p.CopyEnd {
				t.Fatalf("inconsistent plan %+v", p)
			}
			var out bytes.Buffer
			if _, err := p.WriteTo(&out, sl.Reader, make([]byte, 4096)); err != nil {
				t.Fatalf("writing a planned file: %v", err)
			}
			if _, err := Parse(bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
				t.Fatalf("the planned file does not parse: %v", err)
			}
		}
	})
}
