// Package ber converts the BER that Apple's codesign writes into DER, so the rest of
// the CMS code can use strict DER readers (cryptobyte, crypto/x509).
//
// Apple's code signatures are BER on their outer layers: indefinite lengths (0x80 …
// 00 00) on ContentInfo, SignedData and encapContentInfo. Everything that is hashed or
// signed inside them — certificates, signed attributes, the time-stamp token — is
// already DER, and this conversion leaves such definite-length DER elements
// byte-for-byte unchanged. That property matters: a verifier must check the signature
// over the exact signed-attribute bytes that were signed, never over a re-encoding.
//
// What changes: indefinite lengths become definite, over-long length encodings are
// shortened, and constructed OCTET STRINGs (a BER way of splitting eContent) are
// joined into one primitive OCTET STRING. Nothing else (SET ordering, BOOLEAN values)
// is touched.
package ber

import (
	"errors"
	"fmt"
)

// MaxDepth bounds nesting so hostile input can't exhaust the stack. Apple's CMS with
// its time-stamp token nests about 20 levels deep.
const MaxDepth = 64

// ToDER returns the DER form of a single BER element that makes up all of in.
// Trailing bytes after the element are an error.
func ToDER(in []byte) ([]byte, error) {
	p := parser{in: in}
	out, err := p.element(0)
	if err != nil {
		return nil, err
	}
	if p.off != len(in) {
		return nil, fmt.Errorf("ber: %d trailing bytes after the top-level element", len(in)-p.off)
	}
	return out, nil
}

type parser struct {
	in  []byte
	off int
}

var errTruncated = errors.New("ber: truncated element")

const tagOctetString = 0x04

// element reads one element at p.off and returns its DER encoding.
func (p *parser) element(depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("ber: nesting deeper than %d levels", MaxDepth)
	}
	start := p.off
	if p.off >= len(p.in) {
		return nil, errTruncated
	}
	first := p.in[p.off]
	p.off++
	constructed := first&0x20 != 0
	if first&0x1f == 0x1f {
		// High tag number form: base-128 digits, last one without the top bit.
		// Four digits (tag numbers up to 2^28) is far beyond anything in CMS.
		for i := 0; ; i++ {
			if i == 4 {
				return nil, errors.New("ber: tag number too large")
			}
			if p.off >= len(p.in) {
				return nil, errTruncated
			}
			b := p.in[p.off]
			p.off++
			if i == 0 && b == 0x80 {
				return nil, errors.New("ber: non-minimal tag number encoding")
			}
			if b&0x80 == 0 {
				break
			}
		}
	}
	tag := p.in[start:p.off]

	if p.off >= len(p.in) {
		return nil, errTruncated
	}
	lb := p.in[p.off]
	p.off++
	var content []byte
	switch {
	case lb == 0x80:
		if !constructed {
			return nil, errors.New("ber: indefinite length on a primitive element")
		}
		var body []byte
		for {
			if p.off+2 <= len(p.in) && p.in[p.off] == 0 && p.in[p.off+1] == 0 {
				p.off += 2
				break
			}
			if p.off >= len(p.in) {
				return nil, errors.New("ber: missing end-of-contents after indefinite length")
			}
			child, err := p.element(depth + 1)
			if err != nil {
				return nil, err
			}
			body = append(body, child...)
		}
		content = body
	case lb == 0xff:
		return nil, errors.New("ber: reserved length octet 0xff")
	default:
		n := int(lb)
		if lb&0x80 != 0 {
			k := int(lb & 0x7f)
			if k > 4 {
				return nil, errors.New("ber: length does not fit in 32 bits")
			}
			if p.off+k > len(p.in) {
				return nil, errTruncated
			}
			n = 0
			for _, b := range p.in[p.off : p.off+k] {
				n = n<<8 | int(b)
			}
			p.off += k
		}
		if n < 0 || n > len(p.in)-p.off {
			return nil, errTruncated
		}
		raw := p.in[p.off : p.off+n]
		if !constructed {
			p.off += n
			content = raw
			break
		}
		sub := parser{in: raw}
		var body []byte
		for sub.off < len(raw) {
			child, err := sub.element(depth + 1)
			if err != nil {
				return nil, err
			}
			body = append(body, child...)
		}
		p.off += n
		content = body
	}

	if constructed && len(tag) == 1 && tag[0] == 0x20|tagOctetString {
		// A constructed OCTET STRING: its value is the concatenation of its
		// (already flattened, hence primitive) OCTET STRING segments.
		joined, err := joinOctetSegments(content)
		if err != nil {
			return nil, err
		}
		return encode([]byte{tagOctetString}, joined), nil
	}
	return encode(tag, content), nil
}

// joinOctetSegments concatenates the values of a run of DER primitive OCTET STRINGs.
func joinOctetSegments(b []byte) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		if b[0] != tagOctetString {
			return nil, fmt.Errorf("ber: constructed OCTET STRING holds a 0x%02x element", b[0])
		}
		n, hl, err := derLength(b[1:])
		if err != nil {
			return nil, err
		}
		b = b[1+hl:]
		if n > len(b) {
			return nil, errTruncated
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// derLength decodes a definite length written by encode.
func derLength(b []byte) (n, headerLen int, err error) {
	if len(b) == 0 {
		return 0, 0, errTruncated
	}
	if b[0]&0x80 == 0 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k > 4 || len(b) < 1+k {
		return 0, 0, errTruncated
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, nil
}

// encode writes tag, a minimal definite length and content.
func encode(tag, content []byte) []byte {
	n := len(content)
	out := make([]byte, 0, len(tag)+5+n)
	out = append(out, tag...)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n <= 0xff:
		out = append(out, 0x81, byte(n))
	case n <= 0xffff:
		out = append(out, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		out = append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, content...)
}
