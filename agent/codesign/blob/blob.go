// Package blob encodes and decodes the binary structures of Apple's embedded code
// signature: the SuperBlob index, the CodeDirectory and the simple wrapper blobs.
//
// All signature data is big-endian. Every blob starts with a 4-byte magic and a
// 4-byte length that counts the whole blob, header included. Parsers here take
// attacker-controlled bytes (a signature read from a binary someone handed us), so
// every offset and count is checked before use, arithmetic is done in 64 bits and
// nothing is allocated in proportion to a length field that has not been checked
// against the input's real size.
package blob

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Blob magic numbers.
const (
	MagicRequirement       = 0xfade0c00
	MagicRequirementSet    = 0xfade0c01
	MagicCodeDirectory     = 0xfade0c02
	MagicEmbeddedSignature = 0xfade0cc0
	MagicDetachedSignature = 0xfade0cc1
	MagicBlobWrapper       = 0xfade0b01
	MagicEmbeddedOld       = 0xfade0b02
	MagicEntitlements      = 0xfade7171
	MagicEntitlementsDER   = 0xfade7172
	MagicConstraintsDER    = 0xfade8181
)

// MagicName names a blob magic for humans.
func MagicName(m uint32) string {
	switch m {
	case MagicRequirement:
		return "Requirement"
	case MagicRequirementSet:
		return "RequirementSet"
	case MagicCodeDirectory:
		return "CodeDirectory"
	case MagicEmbeddedSignature:
		return "EmbeddedSignature"
	case MagicDetachedSignature:
		return "DetachedSignature"
	case MagicBlobWrapper:
		return "BlobWrapper"
	case MagicEmbeddedOld:
		return "EmbeddedSignatureOld"
	case MagicEntitlements:
		return "Entitlements"
	case MagicEntitlementsDER:
		return "EntitlementsDER"
	case MagicConstraintsDER:
		return "ConstraintsDER"
	}
	return fmt.Sprintf("unknown(%#08x)", m)
}

// Slot is a SuperBlob index type, which is also the special-slot number inside a
// CodeDirectory for slots 1 to 11.
type Slot uint32

// Slots.
const (
	SlotCodeDirectory                Slot = 0
	SlotInfo                         Slot = 1
	SlotRequirements                 Slot = 2
	SlotResourceDir                  Slot = 3
	SlotApplication                  Slot = 4
	SlotEntitlements                 Slot = 5
	SlotRepSpecific                  Slot = 6
	SlotEntitlementsDER              Slot = 7
	SlotLaunchConstraintsSelf        Slot = 8
	SlotLaunchConstraintsParent      Slot = 9
	SlotLaunchConstraintsResponsible Slot = 10
	SlotLibraryConstraints           Slot = 11
	SlotAlternateCodeDirectory0      Slot = 0x1000
	SlotAlternateCodeDirectoryMax    Slot = 0x1004
	SlotSignature                    Slot = 0x10000
	SlotIdentification               Slot = 0x10001
	SlotTicket                       Slot = 0x10002
)

// MaxSpecialSlot is the highest slot a CodeDirectory can hold a hash for.
const MaxSpecialSlot = SlotLibraryConstraints

// IsCodeDirectory reports whether the slot holds a CodeDirectory (primary or alternate).
func (s Slot) IsCodeDirectory() bool {
	return s == SlotCodeDirectory || (s >= SlotAlternateCodeDirectory0 && s <= SlotAlternateCodeDirectoryMax)
}

func (s Slot) String() string {
	switch s {
	case SlotCodeDirectory:
		return "CodeDirectory"
	case SlotInfo:
		return "Info"
	case SlotRequirements:
		return "RequirementSet"
	case SlotResourceDir:
		return "Resources"
	case SlotApplication:
		return "Application"
	case SlotEntitlements:
		return "Entitlements"
	case SlotRepSpecific:
		return "RepSpecific"
	case SlotEntitlementsDER:
		return "EntitlementsDER"
	case SlotLaunchConstraintsSelf:
		return "LaunchConstraintsSelf"
	case SlotLaunchConstraintsParent:
		return "LaunchConstraintsParent"
	case SlotLaunchConstraintsResponsible:
		return "LaunchConstraintsResponsible"
	case SlotLibraryConstraints:
		return "LibraryConstraints"
	case SlotSignature:
		return "CMSSignature"
	case SlotIdentification:
		return "Identification"
	case SlotTicket:
		return "Ticket"
	}
	if s >= SlotAlternateCodeDirectory0 && s <= SlotAlternateCodeDirectoryMax {
		return fmt.Sprintf("AlternateCodeDirectory%d", s-SlotAlternateCodeDirectory0)
	}
	return fmt.Sprintf("Slot%#x", uint32(s))
}

// CodeDirectory flags (CS_*).
const (
	FlagHost              = 0x1
	FlagAdhoc             = 0x2
	FlagForceHard         = 0x100
	FlagForceKill         = 0x200
	FlagForceExpiration   = 0x400
	FlagRestrict          = 0x800
	FlagEnforcement       = 0x1000
	FlagLibraryValidation = 0x2000
	FlagRuntime           = 0x10000
	FlagLinkerSigned      = 0x20000
)

