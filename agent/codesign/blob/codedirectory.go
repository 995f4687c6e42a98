package blob

import (
	"bytes"
	"encoding/binary"
	"math"
)

// CodeDirectory versions and the fields each adds.
const (
	CDVersionBase        = 0x20000
	CDVersionScatter     = 0x20100
	CDVersionTeamID      = 0x20200
	CDVersionCodeLimit64 = 0x20300
	CDVersionExecSeg     = 0x20400
	CDVersionRuntime     = 0x20500
	CDVersionLinkage     = 0x20600
)

// CodeDirectory is the structure a code signature's hashes live in: one hash per
// 4 KiB page of the binary ("code slots") and one per auxiliary blob ("special
// slots"), plus identity fields. Its digest is the "cdhash".
type CodeDirectory struct {
	Version  uint32
	Flags    uint32
	HashType HashType
	// HashSize is the stored size of each hash. Build uses HashType.Size().
	HashSize     uint8
	Platform     uint8
	PageSizeLog2 uint8
	// CodeLimit is the number of bytes the code hashes cover. Values above 4 GiB
	// are written to codeLimit64 (version >= 0x20300).
	CodeLimit        uint64
	ScatterOffset    uint32
	ExecSegBase      uint64
	ExecSegLimit     uint64
	ExecSegFlags     uint64
	Runtime          uint32
	PreEncryptOffset uint32
	Identifier       string
	TeamID           string
	// Special holds the special-slot hashes: Special[k-1] is slot k's hash. Its
	// length is nSpecialSlots; absent slots are all-zero hashes.
	Special [][]byte
	// Code holds the page hashes in file order.
	Code [][]byte
}

// SpecialHash returns the hash stored for a special slot, or nil when the
// CodeDirectory has no entry that high.
func (cd *CodeDirectory) SpecialHash(s Slot) []byte {
	if s == 0 || int(s) > len(cd.Special) {
		return nil
	}
	return cd.Special[s-1]
}

// PageSize is the code page size in bytes (0 means a single page covering everything).
func (cd *CodeDirectory) PageSize() int64 {
	if cd.PageSizeLog2 == 0 {
		return 0
	}
	return 1 << cd.PageSizeLog2
}

// headerSize returns the fixed header length for a version.
func headerSize(version uint32) int {
	switch {
	case version >= CDVersionLinkage:
		return 0x6c
	case version >= CDVersionRuntime:
		return 0x60
	case version >= CDVersionExecSeg:
		return 0x58
	case version >= CDVersionCodeLimit64:
		return 0x40
	case version >= CDVersionTeamID:
		return 0x34
	case version >= CDVersionScatter:
		return 0x30
	}
	return 0x2c
}

// Bytes serializes the CodeDirectory blob, laid out like rcodesign and Apple:
// fixed header, identifier, team ID, special hashes (highest slot first), code
// hashes. Fields newer than Version are not written.
func (cd *CodeDirectory) Bytes() []byte {
	hs := int(cd.HashSize)
	hdr := headerSize(cd.Version)
	identOff := hdr
	teamOff := 0
	off := identOff + len(cd.Identifier) + 1
	if cd.TeamID != "" && cd.Version >= CDVersionTeamID {
		teamOff = off
		off += len(cd.TeamID) + 1
	}
	hashOff := off + hs*len(cd.Special)
	total := hashOff + hs*len(cd.Code)

	b := make([]byte, total)
	be := binary.BigEndian
	be.PutUint32(b[0:], MagicCodeDirectory)
	be.PutUint32(b[4:], uint32(total))
	be.PutUint32(b[8:], cd.Version)
	be.PutUint32(b[12:], cd.Flags)
	be.PutUint32(b[16:], uint32(hashOff))
	be.PutUint32(b[20:], uint32(identOff))
	be.PutUint32(b[24:], uint32(len(cd.Special)))
	be.PutUint32(b[28:], uint32(len(cd.Code)))
	limit32, limit64 := uint32(cd.CodeLimit), uint64(0)
	if cd.CodeLimit > math.MaxUint32 {
		limit32, limit64 = 0, cd.CodeLimit
	}
	be.PutUint32(b[32:], limit32)
	b[36] = cd.HashSize
	b[37] = uint8(cd.HashType)
	b[38] = cd.Platform
	b[39] = cd.PageSizeLog2
	// 40: spare2 = 0
	if cd.Version >= CDVersionScatter {
		be.PutUint32(b[44:], cd.ScatterOffset)
	}
	if cd.Version >= CDVersionTeamID {
		be.PutUint32(b[48:], uint32(teamOff))
	}
	if cd.Version >= CDVersionCodeLimit64 {
		// 52: spare3 = 0
		be.PutUint64(b[56:], limit64)
	}
	if cd.Version >= CDVersionExecSeg {
		be.PutUint64(b[64:], cd.ExecSegBase)
		be.PutUint64(b[72:], cd.ExecSegLimit)
		be.PutUint64(b[80:], cd.ExecSegFlags)
	}
	if cd.Version >= CDVersionRuntime {
		be.PutUint32(b[88:], cd.Runtime)
		be.PutUint32(b[92:], cd.PreEncryptOffset)
	}
	copy(b[identOff:], cd.Identifier)
	if teamOff != 0 {
		copy(b[teamOff:], cd.TeamID)
	}
	for k := len(cd.Special); k >= 1; k-- {
		copy(b[hashOff-k*hs:], cd.Special[k-1])
	}
	for i, h := range cd.Code {
		copy(b[hashOff+i*hs:], h)
	}
	return b
}

