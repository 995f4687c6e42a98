package vpiv

import "errors"

// tlv is one BER-TLV element as the PIV applet uses them: tags of one to three
// bytes (0x7c, 0x5f 0xc1 0x05, 0x7f 0x49) and definite lengths of up to three bytes.
type tlv struct {
	tag   uint32
	value []byte
}

var errMalformedTLV = errors.New("malformed TLV")

// parseTLVs splits b into consecutive TLV elements. Lengths must fit in b; the
// parser never reads past the end and never allocates more than len(b).
func parseTLVs(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		t, rest, err := parseTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		b = rest
	}
	return out, nil
}

func parseTLV(b []byte) (tlv, []byte, error) {
	if len(b) == 0 {
		return tlv{}, nil, errMalformedTLV
	}
	tag := uint32(b[0])
	i := 1
	if b[0]&0x1f == 0x1f { // multi-byte tag: subsequent bytes have b8 set until the last
		for {
			if i >= len(b) || i >= 3 { // PIV tags are at most three bytes
				return tlv{}, nil, errMalformedTLV
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return tlv{}, nil, errMalformedTLV
	}
	l := int(b[i])
	i++
	switch {
	case l < 0x80:
	case l == 0x81 || l == 0x82 || l == 0x83:
		n := l - 0x80
		if i+n > len(b) {
			return tlv{}, nil, errMalformedTLV
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
	default: // indefinite (0x80) or absurdly long
		return tlv{}, nil, errMalformedTLV
	}
	if l > len(b)-i {
		return tlv{}, nil, errMalformedTLV
	}
	return tlv{tag: tag, value: b[i : i+l]}, b[i+l:], nil
}

// find returns the value of the first element with tag and whether it was present.
func find(ts []tlv, tag uint32) ([]byte, bool) {
	for _, t := range ts {
		if t.tag == tag {
			return t.value, true
		}
	}
	return nil, false
}

// appendTLV appends tag, a minimal definite length and value to dst.
func appendTLV(dst []byte, tag uint32, value []byte) []byte {
	switch {
	case tag > 0xffff:
		dst = append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		dst = append(dst, byte(tag>>8), byte(tag))
	default:
		dst = append(dst, byte(tag))
	}
	n := len(value)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, value...)
}
