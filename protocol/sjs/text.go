package sjs

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// PEMLabel is the PEM type of the block form.
const PEMLabel = "SESSION JOIN STRING"

// MaxTextSize caps the text Parse and DecodeText accept: a MaxSize join string in
// base64 with line breaks and a few comment lines fits comfortably.
const MaxTextSize = 2 * MaxSize

// EncodeLine returns the single-line form: URL-safe base64 without padding, exactly
// what rcodesign prints after "remote-sign" and the only one-line form rcodesign's
// signer accepts.
func EncodeLine(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// EncodePEM returns the block form rcodesign prints for long join strings: standard
// padded base64 in 64-column lines, CRLF line ends, no headers.
func EncodePEM(b []byte) string {
	body := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	sb.WriteString("-----BEGIN " + PEMLabel + "-----\r\n")
	for len(body) > 0 {
		n := min(64, len(body))
		sb.WriteString(body[:n])
		sb.WriteString("\r\n")
		body = body[n:]
	}
	sb.WriteString("-----END " + PEMLabel + "-----\r\n")
	return sb.String()
}

// Parse decodes a join string from any text a person is likely to paste (see
// DecodeText) and then its CBOR (see Unmarshal).
func Parse(text string) (JoinString, error) {
	b, err := DecodeText(text)
	if err != nil {
		return nil, err
	}
	return Unmarshal(b)
}

// DecodeText extracts the binary join string from text, leniently:
//
//   - lines whose first non-blank character is '#' are comments and ignored
//     (rcodesign's --editor template starts with two of them);
//   - if a "-----BEGIN " marker is present, the first PEM block is used; its label
//     must be SESSION JOIN STRING; RFC 1421 header lines are skipped; the body may
//     be wrapped at any width with LF or CRLF;
//   - otherwise the text is the single-line form, possibly wrapped by a terminal or
//     preceded by the command it was printed in ("rcodesign remote-sign gm…"):
//     the join string starts at the first word beginning with "gm" (the base64 of
//     a join string's first two bytes; "gn" for long scheme names) and runs over
//     the following words that are made of base64 characters only, up to a
//     blank line;
//   - in both forms either base64 alphabet is accepted, with or without padding.
//
// It never panics and rejects input over MaxTextSize.
func DecodeText(text string) ([]byte, error) {
	if len(text) > MaxTextSize {
		return nil, fmt.Errorf("%w: %d bytes of text exceeds the %d-byte limit", ErrInvalid, len(text), MaxTextSize)
	}
	var kept []string
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	s := strings.Join(kept, "\n")
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty input", ErrInvalid)
	}
	if i := strings.Index(s, "-----BEGIN "); i >= 0 {
		return decodePEM(s[i:])
	}
	// Collect base64 words from the first one that starts like a join string up
	// to a blank line or a word that is not base64.
	var sb strings.Builder
	started, first := false, ""
scan:
	for line := range strings.SplitSeq(s, "\n") {
		words := strings.Fields(line)
		if started && len(words) == 0 {
			break
		}
		for _, w := range words {
			if !started {
				if !hasJoinStringPrefix(w) {
					continue
				}
				started, first = true, w
			}
			if !isBase64Word(w) {
				break scan
			}
			sb.WriteString(w)
		}
	}
	if !started {
		return nil, fmt.Errorf(`%w: no join string found (expected base64 starting with "gm", or a -----BEGIN %s----- block)`, ErrInvalid, PEMLabel)
	}
	if sb.Len() == 0 {
		return nil, fmt.Errorf("%w: no join string found: %q is not base64", ErrInvalid, shorten(first))
	}
	return decodeBase64(sb.String())
}

func decodePEM(s string) ([]byte, error) {
	rest := strings.TrimPrefix(s, "-----BEGIN ")
	j := strings.Index(rest, "-----")
	if j < 0 || strings.ContainsAny(rest[:j], "\r\n") {
		return nil, fmt.Errorf("%w: malformed PEM BEGIN line", ErrInvalid)
	}
	if label := rest[:j]; label != PEMLabel {
		return nil, fmt.Errorf("%w: PEM block is a %q, not a %q", ErrInvalid, shorten(label), PEMLabel)
	}
	body := rest[j+len("-----"):]
	end := strings.Index(body, "-----END "+PEMLabel+"-----")
	if end < 0 {
		return nil, fmt.Errorf("%w: PEM block has no END line (incomplete paste?)", ErrInvalid)
	}
	var sb strings.Builder
	for line := range strings.SplitSeq(body[:end], "\n") {
		// Base64 never contains ':', so such lines are RFC 1421 headers
		// ("Proc-Type: …"), which the pem crate allows and ignores.
		if !strings.Contains(line, ":") {
			sb.WriteString(line)
		}
	}
	return decodeBase64(sb.String())
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, ignoring
// whitespace.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	s = strings.TrimRight(s, "=")
	if len(s)/4*3 > MaxSize {
		return nil, fmt.Errorf("%w: longer than the %d-byte limit", ErrInvalid, MaxSize)
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case '-':
			return '+'
		case '_':
			return '/'
		}
		return r
	}, s)
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 (%v)", ErrInvalid, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	return b, nil
}

// hasJoinStringPrefix reports whether w starts like the base64 of a join string:
// 0x82 (array of 2) then a text-string head 0x6_ or 0x7_ encode as "gm" or "gn" in
// both alphabets ("gm" for every scheme name shorter than 16 bytes).
func hasJoinStringPrefix(w string) bool {
	return strings.HasPrefix(w, "gm") || strings.HasPrefix(w, "gn")
}

func isBase64Word(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '+' || c == '/' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}

// shorten keeps error messages one short line when echoing hostile input.
func shorten(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