// ParseCodeDirectory decodes a CodeDirectory blob (header included).
func ParseCodeDirectory(data []byte) (*CodeDirectory, error) {
	payload, err := Unwrap(data, MagicCodeDirectory)
	if err != nil {
		return nil, err
	}
	b := data[:8+len(payload)]
	n := uint64(len(b))
	if len(b) < 0x2c {
		return nil, malformed("CodeDirectory: %d bytes is shorter than its header", len(b))
	}
	be := binary.BigEndian
	cd := &CodeDirectory{
		Version:      be.Uint32(b[8:]),
		Flags:        be.Uint32(b[12:]),
		HashSize:     b[36],
		HashType:     HashType(b[37]),
		Platform:     b[38],
		PageSizeLog2: b[39],
	}
	hashOff := uint64(be.Uint32(b[16:]))
	identOff := uint64(be.Uint32(b[20:]))
	nSpecial := uint64(be.Uint32(b[24:]))
	nCode := uint64(be.Uint32(b[28:]))
	cd.CodeLimit = uint64(be.Uint32(b[32:]))
	if cd.Version < CDVersionBase || cd.Version>>16 != 2 {
		return nil, malformed("CodeDirectory version %#x is not supported", cd.Version)
	}
	if hs := headerSize(cd.Version); len(b) < hs {
		return nil, malformed("CodeDirectory version %#x needs a %d-byte header, blob has %d bytes", cd.Version, hs, len(b))
	}
	if want := cd.HashType.Size(); want != 0 && int(cd.HashSize) != want {
		return nil, malformed("CodeDirectory hash size %d does not match hash type %s (%d)", cd.HashSize, cd.HashType, want)
	}
	if cd.HashSize == 0 {
		return nil, malformed("CodeDirectory hash size is 0")
	}
	if cd.PageSizeLog2 > 20 {
		return nil, malformed("CodeDirectory page size 2^%d is not plausible", cd.PageSizeLog2)
	}
	var teamOff uint64
	if cd.Version >= CDVersionScatter {
		cd.ScatterOffset = be.Uint32(b[44:])
	}
	if cd.Version >= CDVersionTeamID {
		teamOff = uint64(be.Uint32(b[48:]))
	}
	if cd.Version >= CDVersionCodeLimit64 {
		if l64 := be.Uint64(b[56:]); l64 != 0 {
			cd.CodeLimit = l64
		}
	}
	if cd.Version >= CDVersionExecSeg {
		cd.ExecSegBase = be.Uint64(b[64:])
		cd.ExecSegLimit = be.Uint64(b[72:])
		cd.ExecSegFlags = be.Uint64(b[80:])
	}
	if cd.Version >= CDVersionRuntime {
		cd.Runtime = be.Uint32(b[88:])
		cd.PreEncryptOffset = be.Uint32(b[92:])
	}
	hs := uint64(cd.HashSize)
	if nSpecial*hs > hashOff || hashOff > n || nCode*hs > n-hashOff {
		return nil, malformed("CodeDirectory hashes (offset %d, %d special and %d code slots of %d bytes) do not fit in %d bytes", hashOff, nSpecial, nCode, hs, n)
	}
	ident, err := cstringAt(b, identOff, "identifier")
	if err != nil {
		return nil, err
	}
	cd.Identifier = ident
	if teamOff != 0 {
		if cd.TeamID, err = cstringAt(b, teamOff, "team ID"); err != nil {
			return nil, err
		}
	}
	cd.Special = make([][]byte, nSpecial)
	for k := uint64(1); k <= nSpecial; k++ {
		o := hashOff - k*hs
		cd.Special[k-1] = b[o : o+hs : o+hs]
	}
	cd.Code = make([][]byte, nCode)
	for i := uint64(0); i < nCode; i++ {
		o := hashOff + i*hs
		cd.Code[i] = b[o : o+hs : o+hs]
	}
	return cd, nil
}

func cstringAt(b []byte, off uint64, what string) (string, error) {
	if off >= uint64(len(b)) {
		return "", malformed("CodeDirectory %s offset %d is outside the %d-byte blob", what, off, len(b))
	}
	i := bytes.IndexByte(b[off:], 0)
	if i < 0 {
		return "", malformed("CodeDirectory %s is not NUL-terminated", what)
	}
	return string(b[off : off+uint64(i)]), nil
}
