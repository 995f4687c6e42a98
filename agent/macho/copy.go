package macho

import (
	"fmt"
	"io"
	"os"
)

// copyRange copies in's bytes [start, end) to w.
//
// When both ends are files it uses io.Copy from an *os.File limited reader, which
// Linux turns into copy_file_range: the kernel copies page-cache pages (or shares
// extents on reflink filesystems) and the 150 MB body of a large binary never
// passes through this process's memory. That moves the input's file offset, which
// is harmless: everything else in this module reads with ReadAt.
func copyRange(w io.Writer, in io.ReaderAt, start, end int64) (int64, error) {
	n := end - start
	if n <= 0 {
		return 0, nil
	}
	if wf, ok := w.(*os.File); ok {
		if f, base, ok := backingFile(in); ok {
			if _, err := f.Seek(base+start, io.SeekStart); err == nil {
				m, err := io.Copy(wf, io.LimitReader(f, n))
				if err == nil && m != n {
					err = fmt.Errorf("%w: copied %d of %d bytes", io.ErrUnexpectedEOF, m, n)
				}
				return m, err
			}
		}
	}
	m, err := io.Copy(w, io.NewSectionReader(in, start, n))
	if err == nil && m != n {
		err = fmt.Errorf("%w: copied %d of %d bytes", io.ErrUnexpectedEOF, m, n)
	}
	return m, err
}

// backingFile finds the *os.File behind r (directly or through an io.SectionReader)
// and the offset that r's offset 0 has in it.
func backingFile(r io.ReaderAt) (*os.File, int64, bool) {
	switch v := r.(type) {
	case *os.File:
		return v, 0, true
	case *io.SectionReader:
		outer, off, _ := v.Outer()
		if f, base, ok := backingFile(outer); ok {
			return f, base + off, true
		}
	}
	return nil, 0, false
}