var flagNames = []struct {
	v    uint32
	name string
}{
	{FlagHost, "host"}, {FlagAdhoc, "adhoc"}, {FlagForceHard, "hard"}, {FlagForceKill, "kill"},
	{FlagForceExpiration, "expires"}, {FlagRestrict, "restrict"}, {FlagEnforcement, "enforcement"},
	{FlagLibraryValidation, "library"}, {FlagRuntime, "runtime"}, {FlagLinkerSigned, "linker-signed"},
}

// FlagNames lists the set flags by name (rcodesign's names), unknown bits in hex.
func FlagNames(flags uint32) []string {
	var out []string
	for _, f := range flagNames {
		if flags&f.v != 0 {
			out = append(out, f.name)
			flags &^= f.v
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return out
}

// ParseFlag parses one rcodesign --code-signature-flags value.
func ParseFlag(name string) (uint32, error) {
	for _, f := range flagNames {
		if f.name == name {
			switch f.v {
			case FlagAdhoc, FlagRestrict, FlagEnforcement:
				// Not user-settable in rcodesign either: adhoc follows the signing
				// mode, the others are Apple-internal.
				return 0, fmt.Errorf("code signature flag %q cannot be set by hand", name)
			}
			return f.v, nil
		}
	}
	return 0, fmt.Errorf("unknown code signature flag %q (valid: host, hard, kill, expires, library, runtime, linker-signed)", name)
}

// Executable segment flags (CS_EXECSEG_*).
const (
	ExecSegMainBinary    = 0x1
	ExecSegAllowUnsigned = 0x10
	ExecSegDebugger      = 0x20
	ExecSegJIT           = 0x40
	ExecSegSkipLV        = 0x80
	ExecSegCanLoadCDHash = 0x100
	ExecSegCanExecCDHash = 0x200
)

// ExecSegFlagNames names executable segment flags.
func ExecSegFlagNames(flags uint64) []string {
	names := []struct {
		v    uint64
		name string
	}{
		{ExecSegMainBinary, "main-binary"}, {ExecSegAllowUnsigned, "allow-unsigned"},
		{ExecSegDebugger, "debugger"}, {ExecSegJIT, "jit"}, {ExecSegSkipLV, "skip-library-validation"},
		{ExecSegCanLoadCDHash, "can-load-cd-hash"}, {ExecSegCanExecCDHash, "can-exec-cd-hash"},
	}
	var out []string
	for _, n := range names {
		if flags&n.v != 0 {
			out = append(out, n.name)
			flags &^= n.v
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return out
}

// HashType is a CodeDirectory hashType.
type HashType uint8

// Hash types.
const (
	HashSHA1            HashType = 1
	HashSHA256          HashType = 2
	HashSHA256Truncated HashType = 3
	HashSHA384          HashType = 4
)

// Hash returns the crypto.Hash that computes this hash type (before truncation).
func (h HashType) Hash() (crypto.Hash, bool) {
	switch h {
	case HashSHA1:
		return crypto.SHA1, true
	case HashSHA256, HashSHA256Truncated:
		return crypto.SHA256, true
	case HashSHA384:
		return crypto.SHA384, true
	}
	return 0, false
}

// Size is the length of this hash type's digests as stored in a CodeDirectory.
func (h HashType) Size() int {
	switch h {
	case HashSHA1, HashSHA256Truncated:
		return 20
	case HashSHA256:
		return 32
	case HashSHA384:
		return 48
	}
	return 0
}

// Sum hashes data with this hash type (truncating where the type says so).
func (h HashType) Sum(data []byte) []byte {
	ch, ok := h.Hash()
	if !ok {
		return nil
	}
	d := ch.New()
	d.Write(data)
	return d.Sum(nil)[:h.Size()]
}

func (h HashType) String() string {
	switch h {
	case HashSHA1:
		return "sha1"
	case HashSHA256:
		return "sha256"
	case HashSHA256Truncated:
		return "sha256-truncated"
	case HashSHA384:
		return "sha384"
	}
	return fmt.Sprintf("hashtype(%d)", uint8(h))
}

// ParseHashType parses a --digest value: sha1, sha256, sha384.
func ParseHashType(s string) (HashType, error) {
	switch strings.ToLower(s) {
	case "sha1", "sha-1":
		return HashSHA1, nil
	case "sha256", "sha-256":
		return HashSHA256, nil
	case "sha384", "sha-384":
		return HashSHA384, nil
	}
	return 0, fmt.Errorf("unsupported digest %q (valid: sha1, sha256, sha384)", s)
}

// Wrap returns a blob: magic, length, payload.
func Wrap(magic uint32, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, magic)
	binary.BigEndian.PutUint32(b[4:], uint32(8+len(payload)))
	return append(b, payload...)
}

// ErrMalformed is wrapped by every decoding error in this package.
var ErrMalformed = errors.New("malformed signature data")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Unwrap checks a blob's header against want and returns its payload. The blob's
// length field must fit in data; bytes after it are ignored.
func Unwrap(data []byte, want uint32) ([]byte, error) {
	if len(data) < 8 {
		return nil, malformed("%s blob: %d bytes is shorter than a blob header", MagicName(want), len(data))
	}
	if m := binary.BigEndian.Uint32(data); m != want {
		return nil, malformed("expected a %s blob (%#08x), found magic %#08x", MagicName(want), want, m)
	}
	n := binary.BigEndian.Uint32(data[4:])
	if n < 8 || uint64(n) > uint64(len(data)) {
		return nil, malformed("%s blob length %d outside 8..%d", MagicName(want), n, len(data))
	}
	return data[8:n], nil
}

// Entry is one blob in a SuperBlob.
type Entry struct {
	Slot Slot
	// Offset is the blob's offset within the SuperBlob (set by Parse).
	Offset uint32
	// Data is the complete blob, header included.
	Data []byte
}

// Magic returns the entry's blob magic.
func (e Entry) Magic() uint32 { return binary.BigEndian.Uint32(e.Data) }

// SuperBlob is a parsed embedded-signature index.
type SuperBlob struct {
	Magic   uint32
	Length  uint32
	Entries []Entry
}

// maxSuperBlobEntries bounds the index: real signatures have under 16 entries.
const maxSuperBlobEntries = 256

// ParseSuperBlob parses an embedded signature SuperBlob. data may carry trailing
// zero padding (the LC_CODE_SIGNATURE reservation); only Length bytes are used.
func ParseSuperBlob(data []byte) (*SuperBlob, error) {
	if len(data) < 12 {
		return nil, malformed("SuperBlob: %d bytes is shorter than its header", len(data))
	}
	magic := binary.BigEndian.Uint32(data)
	switch magic {
	case MagicEmbeddedSignature, MagicDetachedSignature, MagicEmbeddedOld:
	default:
		return nil, malformed("SuperBlob magic %#08x (want %#08x)", magic, uint32(MagicEmbeddedSignature))
	}
	length := binary.BigEndian.Uint32(data[4:])
	count := binary.BigEndian.Uint32(data[8:])
	if length < 12 || uint64(length) > uint64(len(data)) {
		return nil, malformed("SuperBlob length %d outside 12..%d", length, len(data))
	}
	if count > maxSuperBlobEntries || 12+8*uint64(count) > uint64(length) {
		return nil, malformed("SuperBlob claims %d entries, which do not fit in %d bytes", count, length)
	}
	sb := &SuperBlob{Magic: magic, Length: length}
	data = data[:length]
	seen := map[Slot]bool{}
	for i := uint32(0); i < count; i++ {
		slot := Slot(binary.BigEndian.Uint32(data[12+8*i:]))
		off := binary.BigEndian.Uint32(data[16+8*i:])
		if seen[slot] {
			return nil, malformed("SuperBlob lists slot %s twice", slot)
		}
		seen[slot] = true
		if uint64(off)+8 > uint64(length) {
			return nil, malformed("SuperBlob entry %d (%s) at offset %d lies outside the %d-byte SuperBlob", i, slot, off, length)
		}
		n := binary.BigEndian.Uint32(data[off+4:])
		if n < 8 || uint64(off)+uint64(n) > uint64(length) {
			return nil, malformed("blob in slot %s (offset %d) has length %d, past the end of the SuperBlob", slot, off, n)
		}
		sb.Entries = append(sb.Entries, Entry{Slot: slot, Offset: off, Data: data[off : off+n]})
	}
	return sb, nil
}

// Find returns the blob in a slot.
func (sb *SuperBlob) Find(slot Slot) ([]byte, bool) {
	for _, e := range sb.Entries {
		if e.Slot == slot {
			return e.Data, true
		}
	}
	return nil, false
}

// BuildSuperBlob serializes an embedded signature SuperBlob. Entries are ordered
// by ascending slot and placed back to back with no padding, as both Apple and
// rcodesign do; Offset fields in the input are ignored.
func BuildSuperBlob(entries []Entry) []byte {
	es := append([]Entry(nil), entries...)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Slot < es[j].Slot })
	size := 12 + 8*len(es)
	for _, e := range es {
		size += len(e.Data)
	}
	out := make([]byte, 12+8*len(es), size)
	binary.BigEndian.PutUint32(out, MagicEmbeddedSignature)
	binary.BigEndian.PutUint32(out[4:], uint32(size))
	binary.BigEndian.PutUint32(out[8:], uint32(len(es)))
	off := 12 + 8*len(es)
	for i, e := range es {
		binary.BigEndian.PutUint32(out[12+8*i:], uint32(e.Slot))
		binary.BigEndian.PutUint32(out[16+8*i:], uint32(off))
		off += len(e.Data)
		out = append(out, e.Data...)
	}
	return out
}
