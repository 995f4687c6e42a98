// Package macho reads the parts of a Mach-O file that code signing depends on and
// plans the rewrite that embeds a new signature.
//
// It deliberately never loads a whole binary: Parse reads only the header and load
// commands through an io.ReaderAt, and a Plan describes the signed file as "new
// header bytes + a byte range of the input + zero padding + the signature", so a
// 150 MB executable can be hashed and copied by streaming. Every offset and size
// read from the file is checked against the file's length before use; malformed or
// truncated input yields an error and never a panic (see the fuzz targets).
//
// Only what signing needs is modelled: segments and sections, LC_CODE_SIGNATURE and
// the platform-targeting commands (LC_BUILD_VERSION, LC_VERSION_MIN_*). Everything
// else is carried through byte for byte.
package macho

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic numbers of thin Mach-O headers, as read in the file's own byte order.
const (
	Magic32 = 0xfeedface
	Magic64 = 0xfeedfacf
)

// File types (mach_header.filetype).
const (
	TypeObject  = 0x1
	TypeExecute = 0x2
	TypeDylib   = 0x6
	TypeBundle  = 0x8
)

// Load command numbers this package interprets.
const (
	LoadSegment            = 0x1
	LoadSymtab             = 0x2
	LoadSegment64          = 0x19
	LoadCodeSignature      = 0x1d
	LoadVersionMinMacOS    = 0x24
	LoadVersionMinIPhoneOS = 0x25
	LoadVersionMinTVOS     = 0x2f
	LoadVersionMinWatchOS  = 0x30
	LoadBuildVersion       = 0x32
)

// CPU types (mach_header.cputype).
const (
	CPUX86     = 7
	CPUX86_64  = 0x01000007
	CPUARM     = 12
	CPUARM64   = 0x0100000c
	CPUARM6432 = 0x0200000c
	CPUPPC     = 18
	CPUPPC64   = 0x01000012
)

// linkeditDataSize is the size of LC_CODE_SIGNATURE (a linkedit_data_command).
const linkeditDataSize = 16

// maxLoadCommandBytes bounds sizeofcmds. Real binaries use a few KiB to a few
// hundred KiB; anything larger is hostile or corrupt, and the bytes are held in
// memory.
const maxLoadCommandBytes = 16 << 20

// ErrNotMachO is returned (wrapped) when the data does not start with a Mach-O or
// universal magic number.
var ErrNotMachO = errors.New("not a Mach-O file")

// File is a parsed thin (single-architecture) Mach-O: its header and load commands.
type File struct {
	ByteOrder  binary.ByteOrder
	Is64       bool
	CPU        uint32
	SubCPU     uint32
	Type       uint32
	Flags      uint32
	NCmds      uint32
	SizeOfCmds uint32
	// HeaderSize is the size of the mach_header (28 or 32 bytes).
	HeaderSize int
	// Size is the length of this Mach-O in bytes (the slice size in a universal file).
	Size int64

	Loads    []Load
	Segments []Segment
	// CodeSignature is LC_CODE_SIGNATURE, or nil when the file is unsigned.
	CodeSignature *LinkeditData
	// Target is the platform targeting from LC_BUILD_VERSION, or failing that the
	// first LC_VERSION_MIN_* command; nil when the binary has neither.
	Target *Target

	// raw holds the header and load commands: bytes [0, HeaderSize+SizeOfCmds).
	raw []byte
}

// Load is one load command's position in the file.
type Load struct {
	Cmd    uint32
	Offset int // file offset of the command
	Size   int // cmdsize
}

// Segment is an LC_SEGMENT or LC_SEGMENT_64 command.
type Segment struct {
	Name      string
	CmdOffset int // file offset of the load command
	VMAddr    uint64
	VMSize    uint64
	FileOff   uint64
	FileSize  uint64
	MaxProt   uint32
	InitProt  uint32
	Flags     uint32
	Sections  []Section
}

