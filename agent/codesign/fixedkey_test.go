package codesign

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/keyfile"
)

// fixedKeyPath is farsign's own deliberately public RSA test identity (see
// testdata/README.md). RSA PKCS #1 v1.5 signatures are deterministic, so with a
// fixed signing time and no time-stamp the whole signed file is reproducible.
var fixedKeyPath = filepath.Join("testdata", "farsign-test-rsa-apple-development.pem")

var regenerateKey = flag.Bool("regenerate-test-key", false, "write a new "+fixedKeyPath+" (then update the SHA-1 in testdata/README.md and cmd/agent/testdata/sign_fixed_key.txt)")

// fixedSigningTime is the signing time of rcodesign's sign-cms.trycmd.
var fixedSigningTime = time.Date(2023, 11, 5, 10, 0, 0, 0, time.UTC)

func fixedIdentity(t testing.TB) *Identity {
	t.Helper()
	id, err := keyfile.LoadPEM(fixedKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	return &Identity{Signer: id.Signer, Certificate: id.Certificate, Chain: id.Chain}
}

// The committed identity is what the other tests assume: a self-signed RSA 2048
// "Apple Development" look-alike, alone in its file, valid from before the fixed
// signing time for decades. With -regenerate-test-key it is first rewritten.
func TestFixedKeyFixture(t *testing.T) {
	if *regenerateKey {
		key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
			Profile: applecert.ProfileAppleDevelopment, Algorithm: applecert.RSA2048,
			TeamID: "FSTESTKEY1", PersonName: "Farsign Test Key",
			NotBefore: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC),
			Validity:  time.Date(2073, 1, 1, 0, 0, 0, 0, time.UTC).Sub(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)),
		})
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(fixedKeyPath)
		if err := keyfile.WritePEM(fixedKeyPath, keyfile.Identity{Signer: key, Certificate: cert}); err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(cert.Raw)
		t.Logf("wrote %s; certificate SHA-1 %x", fixedKeyPath, sum)
	}
	id := fixedIdentity(t)
	if k, ok := id.Signer.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
		t.Fatalf("key %T, want RSA 2048 (deterministic signatures)", id.Signer)
	}
	c := id.Certificate
	if len(id.Chain) != 0 || !applecert.SelfSigned(c) || applecert.ChainsToApple(c, nil) {
		t.Errorf("want a lone self-signed certificate: chain %d, self-signed %v", len(id.Chain), applecert.SelfSigned(c))
	}
	if p := applecert.GuessProfile(c); p != applecert.ProfileAppleDevelopment {
		t.Errorf("profile %v, want %v", p, applecert.ProfileAppleDevelopment)
	}
	if c.NotBefore.After(fixedSigningTime) || c.NotAfter.Before(time.Date(2070, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("validity %v to %v", c.NotBefore, c.NotAfter)
	}
}

// specEnc writes the requirement encoding of spec §4 by hand: big-endian u32
// words and length-prefixed data padded to 4 bytes. The tests build expected
// RequirementSets with it, independently of package requirement's encoder.
type specEnc []byte

const (
	opIdent              = 2
	opAnchorApple        = 3
	opAnchorHash         = 4
	opAnd                = 6
	opCertField          = 11
	opCertGeneric        = 14
	opAnchorAppleGeneric = 15
	matchExists          = 0
	matchEqual           = 1
	slotLeaf             = 0
	slotRoot             = 0xffffffff // i32 -1
)

func (e specEnc) u32(vs ...uint32) specEnc {
	for _, v := range vs {
		e = binary.BigEndian.AppendUint32(e, v)
	}
	return e
}

func (e specEnc) data(d []byte) specEnc {
	e = e.u32(uint32(len(d)))
	e = append(e, d...)
	for len(e)%4 != 0 {
		e = append(e, 0)
	}
	return e
}

func (e specEnc) str(s string) specEnc { return e.data([]byte(s)) }

// oid is an OID's DER content bytes (no tag, no length), as requirements carry it.
func (e specEnc) oid(t testing.TB, o asn1.ObjectIdentifier) specEnc {
	der, err := asn1.Marshal(o)
	if err != nil || der[1] >= 0x80 {
		t.Fatalf("OID %v: %v", o, err)
	}
	return e.data(der[2:])
}

// specDesignatedSet wraps an expression in a Requirement (magic, length,
// kind 1 = expression) inside a RequirementSet with one entry, type 3
// (designated) at offset 20.
func specDesignatedSet(expr specEnc) []byte {
	req := specEnc(nil).u32(0xfade0c00, uint32(12+len(expr)), 1)
	req = append(req, expr...)
	set := specEnc(nil).u32(0xfade0c01, uint32(20+len(req)), 1, 3, 20)
	return append(set, req...)
}

