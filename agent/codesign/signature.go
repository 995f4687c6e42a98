package codesign

import (
	"errors"
	"fmt"
	"io"

	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
)

// MaxSignatureSize bounds the embedded signature read from a binary. A signature
// is about 1% of the code it covers at SHA-256 (32 bytes per 4 KiB page); 256 MiB
// covers a 32 GiB binary with room for two digests.
const MaxSignatureSize = 256 << 20

// ErrUnsigned is returned by ReadSignature for a Mach-O without a signature.
var ErrUnsigned = errors.New("the Mach-O has no code signature")

// Signature is a Mach-O slice's embedded signature, parsed.
type Signature struct {
	// Offset and Reserved are LC_CODE_SIGNATURE's dataoff and datasize.
	Offset   int64
	Reserved int64
	// SuperBlob is the parsed index; its entries' Data alias Raw.
	SuperBlob *blob.SuperBlob
	// Raw is the SuperBlob's bytes (Length of them, without the zero padding).
	Raw []byte
	// CodeDirectories are the primary (slot 0) and alternate CodeDirectories, in
	// slot order.
	CodeDirectories []CodeDirectory
	// Requirements is the parsed RequirementSet, nil if the slot is absent.
	Requirements *requirement.Set
	// CMS is the BlobWrapper payload of slot 0x10000: DER (or BER) CMS, empty for
	// an ad-hoc signature; nil when the slot is absent.
	CMS []byte
	// Entitlements and EntitlementsDER are the payloads of slots 5 and 7, nil if absent.
	Entitlements    []byte
	EntitlementsDER []byte
}

// CodeDirectory is one parsed CodeDirectory with the bytes it was parsed from.
type CodeDirectory struct {
	Slot blob.Slot
	Raw  []byte
	*blob.CodeDirectory
}

// CDHash is the CodeDirectory's digest with its own hash type (full length).
func (cd CodeDirectory) CDHash() []byte {
	h, ok := cd.HashType.Hash()
	if !ok {
		return nil
	}
	d := h.New()
	d.Write(cd.Raw)
	return d.Sum(nil)
}

// Primary returns the slot-0 CodeDirectory.
func (s *Signature) Primary() *CodeDirectory {
	for i := range s.CodeDirectories {
		if s.CodeDirectories[i].Slot == blob.SlotCodeDirectory {
			return &s.CodeDirectories[i]
		}
	}
	return nil
}

// ReadSignature reads and parses a slice's embedded signature. It returns
// ErrUnsigned when there is none, and an error for anything malformed.
func ReadSignature(f *macho.File, r io.ReaderAt) (*Signature, error) {
	off, size, ok := f.SignatureRange()
	if !ok {
		return nil, ErrUnsigned
	}
	if size > MaxSignatureSize {
		return nil, fmt.Errorf("the code signature is %d bytes (limit %d)", size, MaxSignatureSize)
	}
	data := make([]byte, size)
	if _, err := r.ReadAt(data, off); err != nil {
		return nil, fmt.Errorf("reading the code signature: %w", err)
	}
	sb, err := blob.ParseSuperBlob(data)
	if err != nil {
		return nil, err
	}
	s := &Signature{Offset: off, Reserved: size, SuperBlob: sb, Raw: data[:sb.Length]}
	for _, e := range sb.Entries {
		switch {
		case e.Slot.IsCodeDirectory():
			cd, err := blob.ParseCodeDirectory(e.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Slot, err)
			}
			s.CodeDirectories = append(s.CodeDirectories, CodeDirectory{Slot: e.Slot, Raw: e.Data, CodeDirectory: cd})
		case e.Slot == blob.SlotRequirements:
			rs, err := requirement.ParseSet(e.Data)
			if err != nil {
				return nil, fmt.Errorf("requirements: %w", err)
			}
			s.Requirements = rs
		case e.Slot == blob.SlotSignature:
			p, err := blob.Unwrap(e.Data, blob.MagicBlobWrapper)
			if err != nil {
				return nil, fmt.Errorf("CMS signature slot: %w", err)
			}
			s.CMS = p
		case e.Slot == blob.SlotEntitlements:
			p, err := blob.Unwrap(e.Data, blob.MagicEntitlements)
			if err != nil {
				return nil, fmt.Errorf("entitlements slot: %w", err)
			}
			s.Entitlements = p
		case e.Slot == blob.SlotEntitlementsDER:
			p, err := blob.Unwrap(e.Data, blob.MagicEntitlementsDER)
			if err != nil {
				return nil, fmt.Errorf("DER entitlements slot: %w", err)
			}
			s.EntitlementsDER = p
		}
	}
	// Slot order, which is also the SuperBlob's order for well-formed input.
	for i := 1; i < len(s.CodeDirectories); i++ {
		for j := i; j > 0 && s.CodeDirectories[j].Slot < s.CodeDirectories[j-1].Slot; j-- {
			s.CodeDirectories[j], s.CodeDirectories[j-1] = s.CodeDirectories[j-1], s.CodeDirectories[j]
		}
	}
	if s.Primary() == nil {
		return nil, fmt.Errorf("%w: the signature has no CodeDirectory in slot 0", blob.ErrMalformed)
	}
	return s, nil
}