// Section is one section header inside a segment command.
type Section struct {
	Name    string
	Segment string
	Addr    uint64
	Size    uint64
	Offset  uint32
	Align   uint32
	Flags   uint32
}

// section types whose data is not in the file (S_ZEROFILL and friends).
func (s Section) zeroFill() bool {
	switch s.Flags & 0xff {
	case 0x1, 0xc, 0x12: // S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL
		return true
	}
	return false
}

// LinkeditData is a linkedit_data_command such as LC_CODE_SIGNATURE.
type LinkeditData struct {
	CmdOffset int
	DataOff   uint32
	DataSize  uint32
}

// Header returns a copy of the header and load command bytes.
func (f *File) Header() []byte { return append([]byte(nil), f.raw...) }

// Segment returns the named segment, or nil.
func (f *File) Segment(name string) *Segment {
	for i := range f.Segments {
		if f.Segments[i].Name == name {
			return &f.Segments[i]
		}
	}
	return nil
}

// Section returns the named section of the named segment, or nil.
func (f *File) Section(seg, name string) *Section {
	s := f.Segment(seg)
	if s == nil {
		return nil
	}
	for i := range s.Sections {
		if s.Sections[i].Name == name {
			return &s.Sections[i]
		}
	}
	return nil
}

// IsExecutable reports whether the file type is MH_EXECUTE.
func (f *File) IsExecutable() bool { return f.Type == TypeExecute }

// CPUName is a short architecture name for messages: arm64, x86_64, ...
func (f *File) CPUName() string { return CPUName(f.CPU, f.SubCPU) }

// CPUName names a (cputype, cpusubtype) pair the way Apple's tools do.
func CPUName(cpu, sub uint32) string {
	switch cpu {
	case CPUARM64:
		if sub&0xff == 2 {
			return "arm64e"
		}
		return "arm64"
	case CPUX86_64:
		if sub&0xff == 8 {
			return "x86_64h"
		}
		return "x86_64"
	case CPUX86:
		return "i386"
	case CPUARM:
		return "arm"
	case CPUARM6432:
		return "arm64_32"
	case CPUPPC:
		return "ppc"
	case CPUPPC64:
		return "ppc64"
	}
	return fmt.Sprintf("cpu%#x", cpu)
}

