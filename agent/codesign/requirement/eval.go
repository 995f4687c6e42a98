package requirement

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

// Context is what a requirement is evaluated against.
type Context struct {
	// Identifier is the code's signing identifier.
	Identifier string
	// Chain is the signer's certificate chain, leaf first and root last. It is
	// empty for ad-hoc code, which no certificate requirement can match.
	Chain []*x509.Certificate
	// IsAppleRoot reports whether a certificate is one of Apple's roots.
	IsAppleRoot func(*x509.Certificate) bool
	// CDHashes are the code's cdhashes (any length; compared by prefix).
	CDHashes [][]byte
}

// ErrUnsupported is returned for requirement clauses this evaluator cannot
// decide offline (info.plist and entitlement tests, notarization, named anchors).
var ErrUnsupported = errors.New("cannot be evaluated here")

// Eval evaluates e. A false result comes with the clause that failed, so
// verification can say precisely why code does not satisfy its requirement.
func Eval(e *Expr, c *Context) (bool, string, error) {
	switch e.Op {
	case OpTrue:
		return true, "", nil
	case OpFalse:
		return false, "never", nil
	case OpAnd:
		ok, why, err := Eval(e.A, c)
		if err != nil || !ok {
			return ok, why, err
		}
		return Eval(e.B, c)
	case OpOr:
		ok, whyA, errA := Eval(e.A, c)
		if errA == nil && ok {
			return true, "", nil
		}
		ok, whyB, errB := Eval(e.B, c)
		if errB == nil && ok {
			return true, "", nil
		}
		if errA != nil {
			return false, "", errA
		}
		if errB != nil {
			return false, "", errB
		}
		return false, whyA + "; " + whyB, nil
	case OpNot:
		ok, _, err := Eval(e.A, c)
		if err != nil {
			return false, "", err
		}
		if ok {
			return false, e.String(), nil
		}
		return true, "", nil
	case OpIdent:
		if c.Identifier == e.Str {
			return true, "", nil
		}
		return false, fmt.Sprintf("%s (the identifier is %q)", e, c.Identifier), nil
	case OpCDHash:
		for _, h := range c.CDHashes {
			if len(h) >= len(e.Data) && bytes.Equal(h[:len(e.Data)], e.Data) {
				return true, "", nil
			}
		}
		return false, e.String(), nil
	case OpAppleGenericAnchor:
		if len(c.Chain) > 0 && c.IsAppleRoot != nil && c.IsAppleRoot(c.Chain[len(c.Chain)-1]) {
			return true, "", nil
		}
		return false, "anchor apple generic (the chain does not end at an Apple root)", nil
	case OpAnchorHash:
		cert, ok := c.cert(e.Slot)
		if !ok {
			return false, fmt.Sprintf("%s (no certificate at that position)", e), nil
		}
		sum := sha1.Sum(cert.Raw)
		if bytes.Equal(sum[:], e.Data) {
			return true, "", nil
		}
		return false, fmt.Sprintf("%s (that certificate's SHA-1 is %x)", e, sum), nil
	case OpCertGeneric:
		cert, ok := c.cert(e.Slot)
		if !ok {
			return false, fmt.Sprintf("%s (no certificate at that position)", e), nil
		}
		oid, err := decodeOID(e.Data)
		if err != nil {
			return false, "", err
		}
		var val []byte
		found := false
		for _, ext := range cert.Extensions {
			if ext.Id.Equal(oid) {
				found, val = true, ext.Value
				break
			}
		}
		return matchResult(e, found, val)
	case OpCertField:
		cert, ok := c.cert(e.Slot)
		if !ok {
			return false, fmt.Sprintf("%s (no certificate at that position)", e), nil
		}
		vals, err := certField(cert, e.Str)
		if err != nil {
			return false, "", err
		}
		if e.Match.Op == MatchAbsent {
			if len(vals) == 0 {
				return true, "", nil
			}
			return false, e.String(), nil
		}
		for _, v := range vals {
			if ok, _, _ := matchResult(e, true, []byte(v)); ok {
				return true, "", nil
			}
		}
		if len(vals) == 0 {
			return false, fmt.Sprintf("%s (the certificate has no %s)", e, e.Str), nil
		}
		return false, fmt.Sprintf("%s (it is %q)", e, strings.Join(vals, ", ")), nil
	}
	return false, "", fmt.Errorf("%s: %w", e, ErrUnsupported)
}

func (c *Context) cert(slot int32) (*x509.Certificate, bool) {
	n := int32(len(c.Chain))
	switch {
	case n == 0:
		return nil, false
	case slot == SlotRoot:
		return c.Chain[n-1], true
	case slot >= 0 && slot < n:
		return c.Chain[slot], true
	case slot < 0 && n+slot >= 0:
		return c.Chain[n+slot], true
	}
	return nil, false
}

func matchResult(e *Expr, present bool, val []byte) (bool, string, error) {
	m := e.Match
	switch m.Op {
	case MatchExists:
		if present {
			return true, "", nil
		}
		return false, fmt.Sprintf("%s (absent)", e), nil
	case MatchAbsent:
		if !present {
			return true, "", nil
		}
		return false, e.String(), nil
	}
	if !present {
		return false, fmt.Sprintf("%s (absent)", e), nil
	}
	var ok bool
	switch m.Op {
	case MatchEqual:
		ok = bytes.Equal(val, m.Value)
	case MatchContains:
		ok = bytes.Contains(val, m.Value)
	case MatchBeginsWith:
		ok = bytes.HasPrefix(val, m.Value)
	case MatchEndsWith:
		ok = bytes.HasSuffix(val, m.Value)
	case MatchLessThan:
		ok = bytes.Compare(val, m.Value) < 0
	case MatchGreaterThan:
		ok = bytes.Compare(val, m.Value) > 0
	case MatchLessEqual:
		ok = bytes.Compare(val, m.Value) <= 0
	case MatchGreaterEqual:
		ok = bytes.Compare(val, m.Value) >= 0
	default:
		return false, "", fmt.Errorf("%s: %w", e, ErrUnsupported)
	}
	if ok {
		return true, "", nil
	}
	return false, e.String(), nil
}

// certField returns the values of a named certificate field such as
// "subject.OU" or "issuer.CN".
func certField(c *x509.Certificate, field string) ([]string, error) {
	part, attr, ok := strings.Cut(field, ".")
	if !ok {
		return nil, fmt.Errorf("certificate field %q: %w", field, ErrUnsupported)
	}
	var name = c.Subject
	switch part {
	case "subject":
	case "issuer":
		name = c.Issuer
	default:
		return nil, fmt.Errorf("certificate field %q: %w", field, ErrUnsupported)
	}
	switch attr {
	case "CN":
		if name.CommonName == "" {
			return nil, nil
		}
		return []string{name.CommonName}, nil
	case "OU":
		return name.OrganizationalUnit, nil
	case "O":
		return name.Organization, nil
	case "C":
		return name.Country, nil
	case "L":
		return name.Locality, nil
	case "ST":
		return name.Province, nil
	case "STREET":
		return name.StreetAddress, nil
	}
	return nil, fmt.Errorf("certificate field %q: %w", field, ErrUnsupported)
}

func decodeOID(b []byte) (asn1.ObjectIdentifier, error) {
	full := append([]byte{0x06, byte(len(b))}, b...)
	if len(b) > 127 {
		return nil, malformed("OID too long")
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(full, &oid); err != nil {
		return nil, malformed("bad OID: %v", err)
	}
	return oid, nil
}
