package codesign

// This file checks what the signing engine writes against an independent reader:
// github.com/blacktop/go-macho, a Mach-O library that shares no code with
// agent/macho or agent/codesign/blob. Our own parser stays the production one
// (it is bounded and fuzzed, and go-macho cannot rewrite files), but a signer
// checked only by its own reader can be wrong in the same way twice. Every
// output below is opened by go-macho, and what it reports is compared with
//
//   - the expectations of the test case (identifier, team ID, flags, which
//     blobs exist), straight from the spec, not from our parser;
//   - facts recomputed here from the raw file bytes: each page hash, each
//     special-slot hash (over a SuperBlob index walked by hand), the code
//     limit and LC_CODE_SIGNATURE's place at the end of __LINKEDIT;
//   - what our own parser and the signing Result say, so the two readers agree.
//
// go-macho limitations met and worked around (v1.1.296):
//   - It exposes the RequirementSet only as parsed requirements, so an empty
//     set and a missing slot look the same (no requirements). The empty set is
//     checked through the hand-walked SuperBlob and special slot 2 instead.
//   - An ad-hoc signature's empty BlobWrapper (slot 0x10000) and a missing one
//     both give an empty CMSSignature; the hand walk tells them apart.
//   - It prints (to stdout) instead of failing on CodeDirectory versions it
//     does not know; ours are 0x20400 and 0x20500, which it knows.
//   - Its requirement text is not csreq's: an anchor hash comes out as the raw
//     20 bytes instead of H"<hex>" (its own TODO), and certificate fields get
//     two spaces before the match. Both texts are compared after mapping ours
//     to that form (see goMachoRequirementText), so the bytes still must agree.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gomacho "github.com/blacktop/go-macho"
	cstypes "github.com/blacktop/go-macho/pkg/codesign/types"

	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
)

// gmImage is one Mach-O image of a file as go-macho sees it.
type gmImage struct {
	off, size int64 // where the image sits in the file
	f         *gomacho.File
}

// openGoMacho parses path with go-macho, universal or thin. A go-macho error or
// panic on our output fails the test: the output is meant to be a valid Mach-O,
// so whichever side is wrong, a person has to look (the message says which
// file). The file stays open for the test's lifetime, as go-macho reads lazily.
func openGoMacho(t testing.TB, path string) []gmImage {
	t.Helper()
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	st, err := r.Stat()
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := parseGoMacho(r, st.Size())
	if err != nil {
		t.Fatalf("go-macho cannot read %s, which farsign wrote: %v", filepath.Base(path), err)
	}
	return imgs
}

func parseGoMacho(r io.ReaderAt, size int64) (imgs []gmImage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("go-macho panicked: %v", p)
		}
	}()
	ff, err := gomacho.NewFatFile(r)
	switch {
	case errors.Is(err, gomacho.ErrNotFat):
		f, err := gomacho.NewFile(r)
		if err != nil {
			return nil, err
		}
		return []gmImage{{off: 0, size: size, f: f}}, nil
	case err != nil:
		return nil, err
	}
	for _, a := range ff.Arches {
		imgs = append(imgs, gmImage{off: int64(a.Offset), size: int64(a.Size), f: a.File})
	}
	return imgs, nil
}

// hashFor returns the digest go-macho's CodeDirectory hash type names.
func gmHashFor(ht uint8) (func() hash.Hash, error) {
	switch ht {
	case uint8(cstypes.HASHTYPE_SHA1):
		return sha1.New, nil
	case uint8(cstypes.HASHTYPE_SHA256):
		return sha256.New, nil
	}
	return nil, fmt.Errorf("hash type %d not covered by the oracle", ht)
}

