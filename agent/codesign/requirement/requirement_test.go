package requirement

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rcodesign sign-cms.trycmd: the self-signed RSA certificate's designated
// requirement, `identifier "exe" and certificate root = H"e1c7…96e9"`, is an
// 80-byte RequirementSet with this SHA-256 (slot 2 in that signature).
func TestSelfSignedDesignatedGolden(t *testing.T) {
	pin := mustHex(t, "e1c7216e46533c923b7cfc94e86c7043790b96e9")
	e := Designated("exe", Signer{Kind: SignerNonApple, PinSlot: SlotRoot, PinSHA1: pin})
	set := DesignatedSet(e).Bytes()
	if len(set) != 80 {
		t.Fatalf("RequirementSet is %d bytes, want 80", len(set))
	}
	sum := sha256.Sum256(set)
	if got, want := hex.EncodeToString(sum[:]), "f48f861e449222d508463e8342afee0c2241817878cab57b21e38e6aea0c08fa"; got != want {
		t.Fatalf("RequirementSet sha256 %s, want %s", got, want)
	}
	if got, want := e.String(), `identifier "exe" and certificate root = H"e1c7216e46533c923b7cfc94e86c7043790b96e9"`; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	parsed, err := ParseSet(set)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.Bytes(), set) {
		t.Error("RequirementSet does not round-trip")
	}
}

func TestDeveloperIDText(t *testing.T) {
	e := Designated("node", Signer{Kind: SignerDeveloperID, TeamID: "HX7739G8FX"})
	want := `identifier "node" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = "HX7739G8FX"`
	if got := e.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// The text compiles back to the same bytes; the right-nested and-chain shape is kept.
	p, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Encode(nil), e.Encode(nil)) {
		t.Error("parse(format(e)) encodes differently")
	}
	w := Designated("x", Signer{Kind: SignerWWDR, CommonName: "Apple Development: A (B)"})
	if got := w.String(); got != `identifier "x" and anchor apple generic and certificate leaf[subject.CN] = "Apple Development: A (B)" and certificate 1[field.1.2.840.113635.100.6.2.1] /* exists */` {
		t.Errorf("WWDR: %s", got)
	}
}

