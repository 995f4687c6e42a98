package macho

import (
	"errors"
	"fmt"
	"io"
)

// SignatureAlign is the alignment of the embedded signature's file offset.
const SignatureAlign = 16

// linkeditVMAlign is the granularity codesign and rcodesign round __LINKEDIT's
// vmsize up to after embedding a signature.
const linkeditVMAlign = 16384

// Linkedit returns the __LINKEDIT segment, checking the layout rules every
// signer relies on: it exists and no other segment's file data lies after it.
func (f *File) Linkedit() (*Segment, error) {
	le := f.Segment("__LINKEDIT")
	if le == nil {
		return nil, errors.New("cannot sign: the Mach-O has no __LINKEDIT segment")
	}
	for i := range f.Segments {
		s := &f.Segments[i]
		if s == le || s.FileSize == 0 {
			continue
		}
		if s.FileOff+s.FileSize > le.FileOff {
			return nil, fmt.Errorf("cannot sign: segment %s (file offset %#x) lies after __LINKEDIT (%#x); __LINKEDIT must be the last segment", s.Name, s.FileOff, le.FileOff)
		}
	}
	return le, nil
}

// SignatureRange returns the file range of the existing embedded signature
// (offset, size), or ok=false when the file is unsigned or the command is empty.
func (f *File) SignatureRange() (off, size int64, ok bool) {
	if f.CodeSignature == nil || f.CodeSignature.DataSize == 0 {
		return 0, 0, false
	}
	return int64(f.CodeSignature.DataOff), int64(f.CodeSignature.DataSize), true
}

// CodeLimit is the file offset where the code pages covered by a CodeDirectory
// end: the start of the existing signature, or the end of __LINKEDIT.
func (f *File) CodeLimit() (int64, error) {
	le, err := f.Linkedit()
	if err != nil {
		return 0, err
	}
	if f.CodeSignature != nil {
		return int64(f.CodeSignature.DataOff), nil
	}
	return int64(le.FileOff + le.FileSize), nil
}

// CheckSignable verifies that a signature can be embedded (or replaced) without
// moving any data other than __LINKEDIT's tail. r is needed to check that the gap
// for a new LC_CODE_SIGNATURE is really empty.
func (f *File) CheckSignable(r io.ReaderAt) error {
	le, err := f.Linkedit()
	if err != nil {
		return err
	}
	leEnd := le.FileOff + le.FileSize
	if int64(leEnd) != f.Size {
		return fmt.Errorf("cannot sign: %d bytes follow the end of __LINKEDIT (at %#x); refusing to drop them", f.Size-int64(leEnd), leEnd)
	}
	if cs := f.CodeSignature; cs != nil {
		if uint64(cs.DataOff) < le.FileOff {
			return fmt.Errorf("cannot sign: the existing signature (offset %#x) starts before __LINKEDIT (%#x)", cs.DataOff, le.FileOff)
		}
		if uint64(cs.DataOff)+uint64(cs.DataSize) != leEnd {
			return fmt.Errorf("cannot sign: the existing signature ends at %#x but __LINKEDIT ends at %#x; data after the signature is not supported", uint64(cs.DataOff)+uint64(cs.DataSize), leEnd)
		}
		return nil
	}
	// A new LC_CODE_SIGNATURE goes right after the last load command, in the gap
	// before the first section's data.
	cmdEnd := int64(f.HeaderSize) + int64(f.SizeOfCmds)
	first := int64(-1)
	for _, s := range f.Segments {
		for _, sec := range s.Sections {
			if sec.Offset == 0 || sec.zeroFill() {
				continue
			}
			if first < 0 || int64(sec.Offset) < first {
				first = int64(sec.Offset)
			}
		}
		if s.FileOff > 0 && s.FileSize > 0 && (first < 0 || int64(s.FileOff) < first) {
			first = int64(s.FileOff)
		}
	}
	if first < 0 {
		first = int64(le.FileOff)
	}
	if first-cmdEnd < linkeditDataSize {
		return fmt.Errorf("cannot sign: no room for LC_CODE_SIGNATURE: the load commands end at %#x and data starts at %#x (need %d free bytes)", cmdEnd, first, linkeditDataSize)
	}
	var gap [linkeditDataSize]byte
	if _, err := r.ReadAt(gap[:], cmdEnd); err != nil {
		return fmt.Errorf("reading the gap after the load commands: %w", err)
	}
	for _, b := range gap {
		if b != 0 {
			return fmt.Errorf("cannot sign: the %d bytes after the load commands (at %#x) are not free (not zero)", linkeditDataSize, cmdEnd)
		}
	}
	return nil
}

// Plan describes a signed copy of a thin Mach-O:
//
//	[0, len(Header))                 Header: the patched header and load commands
//	[len(Header), CopyEnd)           the input's bytes at the same offsets
//	[CopyEnd, SignatureOffset)       zero padding (16-byte alignment)
//	[SignatureOffset, Size)          the signature area, SignatureSize bytes
//
// Because the header already carries the final LC_CODE_SIGNATURE and __LINKEDIT
// sizes, the code pages [0, SignatureOffset) are final before the signature is
// built: that is what makes one-pass hashing possible.
type Plan struct {
	Header          []byte
	CopyEnd         int64
	SignatureOffset int64
	SignatureSize   int64
	Size            int64
}

// CodeLimit is the end of the hashed code, which is where the signature starts.
func (p *Plan) CodeLimit() int64 { return p.SignatureOffset }