// checkPageHashes recomputes every code page of the image at base in r and
// compares it with the slot go-macho read. It is the heart of the oracle: the
// hashes are computed here from the file, by neither go-macho nor farsign.
func checkPageHashes(r io.ReaderAt, base int64, cd cstypes.CodeDirectory) error {
	newHash, err := gmHashFor(uint8(cd.Header.HashType))
	if err != nil {
		return err
	}
	if cd.Header.PageSize != 12 {
		return fmt.Errorf("page size 2^%d, want 4096", cd.Header.PageSize)
	}
	const page = 4096
	limit := int64(cd.CodeLimit)
	want := (limit + page - 1) / page
	if int64(cd.Header.NCodeSlots) != want || int64(len(cd.CodeSlots)) != want {
		return fmt.Errorf("%d code slots (%d read), want ceil(%d/4096) = %d", cd.Header.NCodeSlots, len(cd.CodeSlots), limit, want)
	}
	buf := make([]byte, page)
	var bad []string
	for i, s := range cd.CodeSlots {
		start := int64(i) * page
		n := min(page, limit-start) // the last page is short, not padded
		if _, err := r.ReadAt(buf[:n], base+start); err != nil {
			return fmt.Errorf("reading page %d: %w", i, err)
		}
		h := newHash()
		h.Write(buf[:n])
		if got := h.Sum(nil); !bytes.Equal(got, s.Hash) {
			bad = append(bad, fmt.Sprintf("slot %d (file offset %#x): stored %x, page hashes to %x", i, base+start, s.Hash, got))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("... %d more", len(bad)-5))
		}
		return fmt.Errorf("%d of %d page hashes are wrong: %s", len(bad), len(cd.CodeSlots), strings.Join(bad, "; "))
	}
	return nil
}

// walkSuperBlob indexes an embedded signature by hand (spec §2): slot number to
// the complete blob bytes, header included, in index order. It trusts nothing
// but the bytes, so its answers are independent of both parsers.
func walkSuperBlob(t testing.TB, raw []byte) (slots []uint32, blobs map[uint32][]byte) {
	t.Helper()
	be := binary.BigEndian
	if len(raw) < 12 || be.Uint32(raw) != 0xfade0cc0 {
		t.Fatalf("no embedded-signature SuperBlob at LC_CODE_SIGNATURE's offset")
	}
	length, count := be.Uint32(raw[4:]), be.Uint32(raw[8:])
	if uint64(length) > uint64(len(raw)) || 12+8*uint64(count) > uint64(length) {
		t.Fatalf("SuperBlob length %d, %d entries, in %d reserved bytes", length, count, len(raw))
	}
	if pad := raw[length:]; !bytes.Equal(pad, make([]byte, len(pad))) {
		t.Error("the padding after the SuperBlob is not zero")
	}
	blobs = map[uint32][]byte{}
	for i := range count {
		slot, off := be.Uint32(raw[12+8*i:]), be.Uint32(raw[16+8*i:])
		if uint64(off)+8 > uint64(length) {
			t.Fatalf("slot %#x at offset %d is outside the SuperBlob", slot, off)
		}
		n := be.Uint32(raw[off+4:])
		if n < 8 || uint64(off)+uint64(n) > uint64(length) {
			t.Fatalf("slot %#x: blob of %d bytes at %d overruns the SuperBlob", slot, n, off)
		}
		slots = append(slots, slot)
		blobs[slot] = raw[off : off+n]
	}
	return slots, blobs
}

// oracleWant is what a signed output must say, from the test case and the spec.
type oracleWant struct {
	identifier string
	teamID     string
	flags      uint32
	// cert is the signing certificate, which must be in the CMS; nil for ad hoc.
	cert *x509.Certificate
	// entitlements means XML and DER entitlements blobs (slots 5 and 7).
	entitlements bool
	// entitlementsDER, when set, is the exact DER payload expected.
	entitlementsDER []byte
	// designated means a one-entry RequirementSet; otherwise the empty set.
	designated bool
}

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

