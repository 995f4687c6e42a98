// Package entitlements handles the entitlements a signature carries: an XML
// property list (slot 5) and, for executables, the same dictionary in Apple's DER
// encoding (slot 7). The kernel reads the DER form; older tooling reads the XML.
//
// The XML is parsed into an order-preserving tree and written back in the format
// rcodesign produces (tab indentation, no trailing newline), so signatures are
// deterministic and byte-compatible with rcodesign's. Only the plist semantics
// matter to the OS, not the formatting.
package entitlements

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Kind is a plist value type.
type Kind int

// Plist value kinds.
const (
	Dict Kind = iota
	Array
	String
	Integer
	Real
	Bool
	Data
	Date
)

// Value is a plist value. Dictionaries keep their keys in document order.
type Value struct {
	Kind  Kind
	Dict  []Entry
	Array []*Value
	Str   string
	Int   *big.Int
	Real  float64
	Bool  bool
	Data  []byte
	Date  time.Time
}

// Entry is one key of a dictionary.
type Entry struct {
	Key   string
	Value *Value
}

// Get returns a dictionary's value for key, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Dict {
		return nil
	}
	for _, e := range v.Dict {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// MaxXMLSize bounds an entitlements document read from a file or a signature.
const MaxXMLSize = 1 << 20

// maxDepth bounds plist nesting.
const maxDepth = 64

// ParseXML parses an XML property list whose root is a dictionary.
func ParseXML(data []byte) (*Value, error) {
	if len(data) > MaxXMLSize {
		return nil, fmt.Errorf("entitlements plist is %d bytes (limit %d)", len(data), MaxXMLSize)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// Find <plist>.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, errors.New("entitlements: no <plist> element")
		}
		if err != nil {
			return nil, fmt.Errorf("entitlements: invalid XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("entitlements: root element is <%s>, want <plist>", se.Name.Local)
			}
			break
		}
	}
	start, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if start == nil {
		return nil, errors.New("entitlements: empty <plist>")
	}
	v, err := parseValue(d, *start, 0)
	if err != nil {
		return nil, err
	}
	if v.Kind != Dict {
		return nil, errors.New("entitlements: the plist's root must be a <dict>")
	}
	// </plist> and nothing else.
	if s, err := nextStart(d); err != nil || s != nil {
		if err == nil {
			err = fmt.Errorf("unexpected <%s> after the root value", s.Name.Local)
		}
		return nil, fmt.Errorf("entitlements: %w", err)
	}
	return v, nil
}

// nextStart skips whitespace and comments to the next start element; it returns
// nil at an end element.
func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, errors.New("entitlements: unexpected end of document")
			}
			return nil, fmt.Errorf("entitlements: invalid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("entitlements: unexpected text %q", strings.TrimSpace(string(t)))
			}
		}
	}
}

func text(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("entitlements: invalid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("entitlements: unexpected <%s> inside a scalar", t.Name.Local)
		}
	}
}

func parseValue(d *xml.Decoder, se xml.StartElement, depth int) (*Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("entitlements: nested deeper than %d", maxDepth)
	}
	switch se.Name.Local {
	case "dict":
		v := &Value{Kind: Dict}
		seen := map[string]bool{}
		for {
			ks, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if ks == nil {
				return v, nil
			}
			if ks.Name.Local != "key" {
				return nil, fmt.Errorf("entitlements: <%s> where a <key> was expected", ks.Name.Local)
			}
			key, err := text(d)
			if err != nil {
				return nil, err
			}
			if seen[key] {
				return nil, fmt.Errorf("entitlements: key %q appears twice", key)
			}
			seen[key] = true
			vs, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if vs == nil {
				return nil, fmt.Errorf("entitlements: key %q has no value", key)
			}
			val, err := parseValue(d, *vs, depth+1)
			if err != nil {
				return nil, err
			}
			v.Dict = append(v.Dict, Entry{Key: key, Value: val})
		}
	case "array":
		v := &Value{Kind: Array}
		for {
			s, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if s == nil {
				return v, nil
			}
			val, err := parseValue(d, *s, depth+1)
			if err != nil {
				return nil, err
			}
			v.Array = append(v.Array, val)
		}
	case "true", "false":
		if _, err := text(d); err != nil {
			return nil, err
		}
		return &Value{Kind: Bool, Bool: se.Name.Local == "true"}, nil
	}
	s, err := text(d)
	if err != nil {
		return nil, err
	}
	switch se.Name.Local {
	case "string":
		return &Value{Kind: String, Str: s}, nil
	case "integer":
		n, ok := new(big.Int).SetString(strings.TrimSpace(s), 0)
		if !ok || n.BitLen() > 64 {
			return nil, fmt.Errorf("entitlements: bad <integer> %q", s)
		}
		return &Value{Kind: Integer, Int: n}, nil
	case "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("entitlements: bad <real> %q", s)
		}
		return &Value{Kind: Real, Real: f}, nil
	case "data":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("entitlements: bad <data>: %v", err)
		}
		return &Value{Kind: Data, Data: b}, nil
	case "date":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("entitlements: bad <date> %q", s)
		}
		return &Value{Kind: Date, Date: t}, nil
	}
	return nil, fmt.Errorf("entitlements: unknown plist element <%s>", se.Name.Local)
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

// XML serializes v as an XML plist in rcodesign's format.
func (v *Value) XML() []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	v.writeXML(&b, 0)
	b.WriteString("\n</plist>")
	return b.Bytes()
}

func indent(b *bytes.Buffer, n int) {
	for i := 0; i < n; i++ {
		b.WriteByte('\t')
	}
}

func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	// EscapeText also escapes quotes and newlines; plists conventionally keep
	// them literal, and both forms parse identically.
	r := strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&#xA;", "\n", "&#x9;", "\t", "&#xD;", "\r")
	return r.Replace(b.String())
}

func (v *Value) writeXML(b *bytes.Buffer, depth int) {
	indent(b, depth)
	switch v.Kind {
	case Dict:
		if len(v.Dict) == 0 {
			b.WriteString("<dict/>")
			return
		}
		b.WriteString("<dict>\n")
		for _, e := range v.Dict {
			indent(b, depth+1)
			b.WriteString("<key>" + escape(e.Key) + "</key>\n")
			e.Value.writeXML(b, depth+1)
			b.WriteByte('\n')
		}
		indent(b, depth)
		b.WriteString("</dict>")
	case Array:
		if len(v.Array) == 0 {
			b.WriteString("<array/>")
			return
		}
		b.WriteString("<array>\n")
		for _, e := range v.Array {
			e.writeXML(b, depth+1)
			b.WriteByte('\n')
		}
		indent(b, depth)
		b.WriteString("</array>")
	case String:
		b.WriteString("<string>" + escape(v.Str) + "</string>")
	case Integer:
		b.WriteString("<integer>" + v.Int.String() + "</integer>")
	case Real:
		b.WriteString("<real>" + strconv.FormatFloat(v.Real, 'g', -1, 64) + "</real>")
	case Bool:
		if v.Bool {
			b.WriteString("<true/>")
		} else {
			b.WriteString("<false/>")
		}
	case Data:
		b.WriteString("<data>" + base64.StdEncoding.EncodeToString(v.Data) + "</data>")
	case Date:
		b.WriteString("<date>" + v.Date.UTC().Format(time.RFC3339) + "</date>")
	}
}
