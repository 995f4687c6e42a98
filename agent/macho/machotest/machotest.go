// Package machotest synthesizes the minimal Mach-O executables that rcodesign's
// `debug-create-macho` writes, so farsign's tests can reproduce rcodesign's golden
// signing outputs byte for byte without shipping binaries.
//
// The layout is the one dumped in rcodesign's tests/cmd/debug-create-macho.trycmd:
// __PAGEZERO, __TEXT (__text, __const), __DATA_CONST (__const), __DATA (__data),
// __LINKEDIT (a 1-byte symbol table and a 1-byte string table), LC_SYMTAB and an
// optional LC_BUILD_VERSION. Sections are empty and all sit at one page offset,
// with the raw page size (not its log2) in their align fields, exactly as rcodesign
// writes them. Tests must check the output against the published sizes and
// SHA-256 hashes before trusting it (see TestFixtureGoldens).
package machotest

import (
	"encoding/binary"
)

// Arch selects the architecture of a synthesized executable.
type Arch int

const (
	// ARM64 is an arm64 executable with 16 KiB pages (16386 bytes by default).
	ARM64 Arch = iota
	// X86_64 is an x86_64 executable with 4 KiB pages (4098 bytes by default).
	X86_64
)

// Options are rcodesign debug-create-macho's flags.
type Options struct {
	Arch Arch
	// MinOS and SDK are nibble-encoded versions (major<<16|minor<<8|patch). When one
	// is zero it takes the other's value; both zero means 11.0.0, rcodesign's default.
	MinOS, SDK uint32
	// NoTargeting omits LC_BUILD_VERSION.
	NoTargeting bool
	// FileType is the Mach-O file type; zero means MH_EXECUTE.
	FileType uint32
}

// Exe returns the bytes of `rcodesign debug-create-macho` for opts.
func Exe(opts Options) []byte {
	le := binary.LittleEndian
	page := uint64(16384)
	cpu, sub := uint32(0x0100000c), uint32(0)
	if opts.Arch == X86_64 {
		page, cpu, sub = 4096, 0x01000007, 3
	}
	minOS, sdk := opts.MinOS, opts.SDK
	switch {
	case minOS == 0 && sdk == 0:
		minOS, sdk = 11<<16, 11<<16
	case minOS == 0:
		minOS = sdk
	case sdk == 0:
		sdk = minOS
	}
	fileType := opts.FileType
	if fileType == 0 {
		fileType = 2
	}
	const base = uint64(0x1_0000_0000)

	var cmds []byte
	ncmds := 0
	put32 := func(b []byte, v uint32) []byte { return le.AppendUint32(b, v) }
	put64 := func(b []byte, v uint64) []byte { return le.AppendUint64(b, v) }
	name16 := func(b []byte, s string) []byte {
		var n [16]byte
		copy(n[:], s)
		return append(b, n[:]...)
	}
	segment := func(name string, nsects int, vmaddr, vmsize, fileoff, filesize uint64) {
		ncmds++
		cmds = put32(cmds, 0x19)
		cmds = put32(cmds, uint32(72+80*nsects))
		cmds = name16(cmds, name)
		cmds = put64(cmds, vmaddr)
		cmds = put64(cmds, vmsize)
		cmds = put64(cmds, fileoff)
		cmds = put64(cmds, filesize)
		cmds = put32(cmds, 0) // maxprot
		cmds = put32(cmds, 0) // initprot
		cmds = put32(cmds, uint32(nsects))
		cmds = put32(cmds, 0) // flags
	}
	section := func(seg, name string) {
		cmds = name16(cmds, name)
		cmds = name16(cmds, seg)
		cmds = put64(cmds, base) // addr
		cmds = put64(cmds, 0)    // size
		cmds = put32(cmds, uint32(page))
		cmds = put32(cmds, uint32(page)) // align: the raw value, as rcodesign writes it
		cmds = put32(cmds, 0)            // reloff
		cmds = put32(cmds, 0)            // nreloc
		cmds = put32(cmds, 0)            // flags
		cmds = put32(cmds, 0)            // reserved1
		cmds = put32(cmds, 0)            // reserved2
		cmds = put32(cmds, 0)            // reserved3
	}
	segment("__PAGEZERO", 0, 0, base, 0, 0)
	segment("__TEXT", 2, base, 0, 0, page)
	section("__TEXT", "__text")
	section("__TEXT", "__const")
	segment("__DATA_CONST", 1, base, 0, page, 0)
	section("__DATA_CONST", "__const")
	segment("__DATA", 1, base, 0, page, 0)
	section("__DATA", "__data")
	segment("__LINKEDIT", 0, base, 2, page, 2)
	ncmds++
	cmds = put32(cmds, 2) // LC_SYMTAB
	cmds = put32(cmds, 24)
	cmds = put32(cmds, uint32(page))   // symoff
	cmds = put32(cmds, 0)              // nsyms
	cmds = put32(cmds, uint32(page)+1) // stroff
	cmds = put32(cmds, 1)              // strsize
	if !opts.NoTargeting {
		ncmds++
		cmds = put32(cmds, 0x32) // LC_BUILD_VERSION
		cmds = put32(cmds, 24)
		cmds = put32(cmds, 1) // macOS
		cmds = put32(cmds, minOS)
		cmds = put32(cmds, sdk)
		cmds = put32(cmds, 0) // ntools
	}

	out := make([]byte, 0, page+2)
	out = append(out, 0xcf, 0xfa, 0xed, 0xfe)
	out = put32(out, cpu)
	out = put32(out, sub)
	out = put32(out, fileType)
	out = put32(out, uint32(ncmds))
	out = put32(out, uint32(len(cmds)))
	out = put32(out, 0) // flags
	out = put32(out, 0) // reserved
	out = append(out, cmds...)
	out = append(out, make([]byte, int(page)-len(out))...)
	out = append(out, 0, 0) // symbol table, string table
	return out
}

// Universal returns the universal file `rcodesign macho-universal-create` writes
// for the given thin binaries: 16 KiB-aligned slices after a big-endian header.
func Universal(thin ...[]byte) []byte {
	const align = 16384
	be := binary.BigEndian
	hdr := make([]byte, 0, align)
	hdr = be.AppendUint32(hdr, 0xcafebabe)
	hdr = be.AppendUint32(hdr, uint32(len(thin)))
	off := uint32(align)
	var body []byte
	for _, t := range thin {
		off = (off + align - 1) / align * align
		hdr = be.AppendUint32(hdr, le32(t[4:]))
		hdr = be.AppendUint32(hdr, le32(t[8:]))
		hdr = be.AppendUint32(hdr, off)
		hdr = be.AppendUint32(hdr, uint32(len(t)))
		hdr = be.AppendUint32(hdr, 14)
		for uint32(align+len(body)) < off {
			body = append(body, 0)
		}
		body = append(body, t...)
		off += uint32(len(t))
	}
	hdr = append(hdr, make([]byte, align-len(hdr))...)
	return append(hdr, body...)
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