// checkWithGoMacho opens path (just written by the engine, which returned res)
// with go-macho and checks every slice against want, the raw bytes and our parser.
func checkWithGoMacho(t *testing.T, path string, res *Result, want oracleWant) {
	t.Helper()
	imgs := openGoMacho(t, path)
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	st, _ := file.Stat()
	bin, err := macho.Open(file, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != len(bin.Slices) || len(imgs) != len(res.Slices) {
		t.Fatalf("go-macho sees %d images, our parser %d slices, the signer reported %d", len(imgs), len(bin.Slices), len(res.Slices))
	}
	for i, img := range imgs {
		t.Run(fmt.Sprintf("slice%d-%s", i, img.f.CPU), func(t *testing.T) {
			sl, rs := bin.Slices[i], res.Slices[i]
			if int64(sl.Arch.Offset) != img.off || int64(sl.Arch.Size) != img.size {
				t.Errorf("go-macho places the image at %d+%d, our parser at %d+%d", img.off, img.size, sl.Arch.Offset, sl.Arch.Size)
			}
			cs := img.f.CodeSignature()
			if cs == nil {
				t.Fatal("go-macho finds no LC_CODE_SIGNATURE")
			}
			if len(cs.Errors) > 0 {
				t.Errorf("go-macho reports problems in the signature: %v", cs.Errors)
			}
			ours, err := ReadSignature(sl.File, sl.Reader)
			if err != nil {
				t.Fatal(err)
			}

			// LC_CODE_SIGNATURE against __LINKEDIT (spec §1, §6): 16-aligned,
			// ending exactly where __LINKEDIT and the image end.
			le := img.f.Segment("__LINKEDIT")
			if le == nil {
				t.Fatal("go-macho finds no __LINKEDIT")
			}
			sigOff, sigEnd := uint64(cs.Offset), uint64(cs.Offset)+uint64(cs.Size)
			if sigOff%16 != 0 || sigOff < le.Offset {
				t.Errorf("signature at %#x: not 16-aligned or before __LINKEDIT (%#x)", sigOff, le.Offset)
			}
			if sigEnd != le.Offset+le.Filesz || int64(sigEnd) != img.size {
				t.Errorf("signature ends at %#x, __LINKEDIT at %#x, the image at %#x: all three must agree", sigEnd, le.Offset+le.Filesz, img.size)
			}
			if le.Memsz%16384 != 0 || le.Memsz < le.Filesz {
				t.Errorf("__LINKEDIT vmsize %#x for filesize %#x, want it rounded up to 16 KiB", le.Memsz, le.Filesz)
			}
			if ours.Offset != int64(cs.Offset) || ours.Reserved != int64(cs.Size) {
				t.Errorf("LC_CODE_SIGNATURE: go-macho %d+%d, ours %d+%d", cs.Offset, cs.Size, ours.Offset, ours.Reserved)
			}

			raw := make([]byte, cs.Size)
			if _, err := file.ReadAt(raw, img.off+int64(cs.Offset)); err != nil {
				t.Fatal(err)
			}
			order, blobs := walkSuperBlob(t, raw)
			wantSlots := []uint32{0, 2}
			if want.entitlements {
				wantSlots = append(wantSlots, 5, 7)
			}
			wantSlots = append(wantSlots, 0x10000)
			if fmt.Sprint(order) != fmt.Sprint(wantSlots) {
				t.Errorf("SuperBlob slots %#x, want %#x in ascending order", order, wantSlots)
			}

			if len(cs.CodeDirectories) != 1 || len(ours.CodeDirectories) != 1 {
				t.Fatalf("go-macho reads %d CodeDirectories, ours %d; these modern targets need one SHA-256 CodeDirectory", len(cs.CodeDirectories), len(ours.CodeDirectories))
			}
			cd, ocd := cs.CodeDirectories[0], ours.CodeDirectories[0]
			checkCodeDirectory(t, img, file, cd, ocd, blobs, want)
			if len(rs.CDHashes) != 1 || cd.CDHash != hex.EncodeToString(rs.CDHashes[0].Digest) {
				t.Errorf("go-macho's cdhash %s, the signer reported %x", cd.CDHash, rs.CDHashes)
			}
			if rs.Identifier != cd.ID || rs.TeamID != cd.TeamID || rs.Flags != uint32(cd.Header.Flags) {
				t.Errorf("the signer reported %q/%q/%#x, go-macho reads %q/%q/%#x", rs.Identifier, rs.TeamID, rs.Flags, cd.ID, cd.TeamID, uint32(cd.Header.Flags))
			}

			// Requirements (slot 2): go-macho's parse, our parse, the raw blob.
			if want.designated {
				if len(cs.Requirements) != 1 || cs.Requirements[0].Type != cstypes.DesignatedRequirementType {
					t.Fatalf("go-macho reads %d requirements, want one designated requirement", len(cs.Requirements))
				}
				gd := cs.Requirements[0].Detail
				if !strings.HasPrefix(gd, fmt.Sprintf("identifier %q and ", want.identifier)) {
					t.Errorf("designated requirement %q does not start with the identifier", gd)
				}
				if ours.Requirements == nil || len(ours.Requirements.Entries) != 1 {
					t.Fatalf("our parser reads requirements %v", ours.Requirements)
				}
				if og := ours.Requirements.Entries[0].Requirement.String(); goMachoRequirementText(t, og) != collapseSpaces(gd) {
					t.Errorf("designated requirement: go-macho %q, ours %q", gd, og)
				}
			} else {
				if len(cs.Requirements) != 0 {
					t.Errorf("ad hoc, go-macho reads requirements %+v", cs.Requirements)
				}
				if got := blobs[2]; !bytes.Equal(got, []byte{0xfa, 0xde, 0x0c, 0x01, 0, 0, 0, 12, 0, 0, 0, 0}) {
					t.Errorf("slot 2 is %x, want the empty RequirementSet", got)
				}
				if s := specialSlot(cd, 2); !bytes.Equal(s, cstypes.EmptySha256ReqSlot) {
					t.Errorf("special slot 2 is %x, go-macho's hash of the empty set is %x", s, cstypes.EmptySha256ReqSlot)
				}
			}

			// CMS (slot 0x10000).
			if want.cert != nil {
				if len(cs.CMSSignature) == 0 {
					t.Fatal("go-macho reads no CMS signature")
				}
				var ci struct {
					ContentType asn1.ObjectIdentifier
					Content     asn1.RawValue `asn1:"explicit,tag:0"`
				}
				if _, err := asn1.Unmarshal(cs.CMSSignature, &ci); err != nil || !ci.ContentType.Equal(oidSignedData) {
					t.Errorf("the CMS blob is not a ContentInfo of SignedData: %v %v", err, ci.ContentType)
				}
				if !bytes.Contains(cs.CMSSignature, want.cert.Raw) {
					t.Error("the signing certificate is not in the CMS")
				}
				if !bytes.Equal(cs.CMSSignature, ours.CMS) {
					t.Error("go-macho and our parser read different CMS bytes")
				}
			} else {
				if len(cs.CMSSignature) != 0 {
					t.Errorf("ad hoc, go-macho reads a %d-byte CMS", len(cs.CMSSignature))
				}
				if got := blobs[0x10000]; !bytes.Equal(got, []byte{0xfa, 0xde, 0x0b, 0x01, 0, 0, 0, 8}) {
					t.Errorf("slot 0x10000 is %x, want the empty BlobWrapper", got)
				}
			}

			// Entitlements (slots 5 and 7).
			if want.entitlements {
				if cs.Entitlements == "" || len(cs.EntitlementsDER) == 0 {
					t.Fatalf("go-macho reads %d bytes of XML and %d of DER entitlements", len(cs.Entitlements), len(cs.EntitlementsDER))
				}
				if want.entitlementsDER != nil && !bytes.Equal(cs.EntitlementsDER, want.entitlementsDER) {
					t.Error("the DER entitlements changed")
				}
			} else if cs.Entitlements != "" || len(cs.EntitlementsDER) != 0 {
				t.Error("go-macho reads entitlements nobody asked for")
			}
			if cs.Entitlements != string(ours.Entitlements) || !bytes.Equal(cs.EntitlementsDER, ours.EntitlementsDER) {
				t.Error("go-macho and our parser read different entitlements")
			}
		})
	}
}

var anchorHash = regexp.MustCompile(`H"([0-9a-f]+)"`)

// goMachoRequirementText maps csreq text (ours) to go-macho's rendering of the
// same requirement: anchor hashes as raw bytes, single spaces.
func goMachoRequirementText(t testing.TB, s string) string {
	s = anchorHash.ReplaceAllStringFunc(s, func(m string) string {
		b, err := hex.DecodeString(anchorHash.FindStringSubmatch(m)[1])
		if err != nil {
			t.Errorf("bad anchor hash in %q", s)
		}
		return string(b)
	})
	return collapseSpaces(s)
}

func collapseSpaces(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

func specialSlot(cd cstypes.CodeDirectory, n uint32) []byte {
	for _, s := range cd.SpecialSlots {
		if s.Index == n {
			return s.Hash
		}
	}
	return nil
}

// checkCodeDirectory compares go-macho's CodeDirectory with want, the file's
// bytes and our parser's CodeDirectory.
func checkCodeDirectory(t *testing.T, img gmImage, file io.ReaderAt, cd cstypes.CodeDirectory, ocd CodeDirectory, blobs map[uint32][]byte, want oracleWant) {
	t.Helper()
	h := cd.Header
	if cd.ID != want.identifier || ocd.Identifier != cd.ID {
		t.Errorf("identifier: go-macho %q, ours %q, want %q", cd.ID, ocd.Identifier, want.identifier)
	}
	if cd.TeamID != want.teamID || ocd.TeamID != cd.TeamID {
		t.Errorf("team ID: go-macho %q, ours %q, want %q", cd.TeamID, ocd.TeamID, want.teamID)
	}
	if uint32(h.Flags) != want.flags || ocd.Flags != uint32(h.Flags) {
		t.Errorf("flags: go-macho %#x, ours %#x, want %#x", uint32(h.Flags), ocd.Flags, want.flags)
	}
	if h.HashType != cstypes.HASHTYPE_SHA256 || uint8(h.HashType) != uint8(ocd.HashType) || h.HashSize != 32 {
		t.Errorf("hash type: go-macho %d (%d bytes), ours %d; want SHA-256", h.HashType, h.HashSize, ocd.HashType)
	}
	if h.PageSize != ocd.PageSizeLog2 {
		t.Errorf("page size: go-macho 2^%d, ours 2^%d", h.PageSize, ocd.PageSizeLog2)
	}
	// The code limit is where the SuperBlob starts (spec §3.4).
	if cs := img.f.CodeSignature(); cd.CodeLimit != uint64(cs.Offset) || ocd.CodeLimit != cd.CodeLimit {
		t.Errorf("code limit: go-macho %d, ours %d, want the signature offset %d", cd.CodeLimit, ocd.CodeLimit, cs.Offset)
	}
	if err := checkPageHashes(file, img.off, cd); err != nil {
		t.Error(err)
	}
	if len(ocd.Code) != len(cd.CodeSlots) {
		t.Errorf("go-macho reads %d code slots, ours %d", len(cd.CodeSlots), len(ocd.Code))
	} else {
		for i, s := range cd.CodeSlots {
			if !bytes.Equal(s.Hash, ocd.Code[i]) {
				t.Errorf("code slot %d: go-macho %x, ours %x", i, s.Hash, ocd.Code[i])
				break
			}
		}
	}

	// Special slots: each is the hash of its blob, header included, or zero
	// when absent (slots 1 and 3 hash external files no fixture has). Their
	// number is the highest slot present (spec §3.5).
	wantN := uint32(2)
	if want.entitlements {
		wantN = 7
	}
	if h.NSpecialSlots != wantN || len(cd.SpecialSlots) != int(wantN) || len(ocd.Special) != int(wantN) {
		t.Errorf("special slots: go-macho %d (%d read), ours %d, want %d", h.NSpecialSlots, len(cd.SpecialSlots), len(ocd.Special), wantN)
	}
	for _, s := range cd.SpecialSlots {
		exp := make([]byte, 32)
		if b, ok := blobs[s.Index]; ok {
			sum := sha256.Sum256(b)
			exp = sum[:]
		}
		if !bytes.Equal(s.Hash, exp) {
			t.Errorf("special slot %d: go-macho reads %x, the blob hashes to %x", s.Index, s.Hash, exp)
		}
		if !bytes.Equal(s.Hash, ocd.SpecialHash(blob.Slot(s.Index))) {
			t.Errorf("special slot %d: go-macho %x, ours %x", s.Index, s.Hash, ocd.SpecialHash(blob.Slot(s.Index)))
		}
	}

	// The executable segment is __TEXT, marked main binary for executables.
	if text := img.f.Segment("__TEXT"); text == nil || h.ExecSegBase != text.Offset || h.ExecSegLimit != text.Offset+text.Filesz {
		t.Errorf("exec segment %#x-%#x is not __TEXT's file range", h.ExecSegBase, h.ExecSegLimit)
	}
	if h.ExecSegFlags&cstypes.EXECSEG_MAIN_BINARY == 0 || h.ExecSegBase != ocd.ExecSegBase || h.ExecSegLimit != ocd.ExecSegLimit || uint64(h.ExecSegFlags) != ocd.ExecSegFlags {
		t.Errorf("exec segment: go-macho %#x-%#x flags %#x, ours %#x-%#x flags %#x", h.ExecSegBase, h.ExecSegLimit, uint64(h.ExecSegFlags), ocd.ExecSegBase, ocd.ExecSegLimit, ocd.ExecSegFlags)
	}

	// The hardened runtime records the SDK version from LC_BUILD_VERSION
	// (spec §3.6), which go-macho reads on its own.
	if want.flags&blob.FlagRuntime != 0 {
		bv := img.f.BuildVersions()
		if len(bv) == 0 {
			t.Fatal("no LC_BUILD_VERSION")
		}
		if uint32(h.Version) < 0x20500 || uint32(h.Runtime) != uint32(bv[0].Sdk) || ocd.Runtime != uint32(h.Runtime) {
			t.Errorf("runtime version %v (CodeDirectory version %#x), SDK %v, ours %#x", h.Runtime, uint32(h.Version), bv[0].Sdk, ocd.Runtime)
		}
	}
}

// TestGoMachoOracle signs the Go-built darwin binaries (ad hoc and with a
// self-signed key), universal files of both (ad hoc and with a look-alike
// Developer ID chain, for a team ID) and node (ad hoc re-sign), and checks each
// output with go-macho.
func TestGoMachoOracle(t *testing.T) {
	arm64 := fixtures.GoDarwinBinary(t, "arm64")
	amd64 := fixtures.GoDarwinBinary(t, "amd64")
	linkerID := openGoMacho(t, arm64)[0].f.CodeSignature().CodeDirectories[0].ID

	rsa := selfSigned(t, applecert.RSA2048)
	p256 := selfSigned(t, applecert.ECDSAP256)
	pki := newFakePKI(t, "Apple Inc.")
	devidCA, devidKey := pki.intermediate("Developer ID Certification Authority", "Apple Certification Authority", applecert.OIDCADeveloperID)
	devid := pki.leaf(devidCA, devidKey, "Developer ID Application", "DEVIDTEAM1", applecert.OIDExtDeveloperIDApplication)
	devid.Chain = []*x509.Certificate{devidCA, pki.root}

	a, err := os.ReadFile(arm64)
	if err != nil {
		t.Fatal(err)
	}
	x, err := os.ReadFile(amd64)
	if err != nil {
		t.Fatal(err)
	}
	universal := writeTemp(t, "hello-universal", machotest.Universal(a, x))

	ents := mustEntitlements(t, `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.security.cs.allow-jit</key>
	<true/>
</dict>
</plist>
`)

	for _, tc := range []struct {
		name string
		in   string
		opts Options
		want oracleWant
	}{
		{"arm64-adhoc", arm64, Options{},
			oracleWant{identifier: linkerID, flags: blob.FlagAdhoc}},
		{"amd64-adhoc", amd64, Options{},
			oracleWant{identifier: "hello-amd64", flags: blob.FlagAdhoc}},
		{"arm64-selfsigned-rsa", arm64, Options{Identity: rsa, Identifier: "com.example.oracle", Flags: flagsPtr(blob.FlagRuntime), Entitlements: ents},
			oracleWant{identifier: "com.example.oracle", flags: blob.FlagRuntime, cert: rsa.Certificate, entitlements: true, designated: true}},
		{"amd64-selfsigned-p256", amd64, Options{Identity: p256},
			oracleWant{identifier: "hello-amd64", flags: 0, cert: p256.Certificate, designated: true}},
		{"universal-adhoc", universal, Options{},
			oracleWant{identifier: linkerID, flags: blob.FlagAdhoc}},
		{"universal-developer-id", universal, Options{Identity: devid, Identifier: "com.example.universal", Flags: flagsPtr(blob.FlagRuntime), appleRoots: pki.isApple},
			oracleWant{identifier: "com.example.universal", teamID: "DEVIDTEAM1", flags: blob.FlagRuntime, cert: devid.Certificate, designated: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "signed")
			res, err := SignFile(context.Background(), tc.in, out, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkWithGoMacho(t, out, res, tc.want)
		})
	}
}

// Re-signing Apple's signature of node ad hoc, read back by go-macho: the
// identifier, hardened runtime (with Apple's runtime version) and Apple's DER
// entitlements are kept, and all 36 000 page hashes are right.
func TestGoMachoOracleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("signs the 147 MB node fixture")
	}
	node := fixtures.NodeDarwinArm64(t)
	apple := openGoMacho(t, node)[0].f.CodeSignature()
	out := filepath.Join(t.TempDir(), "node")
	res, err := SignFile(context.Background(), node, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkWithGoMacho(t, out, res, oracleWant{
		identifier: "node", flags: blob.FlagRuntime | blob.FlagAdhoc,
		entitlements: true, entitlementsDER: apple.EntitlementsDER,
	})
}

// The oracle can fail: one flipped byte in a code page of a signed output is
// reported as that page's slot, by go-macho's hash against the recomputed one.
func TestGoMachoOracleDetectsTampering(t *testing.T) {
	signed := filepath.Join(t.TempDir(), "signed")
	if _, err := SignFile(context.Background(), fixtures.GoDarwinBinary(t, "amd64"), signed, Options{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	cd := openGoMacho(t, signed)[0].f.CodeSignature().CodeDirectories[0]
	if err := checkPageHashes(bytes.NewReader(data), 0, cd); err != nil {
		t.Fatalf("untouched output: %v", err)
	}
	const off = 2*4096 + 123 // in __TEXT, well below the code limit
	data[off] ^= 0x01
	tampered := writeTemp(t, "tampered", data)
	cd = openGoMacho(t, tampered)[0].f.CodeSignature().CodeDirectories[0]
	err = checkPageHashes(bytes.NewReader(data), 0, cd)
	if err == nil {
		t.Fatal("a flipped code byte was not detected")
	}
	if !strings.Contains(err.Error(), "1 of ") || !strings.Contains(err.Error(), "slot 2 ") {
		t.Errorf("want exactly slot 2 reported, got: %v", err)
	}
}