func TestParseForms(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{`anchor apple`, `anchor apple`},
		{`identifier = com.example.app`, `identifier "com.example.app"`},
		{`certificate leaf[subject.OU] = HX7739G8FX`, `certificate leaf[subject.OU] = "HX7739G8FX"`},
		{`certificate 1[field.1.2.840.113635.100.6.2.6] exists`, `certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */`},
		{`anchor = H"00ff"`, `certificate root = H"00ff"`},
		{`(a or b) and c`, ``},
		{`identifier "a" or identifier "b" and anchor apple`, `identifier "a" or identifier "b" and anchor apple`},
		{`(identifier "a" or identifier "b") and anchor apple`, `(identifier "a" or identifier "b") and anchor apple`},
		{`(identifier "a" and anchor apple) and notarized`, `(identifier "a" and anchor apple) and notarized`},
		{`! identifier "a"`, `! identifier "a"`},
		{`info [CFBundleVersion] >= "2"`, `info [CFBundleVersion] >= "2"`},
		{`entitlement [com.apple.security.app-sandbox] = *"box"*`, `entitlement [com.apple.security.app-sandbox] = *"box"*`},
		{`certificate leaf[subject.CN] = "Apple"*`, `certificate leaf[subject.CN] = "Apple"*`},
		{`certificate leaf[subject.CN] ~ "pp"`, `certificate leaf[subject.CN] = *"pp"*`},
		{`cdhash H"0102"`, `cdhash H"0102"`},
		{`platform = 1 and anchor trusted`, `platform = 1 and anchor trusted`},
		{`certificate 2 trusted`, `certificate 2 trusted`},
		{`certificate leaf[timestamp.1.2.3] <= timestamp "2024-01-02T03:04:05Z"`, `certificate leaf[timestamp.1.2.3] <= timestamp "2024-01-02T03:04:05Z"`},
		{`never or always`, `never or always`},
	} {
		e, err := Parse(tc.in)
		if tc.out == "" {
			if err == nil {
				t.Errorf("Parse(%q) succeeded, want an error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := e.String(); got != tc.out {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, got, tc.out)
		}
		back, _, err := Decode(e.Encode(nil))
		if err != nil || back.String() != tc.out {
			t.Errorf("binary round trip of %q: %v %q", tc.in, err, back)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{``, `identifier`, `certificate`, `certificate leaf[`, `anchor apple and`, `(anchor apple`, `cdhash H"zz"`, `bogus`, `identifier "a" identifier "b"`, `/* open`} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestSetText(t *testing.T) {
	s, err := ParseSetText("designated => identifier \"a\" and anchor apple\nhost => anchor apple\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Entries) != 2 || s.Designated() == nil || s.Designated().String() != `identifier "a" and anchor apple` {
		t.Fatalf("parsed %v", s)
	}
	back, err := ParseSet(s.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by type on encoding: host (1) before designated (3).
	if back.Entries[0].Type != TypeHost || back.String() != "host => anchor apple\ndesignated => identifier \"a\" and anchor apple" {
		t.Errorf("round trip: %q", back.String())
	}
	bare, err := ParseSetText(`anchor apple`)
	if err != nil || bare.Designated() == nil {
		t.Fatalf("bare expression: %v", err)
	}
	if _, err := ParseSetText("junk designated => anchor apple"); err == nil {
		t.Error("text before the first type accepted")
	}
	if _, err := ParseSetText("designated => anchor apple designated => anchor apple"); err == nil {
		t.Error("duplicate type accepted")
	}
}

func TestDecodeRejects(t *testing.T) {
	deep := bytes.Repeat([]byte{0, 0, 0, 9}, maxDepth+10) // not(not(...))
	deep = append(deep, 0, 0, 0, 1)
	if _, _, err := Decode(deep); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
	for _, b := range [][]byte{
		{},
		{0, 0, 0, 2, 0, 0, 0, 9, 'a'},            // identifier longer than the data
		{0, 0, 0, 2, 0, 0, 0, 1, 'a'},            // missing padding
		{0, 0, 0, 99},                            // unknown opcode
		{0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // cert field without a match
		{0, 0, 0, 6, 0, 0, 0, 1},                 // and with one operand
	} {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("Decode(%x) succeeded", b)
		}
	}
	if _, err := ParseSet([]byte{0xfa, 0xde, 0x0c, 0x01, 0, 0, 0, 0x14, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0xff}); err == nil {
		t.Error("set with an out-of-range offset accepted")
	}
	if !bytes.Equal((&Set{}).Bytes(), EmptySetBytes) {
		t.Error("empty set encoding")
	}
}

func TestOID(t *testing.T) {
	for _, s := range []string{"1.2.840.113635.100.6.2.6", "2.5.4.11", "2.999.3", "0.0"} {
		b, err := encodeOID(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := oidString(b); got != s {
			t.Errorf("%s -> %x -> %s", s, b, got)
		}
	}
	if b, _ := encodeOID("1.2.840.113635.100.6.2.6"); hex.EncodeToString(b) != "2a864886f76364060206" {
		t.Errorf("encoding %x", b)
	}
	for _, bad := range []string{"1", "3.1", "1.40", "1..2", "a.b", "01.2"} {
		if _, err := encodeOID(bad); err == nil {
			t.Errorf("encodeOID(%q) succeeded", bad)
		}
	}
	if !strings.HasPrefix(oidString([]byte{0x80, 1}), "H") {
		t.Error("non-minimal OID not flagged")
	}
}

// FuzzRequirementSet decodes arbitrary RequirementSet blobs; whatever decodes must
// re-encode to a set that decodes to the same text.
func FuzzRequirementSet(f *testing.F) {
	f.Add(EmptySetBytes)
	f.Add(DesignatedSet(Designated("exe", Signer{PinSlot: -1, PinSHA1: make([]byte, 20)})).Bytes())
	f.Add(DesignatedSet(Designated("node", Signer{Kind: SignerDeveloperID, TeamID: "HX7739G8FX"})).Bytes())
	f.Add(DesignatedSet(Designated("x", Signer{Kind: SignerWWDR, CommonName: "cn"})).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSet(data)
		if err != nil {
			return
		}
		again, err := ParseSet(s.Bytes())
		if err != nil {
			t.Fatalf("re-encoded set does not parse: %v", err)
		}
		if again.String() != s.String() {
			t.Fatalf("round trip changed the set:\n%s\n%s", s, again)
		}
	})
}

// FuzzParse compiles arbitrary text; whatever compiles must print to text that
// compiles to the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`identifier "a" and anchor apple generic and certificate leaf[subject.OU] = "X"`,
		`(a or b) and c`, `! notarized`, `certificate 1[field.1.2.3] exists`,
		`info [k] = *"v"`, `certificate root = H"00"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		e, err := Parse(text)
		if err != nil {
			return
		}
		printed := e.String()
		e2, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) ok but its rendering %q does not parse: %v", text, printed, err)
		}
		if !bytes.Equal(e.Encode(nil), e2.Encode(nil)) {
			t.Fatalf("rendering %q changes the expression", printed)
		}
	})
}