// Parse reads a thin Mach-O of the given size from r. It reads only the header
// and load commands and validates every offset against size.
func Parse(r io.ReaderAt, size int64) (*File, error) {
	var hdr [32]byte
	if size < 4 {
		return nil, fmt.Errorf("%w: %d bytes", errTruncated, size)
	}
	n := int64(32)
	if size < n {
		n = size
	}
	if _, err := r.ReadAt(hdr[:n], 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading Mach-O header: %w", err)
	}
	f := &File{Size: size}
	switch {
	case binary.LittleEndian.Uint32(hdr[:]) == Magic32:
		f.ByteOrder = binary.LittleEndian
	case binary.BigEndian.Uint32(hdr[:]) == Magic32:
		f.ByteOrder = binary.BigEndian
	case binary.LittleEndian.Uint32(hdr[:]) == Magic64:
		f.ByteOrder, f.Is64 = binary.LittleEndian, true
	case binary.BigEndian.Uint32(hdr[:]) == Magic64:
		f.ByteOrder, f.Is64 = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%w (magic %#08x)", ErrNotMachO, binary.BigEndian.Uint32(hdr[:]))
	}
	if size < 28 || (f.Is64 && size < 32) {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a Mach-O header", errTruncated, size)
	}
	bo := f.ByteOrder
	f.HeaderSize = 28
	if f.Is64 {
		f.HeaderSize = 32
	}
	f.CPU = bo.Uint32(hdr[4:])
	f.SubCPU = bo.Uint32(hdr[8:])
	f.Type = bo.Uint32(hdr[12:])
	f.NCmds = bo.Uint32(hdr[16:])
	f.SizeOfCmds = bo.Uint32(hdr[20:])
	f.Flags = bo.Uint32(hdr[24:])

	if f.SizeOfCmds > maxLoadCommandBytes {
		return nil, fmt.Errorf("malformed Mach-O: load commands claim %d bytes (limit %d)", f.SizeOfCmds, maxLoadCommandBytes)
	}
	end := int64(f.HeaderSize) + int64(f.SizeOfCmds)
	if end > size {
		return nil, fmt.Errorf("%w: load commands end at %d but the file has %d bytes", errTruncated, end, size)
	}
	// Each command is at least 8 bytes, which bounds ncmds too.
	if uint64(f.NCmds)*8 > uint64(f.SizeOfCmds) {
		return nil, fmt.Errorf("malformed Mach-O: %d load commands cannot fit in %d bytes", f.NCmds, f.SizeOfCmds)
	}
	f.raw = make([]byte, end)
	if _, err := r.ReadAt(f.raw, 0); err != nil && !(errors.Is(err, io.EOF) && len(f.raw) == int(end)) {
		return nil, fmt.Errorf("reading load commands: %w", err)
	}
	if err := f.parseLoads(); err != nil {
		return nil, err
	}
	return f, nil
}

var errTruncated = errors.New("truncated Mach-O")

// ErrTruncated is wrapped by errors about data that ends too early.
var ErrTruncated = errTruncated

func (f *File) parseLoads() error {
	bo := f.ByteOrder
	off := f.HeaderSize
	end := len(f.raw)
	for i := uint32(0); i < f.NCmds; i++ {
		if end-off < 8 {
			return fmt.Errorf("malformed Mach-O: load command %d starts at %d, past the end of the load commands (%d)", i, off, end)
		}
		cmd := bo.Uint32(f.raw[off:])
		cmdsize := bo.Uint32(f.raw[off+4:])
		if cmdsize < 8 || int64(cmdsize) > int64(end-off) {
			return fmt.Errorf("malformed Mach-O: load command %d (%#x) has size %d, outside the load command area", i, cmd, cmdsize)
		}
		body := f.raw[off : off+int(cmdsize)]
		f.Loads = append(f.Loads, Load{Cmd: cmd, Offset: off, Size: int(cmdsize)})
		var err error
		switch cmd {
		case LoadSegment, LoadSegment64:
			err = f.parseSegment(cmd, off, body)
		case LoadCodeSignature:
			if f.CodeSignature != nil {
				return errors.New("malformed Mach-O: more than one LC_CODE_SIGNATURE")
			}
			if cmdsize < linkeditDataSize {
				return fmt.Errorf("malformed Mach-O: LC_CODE_SIGNATURE has size %d", cmdsize)
			}
			cs := &LinkeditData{CmdOffset: off, DataOff: bo.Uint32(body[8:]), DataSize: bo.Uint32(body[12:])}
			if int64(cs.DataOff)+int64(cs.DataSize) > f.Size {
				return fmt.Errorf("%w: the code signature (offset %d, size %d) extends past the end of the file (%d bytes)", errTruncated, cs.DataOff, cs.DataSize, f.Size)
			}
			f.CodeSignature = cs
		case LoadBuildVersion:
			if cmdsize < 24 {
				return fmt.Errorf("malformed Mach-O: LC_BUILD_VERSION has size %d", cmdsize)
			}
			// LC_BUILD_VERSION wins over LC_VERSION_MIN_*, whatever the order.
			if f.Target == nil || !f.Target.fromBuildVersion {
				f.Target = &Target{
					Platform:         Platform(bo.Uint32(body[8:])),
					MinOS:            Version(bo.Uint32(body[12:])),
					SDK:              Version(bo.Uint32(body[16:])),
					fromBuildVersion: true,
				}
			}
		case LoadVersionMinMacOS, LoadVersionMinIPhoneOS, LoadVersionMinTVOS, LoadVersionMinWatchOS:
			if cmdsize < 16 {
				return fmt.Errorf("malformed Mach-O: LC_VERSION_MIN command has size %d", cmdsize)
			}
			if f.Target == nil {
				p := map[uint32]Platform{
					LoadVersionMinMacOS:    PlatformMacOS,
					LoadVersionMinIPhoneOS: PlatformIOS,
					LoadVersionMinTVOS:     PlatformTVOS,
					LoadVersionMinWatchOS:  PlatformWatchOS,
				}[cmd]
				f.Target = &Target{Platform: p, MinOS: Version(bo.Uint32(body[8:])), SDK: Version(bo.Uint32(body[12:]))}
			}
		}
		if err != nil {
			return err
		}
		off += int(cmdsize)
	}
	return nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func (f *File) parseSegment(cmd uint32, off int, body []byte) error {
	bo := f.ByteOrder
	var s Segment
	var nsects uint32
	var base, secSize int
	if cmd == LoadSegment64 {
		base, secSize = 72, 80
		if len(body) < base {
			return fmt.Errorf("malformed Mach-O: LC_SEGMENT_64 has size %d", len(body))
		}
		s = Segment{
			Name:     cstring(body[8:24]),
			VMAddr:   bo.Uint64(body[24:]),
			VMSize:   bo.Uint64(body[32:]),
			FileOff:  bo.Uint64(body[40:]),
			FileSize: bo.Uint64(body[48:]),
			MaxProt:  bo.Uint32(body[56:]),
			InitProt: bo.Uint32(body[60:]),
			Flags:    bo.Uint32(body[68:]),
		}
		nsects = bo.Uint32(body[64:])
	} else {
		base, secSize = 56, 68
		if len(body) < base {
			return fmt.Errorf("malformed Mach-O: LC_SEGMENT has size %d", len(body))
		}
		s = Segment{
			Name:     cstring(body[8:24]),
			VMAddr:   uint64(bo.Uint32(body[24:])),
			VMSize:   uint64(bo.Uint32(body[28:])),
			FileOff:  uint64(bo.Uint32(body[32:])),
			FileSize: uint64(bo.Uint32(body[36:])),
			MaxProt:  bo.Uint32(body[40:]),
			InitProt: bo.Uint32(body[44:]),
			Flags:    bo.Uint32(body[52:]),
		}
		nsects = bo.Uint32(body[48:])
	}
	s.CmdOffset = off
	if uint64(nsects)*uint64(secSize) > uint64(len(body)-base) {
		return fmt.Errorf("malformed Mach-O: segment %q claims %d sections but its command has room for %d", s.Name, nsects, (len(body)-base)/secSize)
	}
	if s.FileOff > uint64(f.Size) || s.FileSize > uint64(f.Size)-s.FileOff {
		return fmt.Errorf("%w: segment %s (file offset %d, size %d) extends past the end of the file (%d bytes)", errTruncated, s.Name, s.FileOff, s.FileSize, f.Size)
	}
	for i := 0; i < int(nsects); i++ {
		b := body[base+i*secSize:]
		var sec Section
		sec.Name = cstring(b[0:16])
		sec.Segment = cstring(b[16:32])
		if cmd == LoadSegment64 {
			sec.Addr = bo.Uint64(b[32:])
			sec.Size = bo.Uint64(b[40:])
			sec.Offset = bo.Uint32(b[48:])
			sec.Align = bo.Uint32(b[52:])
			sec.Flags = bo.Uint32(b[64:])
		} else {
			sec.Addr = uint64(bo.Uint32(b[32:]))
			sec.Size = uint64(bo.Uint32(b[36:]))
			sec.Offset = bo.Uint32(b[40:])
			sec.Align = bo.Uint32(b[44:])
			sec.Flags = bo.Uint32(b[56:])
		}
		s.Sections = append(s.Sections, sec)
	}
	f.Segments = append(f.Segments, s)
	return nil
}

// SectionData reads a section's bytes. It refuses zero-fill sections and sections
// whose data lies outside the file, and bounds the size by max.
func (f *File) SectionData(r io.ReaderAt, s *Section, max int64) ([]byte, error) {
	if s.zeroFill() {
		return nil, fmt.Errorf("section %s,%s has no file data", s.Segment, s.Name)
	}
	if s.Size > uint64(max) {
		return nil, fmt.Errorf("section %s,%s is %d bytes (limit %d)", s.Segment, s.Name, s.Size, max)
	}
	if uint64(s.Offset)+s.Size > uint64(f.Size) {
		return nil, fmt.Errorf("%w: section %s,%s extends past the end of the file", errTruncated, s.Segment, s.Name)
	}
	b := make([]byte, s.Size)
	if _, err := r.ReadAt(b, int64(s.Offset)); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, fmt.Errorf("reading section %s,%s: %w", s.Segment, s.Name, err)
	}
	return b, nil
}

// Platform is a Mach-O platform number (LC_BUILD_VERSION.platform).
type Platform uint32

// Platforms.
const (
	PlatformMacOS            Platform = 1
	PlatformIOS              Platform = 2
	PlatformTVOS             Platform = 3
	PlatformWatchOS          Platform = 4
	PlatformBridgeOS         Platform = 5
	PlatformMacCatalyst      Platform = 6
	PlatformIOSSimulator     Platform = 7
	PlatformTVOSSimulator    Platform = 8
	PlatformWatchOSSimulator Platform = 9
	PlatformDriverKit        Platform = 10
	PlatformVisionOS         Platform = 11
	PlatformVisionOSSim      Platform = 12
)

func (p Platform) String() string {
	names := map[Platform]string{
		PlatformMacOS: "macOS", PlatformIOS: "iOS", PlatformTVOS: "tvOS", PlatformWatchOS: "watchOS",
		PlatformBridgeOS: "bridgeOS", PlatformMacCatalyst: "macCatalyst", PlatformIOSSimulator: "iOSSimulator",
		PlatformTVOSSimulator: "tvOSSimulator", PlatformWatchOSSimulator: "watchOSSimulator",
		PlatformDriverKit: "driverKit", PlatformVisionOS: "visionOS", PlatformVisionOSSim: "visionOSSimulator",
	}
	if n, ok := names[p]; ok {
		return n
	}
	return fmt.Sprintf("platform(%d)", uint32(p))
}

// Version is an OS or SDK version in Mach-O's nibble encoding: major<<16 | minor<<8 | patch.
type Version uint32

// MakeVersion encodes major.minor.patch.
func MakeVersion(major, minor, patch uint32) Version {
	return Version(major<<16 | (minor&0xff)<<8 | patch&0xff)
}

// Major, Minor and Patch decode the components.
func (v Version) Major() uint32 { return uint32(v) >> 16 }
func (v Version) Minor() uint32 { return uint32(v) >> 8 & 0xff }
func (v Version) Patch() uint32 { return uint32(v) & 0xff }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch()) }

// ParseVersion parses "12", "12.3" or "12.3.1".
func ParseVersion(s string) (Version, error) {
	var p [3]uint32
	n := 0
	cur, digits := uint64(0), 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || n == 3 {
				return 0, fmt.Errorf("invalid version %q: want MAJOR[.MINOR[.PATCH]]", s)
			}
			p[n] = uint32(cur)
			n++
			cur, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid version %q: want MAJOR[.MINOR[.PATCH]]", s)
		}
		cur = cur*10 + uint64(c-'0')
		digits++
		if cur > 0xffff {
			return 0, fmt.Errorf("invalid version %q: component too large", s)
		}
	}
	if p[1] > 0xff || p[2] > 0xff {
		return 0, fmt.Errorf("invalid version %q: minor and patch must be at most 255", s)
	}
	return MakeVersion(p[0], p[1], p[2]), nil
}

// Target is a binary's platform targeting.
type Target struct {
	Platform Platform
	MinOS    Version
	SDK      Version

	fromBuildVersion bool
}
