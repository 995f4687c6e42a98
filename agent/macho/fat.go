package macho

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Universal ("fat") header magic numbers, always big-endian in the file.
const (
	FatMagic   = 0xcafebabe
	FatMagic64 = 0xcafebabf
)

// maxFatArches bounds the number of slices read from a universal header. Real
// files have 1 to 4; 0xcafebabe is also the Java class file magic, whose "count"
// is a version number in the tens.
const maxFatArches = 32

// FatAlignLog2 is the slice alignment rcodesign writes (2^14 = 16 KiB) for every
// architecture. Apple's tools keep 4 KiB for x86_64; both are valid.
const FatAlignLog2 = 14

// Arch is one fat_arch entry: where a slice lives in a universal file.
type Arch struct {
	CPU, SubCPU uint32
	Offset      uint64
	Size        uint64
	Align       uint32
}

// Binary is a Mach-O file on disk: one thin slice, or a universal file's slices.
type Binary struct {
	// Fat is true for a universal file, even one with a single slice.
	Fat    bool
	Slices []Slice
}

// Slice is one architecture's Mach-O inside a Binary.
type Slice struct {
	Arch Arch
	// File is the parsed slice, or nil when the slice is not a Mach-O (for
	// example a static archive inside a universal file).
	File *File
	// Reader reads the slice's bytes; offset 0 is the slice's first byte.
	Reader *io.SectionReader
}

// Open parses a thin or universal Mach-O of the given size.
func Open(r io.ReaderAt, size int64) (*Binary, error) {
	var m [4]byte
	if size < 4 {
		return nil, fmt.Errorf("%w: %d bytes", errTruncated, size)
	}
	if _, err := r.ReadAt(m[:], 0); err != nil {
		return nil, fmt.Errorf("reading magic: %w", err)
	}
	magic := binary.BigEndian.Uint32(m[:])
	if magic != FatMagic && magic != FatMagic64 {
		f, err := Parse(r, size)
		if err != nil {
			return nil, err
		}
		return &Binary{Slices: []Slice{{
			Arch:   Arch{CPU: f.CPU, SubCPU: f.SubCPU, Offset: 0, Size: uint64(size)},
			File:   f,
			Reader: io.NewSectionReader(r, 0, size),
		}}}, nil
	}
	archs, err := parseFatHeader(r, size, magic == FatMagic64)
	if err != nil {
		return nil, err
	}
	b := &Binary{Fat: true}
	for i, a := range archs {
		sr := io.NewSectionReader(r, int64(a.Offset), int64(a.Size))
		f, err := Parse(sr, int64(a.Size))
		if errors.Is(err, ErrNotMachO) {
			f = nil // carried through unsigned
		} else if err != nil {
			return nil, fmt.Errorf("universal slice %d (%s): %w", i, CPUName(a.CPU, a.SubCPU), err)
		}
		if f != nil && (f.CPU != a.CPU) {
			return nil, fmt.Errorf("malformed universal file: slice %d is listed as %s but contains %s", i, CPUName(a.CPU, a.SubCPU), f.CPUName())
		}
		b.Slices = append(b.Slices, Slice{Arch: a, File: f, Reader: sr})
	}
	return b, nil
}

func parseFatHeader(r io.ReaderAt, size int64, is64 bool) ([]Arch, error) {
	var h [8]byte
	if size < 8 {
		return nil, fmt.Errorf("%w: universal header needs 8 bytes, file has %d", errTruncated, size)
	}
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("reading universal header: %w", err)
	}
	n := binary.BigEndian.Uint32(h[4:])
	if n == 0 || n > maxFatArches {
		return nil, fmt.Errorf("malformed universal file: %d architectures (want 1 to %d); a Java class file also starts with 0xcafebabe", n, maxFatArches)
	}
	entry := 20
	if is64 {
		entry = 32
	}
	tableEnd := int64(8 + int(n)*entry)
	if tableEnd > size {
		return nil, fmt.Errorf("%w: universal header lists %d architectures but the file has %d bytes", errTruncated, n, size)
	}
	buf := make([]byte, tableEnd-8)
	if _, err := r.ReadAt(buf, 8); err != nil {
		return nil, fmt.Errorf("reading universal header: %w", err)
	}
	archs := make([]Arch, n)
	for i := range archs {
		b := buf[i*entry:]
		a := Arch{CPU: binary.BigEndian.Uint32(b), SubCPU: binary.BigEndian.Uint32(b[4:])}
		if is64 {
			a.Offset = binary.BigEndian.Uint64(b[8:])
			a.Size = binary.BigEndian.Uint64(b[16:])
			a.Align = binary.BigEndian.Uint32(b[24:])
		} else {
			a.Offset = uint64(binary.BigEndian.Uint32(b[8:]))
			a.Size = uint64(binary.BigEndian.Uint32(b[12:]))
			a.Align = binary.BigEndian.Uint32(b[16:])
		}
		if a.Offset < uint64(tableEnd) || a.Offset > uint64(size) || a.Size > uint64(size)-a.Offset {
			return nil, fmt.Errorf("%w: universal slice %d (%s) at offset %d size %d lies outside the file (%d bytes)", errTruncated, i, CPUName(a.CPU, a.SubCPU), a.Offset, a.Size, size)
		}
		archs[i] = a
	}
	sorted := append([]Arch(nil), archs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].Offset+sorted[i-1].Size > sorted[i].Offset {
			return nil, errors.New("malformed universal file: slices overlap")
		}
	}
	return archs, nil
}

// FatLayout computes the universal container rcodesign writes for slices of the
// given CPU types and sizes: every slice aligned to 2^14 with zero fill, the first
// at 16384. It returns the header (magic, count, fat_arch entries, zero padding up
// to the first slice) and each slice's offset. Arch.Offset and Arch.Align in the
// input are ignored.
func FatLayout(archs []Arch) (header []byte, offsets []uint64, err error) {
	if len(archs) == 0 || len(archs) > maxFatArches {
		return nil, nil, fmt.Errorf("cannot write a universal file with %d slices", len(archs))
	}
	const align = 1 << FatAlignLog2
	off := uint64(align)
	offsets = make([]uint64, len(archs))
	is64 := false
	for i, a := range archs {
		off = (off + align - 1) / align * align
		offsets[i] = off
		off += a.Size
		if off > 1<<32-1 || a.Size > 1<<32-1 {
			is64 = true
		}
	}
	entry := 20
	magic := uint32(FatMagic)
	if is64 {
		entry, magic = 32, FatMagic64
	}
	if 8+len(archs)*entry > align {
		return nil, nil, errors.New("too many slices for the universal header")
	}
	header = make([]byte, align)
	binary.BigEndian.PutUint32(header, magic)
	binary.BigEndian.PutUint32(header[4:], uint32(len(archs)))
	for i, a := range archs {
		b := header[8+i*entry:]
		binary.BigEndian.PutUint32(b, a.CPU)
		binary.BigEndian.PutUint32(b[4:], a.SubCPU)
		if is64 {
			binary.BigEndian.PutUint64(b[8:], offsets[i])
			binary.BigEndian.PutUint64(b[16:], a.Size)
			binary.BigEndian.PutUint32(b[24:], FatAlignLog2)
		} else {
			binary.BigEndian.PutUint32(b[8:], uint32(offsets[i]))
			binary.BigEndian.PutUint32(b[12:], uint32(a.Size))
			binary.BigEndian.PutUint32(b[16:], FatAlignLog2)
		}
	}
	return header, offsets, nil
}