// PlanSignature computes the layout of f re-signed with a signature area of
// sigSize bytes, following rcodesign's create_macho_with_signature: the old
// signature (if any) is dropped, the new one starts 16-byte aligned after the
// rest of __LINKEDIT, LC_CODE_SIGNATURE is updated or appended, and __LINKEDIT's
// filesize/vmsize are updated. Call CheckSignable first.
func (f *File) PlanSignature(sigSize int64) (*Plan, error) {
	if sigSize <= 0 || sigSize > 1<<31 {
		return nil, fmt.Errorf("invalid signature size %d", sigSize)
	}
	le, err := f.Linkedit()
	if err != nil {
		return nil, err
	}
	copyEnd, err := f.CodeLimit()
	if err != nil {
		return nil, err
	}
	sigOff := (copyEnd + SignatureAlign - 1) / SignatureAlign * SignatureAlign
	newLinkeditSize := uint64(sigOff) - le.FileOff + uint64(sigSize)
	newVMSize := (newLinkeditSize + linkeditVMAlign - 1) / linkeditVMAlign * linkeditVMAlign
	if sigOff+sigSize > 1<<32-1 && !f.Is64 {
		return nil, errors.New("cannot sign: the signed 32-bit Mach-O would exceed 4 GiB")
	}

	hdr := append([]byte(nil), f.raw...)
	bo := f.ByteOrder
	if cs := f.CodeSignature; cs != nil {
		bo.PutUint32(hdr[cs.CmdOffset+8:], uint32(sigOff))
		bo.PutUint32(hdr[cs.CmdOffset+12:], uint32(sigSize))
	} else {
		cmd := make([]byte, linkeditDataSize)
		bo.PutUint32(cmd[0:], LoadCodeSignature)
		bo.PutUint32(cmd[4:], linkeditDataSize)
		bo.PutUint32(cmd[8:], uint32(sigOff))
		bo.PutUint32(cmd[12:], uint32(sigSize))
		hdr = append(hdr, cmd...)
		bo.PutUint32(hdr[16:], f.NCmds+1)
		bo.PutUint32(hdr[20:], f.SizeOfCmds+linkeditDataSize)
	}
	o := le.CmdOffset
	if f.Is64 {
		bo.PutUint64(hdr[o+32:], newVMSize)
		bo.PutUint64(hdr[o+48:], newLinkeditSize)
	} else {
		if newLinkeditSize > 1<<32-1 || newVMSize > 1<<32-1 {
			return nil, errors.New("cannot sign: __LINKEDIT would exceed 4 GiB in a 32-bit Mach-O")
		}
		bo.PutUint32(hdr[o+28:], uint32(newVMSize))
		bo.PutUint32(hdr[o+36:], uint32(newLinkeditSize))
	}
	if int64(len(hdr)) > copyEnd {
		return nil, fmt.Errorf("cannot sign: the load commands (%d bytes) overlap the signature position %#x", len(hdr), copyEnd)
	}
	return &Plan{
		Header:          hdr,
		CopyEnd:         copyEnd,
		SignatureOffset: sigOff,
		SignatureSize:   sigSize,
		Size:            sigOff + sigSize,
	}, nil
}

// CodeReader returns the bytes [0, p.CodeLimit()) of the planned output, reading
// the unchanged middle from in (the thin Mach-O's bytes, offset 0 = its header).
func (p *Plan) CodeReader(in io.ReaderAt) io.ReaderAt {
	return &codeReader{p: p, in: in}
}

type codeReader struct {
	p  *Plan
	in io.ReaderAt
}

func (c *codeReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	limit := c.p.SignatureOffset
	if off >= limit {
		return 0, io.EOF
	}
	want := len(b)
	if int64(want) > limit-off {
		b = b[:limit-off]
	}
	n := 0
	// header
	if off < int64(len(c.p.Header)) {
		k := copy(b, c.p.Header[off:])
		n += k
		off += int64(k)
		b = b[k:]
	}
	// middle from the input
	if len(b) > 0 && off < c.p.CopyEnd {
		m := int64(len(b))
		if m > c.p.CopyEnd-off {
			m = c.p.CopyEnd - off
		}
		k, err := c.in.ReadAt(b[:m], off)
		n += k
		if k < int(m) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		off += m
		b = b[m:]
	}
	// alignment padding
	for i := range b {
		b[i] = 0
	}
	n += len(b)
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// WriteTo writes the planned file to w: header, copied middle, padding and the
// given signature (which must be exactly SignatureSize bytes).
func (p *Plan) WriteTo(w io.Writer, in io.ReaderAt, signature []byte) (int64, error) {
	if int64(len(signature)) != p.SignatureSize {
		return 0, fmt.Errorf("signature is %d bytes, the plan reserved %d", len(signature), p.SignatureSize)
	}
	n, err := p.WriteBody(w, in)
	if err != nil {
		return n, err
	}
	k, err := w.Write(signature)
	return n + int64(k), err
}

// WriteBody writes everything before the signature: [0, SignatureOffset). It can
// run while the code pages are being hashed, since both only read the input.
func (p *Plan) WriteBody(w io.Writer, in io.ReaderAt) (int64, error) {
	var n int64
	k, err := w.Write(p.Header)
	n += int64(k)
	if err != nil {
		return n, err
	}
	m, err := copyRange(w, in, int64(len(p.Header)), p.CopyEnd)
	n += m
	if err != nil {
		return n, err
	}
	pad := make([]byte, p.SignatureOffset-p.CopyEnd)
	k, err = w.Write(pad)
	return n + int64(k), err
}
