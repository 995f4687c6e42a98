package codesign

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/farsign/farsign/agent/codesign/blob"
)

// PageSize is the code page size of every CodeDirectory farsign writes: 4096,
// even on arm64, as Apple's codesign, rcodesign and the Go linker all do.
const PageSize = 4096

// chunkSize is the unit of work of one hashing goroutine: 1 MiB (256 pages),
// large enough to amortize a pread and small enough to balance across cores.
const chunkSize = 1 << 20

// maxPageSize bounds the page size HashPages accepts (CodeDirectories use 4 KiB,
// sometimes 16 KiB; a huge value from a hostile signature must not turn into a
// huge buffer).
const maxPageSize = 1 << 20

// PageHashes holds the page hashes of one hash type, packed: page i's hash is
// Sums[i*Size : (i+1)*Size].
type PageHashes struct {
	Type blob.HashType
	Size int
	Sums []byte
}

// Page returns page i's hash.
func (p *PageHashes) Page(i int) []byte { return p.Sums[i*p.Size : (i+1)*p.Size] }

// Count is the number of pages.
func (p *PageHashes) Count() int { return len(p.Sums) / p.Size }

// Slices splits the hashes into one slice per page (sharing Sums).
func (p *PageHashes) Slices() [][]byte {
	out := make([][]byte, p.Count())
	for i := range out {
		out[i] = p.Page(i)
	}
	return out
}

// pageCount is the number of pages covering limit bytes (the last may be short).
func pageCount(limit, pageSize int64) int64 {
	if pageSize == 0 {
		if limit == 0 {
			return 0
		}
		return 1
	}
	return (limit + pageSize - 1) / pageSize
}

// HashPages hashes r[0:limit) in pages of pageSize bytes with every given hash
// type, reading the data once. The last page is hashed only up to limit, never
// padded. Work is spread over workers goroutines (0 means GOMAXPROCS), each
// reading 1 MiB chunks with ReadAt, so memory use is a few MiB whatever the size
// of the file.
func HashPages(ctx context.Context, r io.ReaderAt, limit, pageSize int64, types []blob.HashType, workers int) ([]*PageHashes, error) {
	if pageSize < 0 || pageSize > maxPageSize || limit < 0 {
		return nil, fmt.Errorf("invalid page size %d or limit %d", pageSize, limit)
	}
	pages := pageCount(limit, pageSize)
	out := make([]*PageHashes, len(types))
	for i, t := range types {
		if _, ok := t.Hash(); !ok {
			return nil, fmt.Errorf("unsupported hash type %s", t)
		}
		out[i] = &PageHashes{Type: t, Size: t.Size(), Sums: make([]byte, pages*int64(t.Size()))}
	}
	if pages == 0 {
		return out, nil
	}
	if pageSize == 0 {
		// One "page" covering everything: a single streaming pass.
		for _, o := range out {
			h, _ := o.Type.Hash()
			d := h.New()
			if _, err := io.Copy(d, io.NewSectionReader(r, 0, limit)); err != nil {
				return nil, fmt.Errorf("reading code: %w", err)
			}
			copy(o.Sums, d.Sum(nil))
		}
		return out, nil
	}
	chunkPages := max(1, chunkSize/pageSize)
	chunkBytes := chunkPages * pageSize
	chunks := (pages + chunkPages - 1) / chunkPages
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if int64(workers) > chunks {
		workers = int(chunks)
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	fail := func(err error) { once.Do(func() { firstErr = err }) }
	var failed atomic.Bool

	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunkBytes)
			hs := make([]hash.Hash, len(types))
			for i, t := range types {
				h, _ := t.Hash()
				hs[i] = h.New()
			}
			var sum [64]byte
			for !failed.Load() {
				c := next.Add(1) - 1
				if c >= chunks {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					failed.Store(true)
					return
				}
				start := c * chunkBytes
				n := chunkBytes
				if start+n > limit {
					n = limit - start
				}
				// A full read may come with io.EOF at the end of the data.
				if got, err := r.ReadAt(buf[:n], start); int64(got) < n {
					if err == nil || errors.Is(err, io.EOF) {
						err = io.ErrUnexpectedEOF
					}
					fail(fmt.Errorf("reading code at offset %d: %w", start, err))
					failed.Store(true)
					return
				}
				first := c * chunkPages
				for p := int64(0); p*pageSize < n; p++ {
					ps, pe := p*pageSize, (p+1)*pageSize
					if pe > n {
						pe = n
					}
					for i, h := range hs {
						h.Reset()
						h.Write(buf[ps:pe])
						d := h.Sum(sum[:0])
						o := out[i]
						copy(o.Sums[(first+p)*int64(o.Size):], d[:o.Size])
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}
