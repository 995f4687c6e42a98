// Package cbor reads and writes the handful of CBOR (RFC 8949) shapes that appear in
// rcodesign's session join strings: arrays, byte and text strings, small unsigned
// integers and null.
//
// It exists instead of a general CBOR library because the join string is not one
// well-formed CBOR item (rcodesign appends two stray break bytes) and because the
// decoder must mirror exactly what rcodesign's minicbor-based decoder accepts: a
// general-purpose library would be both too strict (trailing bytes) and too lenient
// (tags, maps, indefinite strings where rcodesign rejects them). Everything is bounded
// by the input length; nothing here allocates more than the input holds.
package cbor

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Major types used by the join strings.
const (
	MajorUint   = 0
	MajorNegInt = 1
	MajorBytes  = 2
	MajorText   = 3
	MajorArray  = 4
	MajorMap    = 5
	MajorTag    = 6
	MajorSimple = 7
)

const (
	simpleNull = 0xf6
	breakByte  = 0xff
	// maxDepth bounds nesting when skipping unknown items, so hostile input cannot
	// exhaust the stack.
	maxDepth = 16
)

// ErrTruncated means the input ended inside an item.
var ErrTruncated = errors.New("truncated CBOR")

// Writer appends definite-length, minimally encoded CBOR items to a buffer,
// byte-for-byte what minicbor emits.
type Writer struct{ buf []byte }

// Bytes returns the encoded items.
func (w *Writer) Bytes() []byte { return w.buf }