// Signing rcodesign's sign-cms case with our own key: the designated requirement
// pins the self-signed certificate as the spec's golden does (80 bytes, with this
// certificate's SHA-1), the CodeDirectory is rcodesign's byte for byte once the
// same RequirementSet is used, everything verifies, and the file is reproducible.
func TestSignCMSFixedKey(t *testing.T) {
	id := fixedIdentity(t)
	exe := machotest.Exe(machotest.Options{})
	opts := Options{Identity: id, SigningTime: fixedSigningTime}
	out, res := signBytes(t, exe, "exe", opts)
	if len(out) != 22544 {
		t.Errorf("size %d, want 22544 (rcodesign's for sign-cms: same estimate, no chain)", len(out))
	}
	again, _ := signBytes(t, exe, "exe", opts)
	if !bytes.Equal(out, again) {
		t.Error("signing twice with a fixed signing time and an RSA key gave different files")
	}

	// (a) The RequirementSet, built from the spec's layout by hand.
	pin := sha1.Sum(id.Certificate.Raw)
	want := specDesignatedSet(specEnc(nil).
		u32(opAnd).u32(opIdent).str("exe").
		u32(opAnchorHash, slotRoot).data(pin[:]))
	if len(want) != 80 {
		t.Fatalf("hand-built RequirementSet is %d bytes; the spec's golden is 80", len(want))
	}
	sig := firstSignature(t, out)
	got, ok := sig.SuperBlob.Find(blob.SlotRequirements)
	if !ok || !bytes.Equal(got, want) {
		t.Errorf("RequirementSet\n%x\nwant\n%x", got, want)
	}
	cd := sig.Primary()
	if h := sha256.Sum256(want); !bytes.Equal(cd.Special[blob.SlotRequirements-1], h[:]) {
		t.Error("special slot 2 does not hash the RequirementSet")
	}
	if cd.Identifier != "exe" || cd.TeamID != "" || cd.Flags != 0 || res.Slices[0].TeamID != "" {
		t.Errorf("identifier %q team %q flags %#x: a self-signed certificate gets no team ID and no flags", cd.Identifier, cd.TeamID, cd.Flags)
	}

	// (b) The CMS: our certificate alone, the fixed time, and it verifies.
	sd, err := cms.Parse(sig.CMS)
	if err != nil {
		t.Fatal(err)
	}
	if !sd.Signer.SigningTime.Equal(fixedSigningTime) || !bytes.Equal(sd.Signer.SignerCertificate.Raw, id.Certificate.Raw) || len(sd.Certificates) != 1 || sd.Signer.TimeStamp != nil {
		t.Errorf("CMS: signing time %v, %d certificates, time-stamp %v", sd.Signer.SigningTime, len(sd.Certificates), sd.Signer.TimeStamp != nil)
	}
	p := writeTemp(t, "exe", out)
	rep := mustVerify(t, p, VerifyOptions{Roots: pool(id.Certificate), At: fixedSigningTime})
	for _, name := range []string{"cms", "certificate chain", "designated requirement", "cdhash attributes", "CodeDirectory (sha256)"} {
		if c := checkNamed(rep, name); c == nil || c.Err != nil || c.Skipped != "" {
			t.Errorf("check %q did not pass: %+v", name, c)
		}
	}
	if c := checkNamed(rep, "designated requirement"); c == nil || c.Detail != `identifier "exe" and certificate root = H"`+hex.EncodeToString(pin[:])+`"` {
		t.Errorf("designated requirement check %+v", c)
	}

	// With the RequirementSet of rcodesign's own test certificate (its SHA-1 is
	// published in sign-cms.trycmd), the CodeDirectory is rcodesign's: flags 0,
	// no team, the same code limit and page hashes, the same special slots.
	e1c7, _ := hex.DecodeString("e1c7216e46533c923b7cfc94e86c7043790b96e9")
	rset := requirement.DesignatedSet(requirement.Designated("exe", requirement.Signer{Kind: requirement.SignerNonApple, PinSlot: requirement.SlotRoot, PinSHA1: e1c7}))
	opts.Requirements = rset
	out, _ = signBytes(t, exe, "exe", opts)
	if got := sha256hex(firstSignature(t, out).Primary().Raw); len(out) != 22544 || got != "fbd3393f2015c87653f2ccef69a864fb60985e21d38485b3bb1c7deeb76d825c" {
		t.Errorf("%d bytes, CodeDirectory sha256 %s; want rcodesign's 22544 and fbd3393f…", len(out), got)
	}
}
