package entitlements

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/farsign/farsign/agent/codesign/blob"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const oneKey = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>get-task-allow</key>
	<true/>
</dict>
</plist>
`

// Indented with spaces, like Node's entitlements: the output must not depend on
// the input's formatting.
const fiveKeys = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
  <dict>
    <key>get-task-allow</key> <true/>
    <key>run-unsigned-code</key> <true/>
    <key>com.apple.private.cs.debugger</key> <true/>
    <key>dynamic-codesigning</key> <true/>
    <key>com.apple.private.skip-library-validation</key> <true/>
  </dict>
</plist>`

// Goldens from rcodesign's sign-entitlements.trycmd: the SHA-256 of the XML
// (slot 5) and DER (slot 7) blobs and the executable segment flags.
func TestGoldens(t *testing.T) {
	for _, tc := range []struct {
		name           string
		in             string
		xmlLen, derLen int
		xmlSum, derSum string
		flags          uint64
	}{
		{"get-task-allow", oneKey, 231, 36,
			"adea2675562421d85cc35e2c909ae27f33846eeb3b2b7c68017abd1b4b02f624",
			"4d9925d24f1357a00429379f31f567cedfaa8101d58442e7864f923bfb708794", 0x10},
		{"five keys", fiveKeys, 425, 172,
			"e49f5c5bbafe414f3e1061dbaa41d3f7bd618138870826ccd586fd3a004f5687",
			"901eb3ecea82e5ee82d092f460b76afea8daefd1b7b8014fe16c979bb62ac4d7", 0x10 | 0x20 | 0x40 | 0x80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseXML([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			xb := blob.Wrap(blob.MagicEntitlements, v.XML())
			if len(xb) != tc.xmlLen || sum(xb) != tc.xmlSum {
				t.Errorf("XML blob: %d bytes sha256 %s, want %d %s\n%s", len(xb), sum(xb), tc.xmlLen, tc.xmlSum, v.XML())
			}
			der, err := v.DER()
			if err != nil {
				t.Fatal(err)
			}
			db := blob.Wrap(blob.MagicEntitlementsDER, der)
			if len(db) != tc.derLen || sum(db) != tc.derSum {
				t.Errorf("DER blob: %d bytes sha256 %s, want %d %s", len(db), sum(db), tc.derLen, tc.derSum)
			}
			if f := v.ExecSegFlags(); f != tc.flags {
				t.Errorf("exec seg flags %#x, want %#x", f, tc.flags)
			}
			back, err := ParseDER(der)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := back.DER()
			if !bytes.Equal(again, der) {
				t.Error("DER does not round-trip")
			}
		})
	}
}

func TestValueTypes(t *testing.T) {
	in := `<plist version="1.0"><dict>
<key>b</key><array><string>x &amp; y</string><integer>-129</integer><integer>300</integer><false/></array>
<key>a</key><dict><key>n</key><integer>0</integer></dict>
<key>e</key><array/>
</dict></plist>`
	v, err := ParseXML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	// Document order is kept in XML, keys are sorted in DER.
	if !strings.Contains(string(v.XML()), "<key>b</key>\n\t<array>\n\t\t<string>x &amp; y</string>\n\t\t<integer>-129</integer>") {
		t.Errorf("XML:\n%s", v.XML())
	}
	der, err := v.DER()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseDER(der)
	if err != nil {
		t.Fatal(err)
	}
	if back.Dict[0].Key != "a" || back.Dict[1].Key != "b" || back.Dict[2].Key != "e" {
		t.Errorf("DER key order: %v", back.Dict)
	}
	if back.Get("b").Array[1].Int.Int64() != -129 || back.Get("b").Array[2].Int.Int64() != 300 {
		t.Errorf("integers: %v %v", back.Get("b").Array[1].Int, back.Get("b").Array[2].Int)
	}
	reparsed, err := ParseXML(back.XML())
	if err != nil {
		t.Fatal(err)
	}
	if d2, _ := reparsed.DER(); !bytes.Equal(d2, der) {
		t.Error("XML -> DER -> XML -> DER changed")
	}
}

func TestRejects(t *testing.T) {
	for _, in := range []string{
		``, `<plist/>`, `<plist><array/></plist>`, `<foo/>`,
		`<plist><dict><key>a</key></dict></plist>`,
		`<plist><dict><key>a</key><true/><key>a</key><true/></dict></plist>`,
		`<plist><dict><string>a</string></dict></plist>`,
		`<plist><dict><key>a</key><integer>x</integer></dict></plist>`,
		`<plist><dict/><dict/></plist>`,
		`<plist><dict><key>a</key><bogus/></dict></plist>`,
	} {
		if _, err := ParseXML([]byte(in)); err == nil {
			t.Errorf("ParseXML(%q) succeeded", in)
		}
	}
	for _, in := range []string{
		`<plist><dict><key>a</key><data>AAEC</data></dict></plist>`,
		`<plist><dict><key>a</key><real>1.5</real></dict></plist>`,
		`<plist><dict><key>a</key><date>2020-01-01T00:00:00Z</date></dict></plist>`,
	} {
		v, err := ParseXML([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.DER(); err == nil {
			t.Errorf("DER of %s succeeded; codesign rejects these types", in)
		}
	}
}

func FuzzParseDER(f *testing.F) {
	for _, s := range []string{oneKey, fiveKeys} {
		v, _ := ParseXML([]byte(s))
		d, _ := v.DER()
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseDER(data)
		if err != nil {
			return
		}
		// Strict parsing means the encoding is canonical.
		again, err := v.DER()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical DER %x (re-encodes to %x, %v)", data, again, err)
		}
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(oneKey))
	f.Add([]byte(fiveKeys))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseXML(data)
		if err != nil {
			return
		}
		w, err := ParseXML(v.XML())
		if err != nil {
			t.Fatalf("our own XML does not parse: %v\n%s", err, v.XML())
		}
		if !bytes.Equal(w.XML(), v.XML()) {
			t.Fatal("XML does not round-trip")
		}
	})
}