func (w *Writer) head(major byte, n uint64) {
	m := major << 5
	switch {
	case n < 24:
		w.buf = append(w.buf, m|byte(n))
	case n <= 0xff:
		w.buf = append(w.buf, m|24, byte(n))
	case n <= 0xffff:
		w.buf = append(w.buf, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		w.buf = append(w.buf, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		w.buf = append(w.buf, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// Array starts a definite array of n items; the caller writes the items next.
func (w *Writer) Array(n int) { w.head(MajorArray, uint64(n)) }

// ByteString writes a definite byte string.
func (w *Writer) ByteString(b []byte) {
	w.head(MajorBytes, uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// Text writes a definite text string.
func (w *Writer) Text(s string) { w.head(MajorText, uint64(len(s))); w.buf = append(w.buf, s...) }

// Uint writes an unsigned integer.
func (w *Writer) Uint(v uint64) { w.head(MajorUint, v) }

// Null writes the simple value null (0xf6).
func (w *Writer) Null() { w.buf = append(w.buf, simpleNull) }

// UintArray writes b as a definite array of unsigned integers, one per byte. This is
// how minicbor encodes a Rust Vec<u8> that lacks the `bytes` attribute, and therefore
// how rcodesign's publickey0 plaintext carries its challenge and X25519 key.
func (w *Writer) UintArray(b []byte) {
	w.Array(len(b))
	for _, v := range b {
		w.Uint(uint64(v))
	}
}

// Break appends the 0xff break byte. rcodesign's encoder emits one after each of the
// two definite arrays of a join string; we reproduce it for byte-identical output.
func (w *Writer) Break() { w.buf = append(w.buf, breakByte) }

// Reader decodes items from a byte slice, front to back.
type Reader struct {
	b   []byte
	off int
}

// NewReader returns a Reader over b. b is not copied; returned strings and slices
// are copies, so they stay valid if the caller reuses b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int { return r.off }

// Rest returns the bytes not consumed yet.
func (r *Reader) Rest() []byte { return r.b[r.off:] }

// peek returns the next initial byte without consuming it.
func (r *Reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrTruncated
	}
	return r.b[r.off], nil
}

// Major returns the major type of the next item without consuming it.
func (r *Reader) Major() (byte, error) {
	c, err := r.peek()
	return c >> 5, err
}

// AtNull reports whether the next item is null.
func (r *Reader) AtNull() bool { c, err := r.peek(); return err == nil && c == simpleNull }

// AtBreak reports whether the next byte is a break (0xff).
func (r *Reader) AtBreak() bool { c, err := r.peek(); return err == nil && c == breakByte }

// Skip1 consumes one byte (a null or a break the caller has just checked for).
func (r *Reader) Skip1() { r.off++ }

// head decodes an initial byte and its argument. For ai == 31 (indefinite length)
// it returns indefinite == true and n == 0. Non-minimal argument encodings are
// accepted, as minicbor's decoder accepts them.
func (r *Reader) head() (major byte, n uint64, indefinite bool, err error) {
	c, err := r.peek()
	if err != nil {
		return 0, 0, false, err
	}
	r.off++
	major, ai := c>>5, c&0x1f
	var size int
	switch {
	case ai < 24:
		return major, uint64(ai), false, nil
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	case ai == 31:
		if major == MajorUint || major == MajorNegInt || major == MajorTag {
			return 0, 0, false, fmt.Errorf("invalid CBOR initial byte 0x%02x", c)
		}
		return major, 0, true, nil
	default:
		return 0, 0, false, fmt.Errorf("invalid CBOR initial byte 0x%02x", c)
	}
	if len(r.b)-r.off < size {
		return 0, 0, false, ErrTruncated
	}
	for _, v := range r.b[r.off : r.off+size] {
		n = n<<8 | uint64(v)
	}
	r.off += size
	return major, n, false, nil
}

// expect decodes a head and checks its major type.
func (r *Reader) expect(want byte, what string) (n uint64, indefinite bool, err error) {
	start := r.off
	major, n, indefinite, err := r.head()
	if err != nil {
		return 0, false, err
	}
	if major != want {
		r.off = start
		return 0, false, fmt.Errorf("expected %s, found %s", what, majorName(major))
	}
	return n, indefinite, nil
}

// ArrayHeader decodes an array head. indefinite arrays return (0, true).
func (r *Reader) ArrayHeader() (n uint64, indefinite bool, err error) {
	return r.expect(MajorArray, "array")
}

// DefiniteArray decodes the head of a definite array holding exactly n items.
func (r *Reader) DefiniteArray(n uint64) error {
	got, indefinite, err := r.ArrayHeader()
	if err != nil {
		return err
	}
	if indefinite {
		return errors.New("indefinite-length array not allowed here")
	}
	if got != n {
		return fmt.Errorf("array has %d items, want %d", got, n)
	}
	return nil
}

// str decodes a definite string of major type m whose length is at most max.
func (r *Reader) str(m byte, what string, max int) ([]byte, error) {
	n, indefinite, err := r.expect(m, what)
	if err != nil {
		return nil, err
	}
	if indefinite {
		return nil, fmt.Errorf("indefinite-length %s not allowed", what)
	}
	if n > uint64(len(r.b)-r.off) {
		return nil, ErrTruncated
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	out := make([]byte, n)
	copy(out, r.b[r.off:])
	r.off += int(n)
	return out, nil
}

// ByteString decodes a definite byte string of at most max bytes.
func (r *Reader) ByteString(max int) ([]byte, error) { return r.str(MajorBytes, "byte string", max) }

// Text decodes a definite, valid UTF-8 text string of at most max bytes.
func (r *Reader) Text(max int) (string, error) {
	b, err := r.str(MajorText, "text string", max)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("text string is not valid UTF-8")
	}
	return string(b), nil
}

// Uint decodes an unsigned integer.
func (r *Reader) Uint() (uint64, error) {
	n, _, err := r.expect(MajorUint, "unsigned integer")
	return n, err
}

// ByteArray decodes what minicbor accepts for a Rust Vec<u8>: a definite or
// indefinite array of unsigned integers each at most 255. For leniency it also
// accepts a definite byte string. At most max elements are accepted.
func (r *Reader) ByteArray(max int) ([]byte, error) {
	if m, err := r.Major(); err != nil {
		return nil, err
	} else if m == MajorBytes {
		return r.ByteString(max)
	}
	n, indefinite, err := r.ArrayHeader()
	if err != nil {
		return nil, err
	}
	if !indefinite && n > uint64(max) {
		return nil, fmt.Errorf("array of %d items exceeds the limit of %d", n, max)
	}
	var out []byte
	for i := uint64(0); indefinite || i < n; i++ {
		if indefinite && r.AtBreak() {
			r.Skip1()
			break
		}
		if len(out) == max {
			return nil, fmt.Errorf("array exceeds the limit of %d items", max)
		}
		v, err := r.Uint()
		if err != nil {
			return nil, fmt.Errorf("array item %d: %w", i, err)
		}
		if v > 0xff {
			return nil, fmt.Errorf("array item %d: %d does not fit in a byte", i, v)
		}
		out = append(out, byte(v))
	}
	return out, nil
}

// Skip consumes one complete item of any type, bounded in nesting depth.
func (r *Reader) Skip() error { return r.skip(0) }

func (r *Reader) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("CBOR nested too deeply")
	}
	c, err := r.peek()
	if err != nil {
		return err
	}
	if c == breakByte {
		return errors.New("unexpected CBOR break")
	}
	major, n, indefinite, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case MajorUint, MajorNegInt, MajorSimple:
		// The head already held the whole item (simple values and floats carry
		// their payload in the argument bytes).
		return nil
	case MajorTag:
		return r.skip(depth + 1)
	case MajorBytes, MajorText:
		if indefinite {
			for !r.AtBreak() {
				m, err := r.Major()
				if err != nil {
					return err
				}
				if m != major {
					return errors.New("invalid chunk in indefinite-length string")
				}
				if err := r.skip(depth + 1); err != nil {
					return err
				}
			}
			r.Skip1()
			return nil
		}
		if n > uint64(len(r.b)-r.off) {
			return ErrTruncated
		}
		r.off += int(n)
		return nil
	case MajorArray, MajorMap:
		if indefinite {
			for !r.AtBreak() {
				if err := r.skip(depth + 1); err != nil {
					return err
				}
			}
			r.Skip1()
			return nil
		}
		items := n
		if major == MajorMap {
			if n > uint64(len(r.b)) {
				return ErrTruncated
			}
			items = 2 * n
		}
		// Every item takes at least one byte: refuse counts the input cannot hold
		// before looping over them.
		if items > uint64(len(r.b)-r.off) {
			return ErrTruncated
		}
		for i := uint64(0); i < items; i++ {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown CBOR major type %d", major)
}

func majorName(m byte) string {
	switch m {
	case MajorUint:
		return "unsigned integer"
	case MajorNegInt:
		return "negative integer"
	case MajorBytes:
		return "byte string"
	case MajorText:
		return "text string"
	case MajorArray:
		return "array"
	case MajorMap:
		return "map"
	case MajorTag:
		return "tag"
	default:
		return "simple value"
	}
}
