package codesign

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
)

func readSig(t testing.TB, path string) (*macho.File, *Signature) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := macho.Parse(fh, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSignature(f, fh)
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

// The Go linker signs darwin/arm64 output ad hoc ("linker-signed"). Re-signed by
// us, every page hash except page 0 must equal the linker's: only page 0 holds
// what changes (LC_CODE_SIGNATURE's size, __LINKEDIT's sizes).
func TestGoLinkerOracleARM64(t *testing.T) {
	src := fixtures.GoDarwinBinary(t, "arm64")
	_, linker := readSig(t, src)
	lcd := linker.Primary()
	if lcd.Flags != blob.FlagAdhoc|blob.FlagLinkerSigned || lcd.Version != blob.CDVersionExecSeg {
		t.Fatalf("the Go linker's signature is not what the oracle assumes: flags %#x version %#x", lcd.Flags, lcd.Version)
	}
	out := filepath.Join(t.TempDir(), "hello")
	res, err := SignFile(context.Background(), src, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, ours := readSig(t, out)
	cd := ours.Primary()
	if cd.Flags != blob.FlagAdhoc {
		t.Errorf("flags %#x: linker-signed must be dropped, adhoc kept", cd.Flags)
	}
	if cd.Identifier != lcd.Identifier || res.Slices[0].Identifier != lcd.Identifier {
		t.Errorf("identifier %q, the linker's was %q", cd.Identifier, lcd.Identifier)
	}
	if cd.CodeLimit != lcd.CodeLimit || len(cd.Code) != len(lcd.Code) {
		t.Fatalf("code limit %d (%d pages), linker %d (%d pages)", cd.CodeLimit, len(cd.Code), lcd.CodeLimit, len(lcd.Code))
	}
	if bytes.Equal(cd.Code[0], lcd.Code[0]) {
		t.Error("page 0 should differ (new __LINKEDIT vmsize and signature size)")
	}
	for i := 1; i < len(cd.Code); i++ {
		if !bytes.Equal(cd.Code[i], lcd.Code[i]) {
			t.Fatalf("page %d of %d differs from the Go linker's hash", i, len(cd.Code))
		}
	}
	rep, err := VerifyFile(context.Background(), out, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("our re-signed binary does not verify: %v", rep.Err())
	}
	// The linker's own signature verifies with our verifier too.
	rep, err = VerifyFile(context.Background(), src, VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("the Go linker's signature does not verify: %v %v", err, rep.Err())
	}
}

// darwin/amd64 output is unsigned: signing adds LC_CODE_SIGNATURE in the gap after
// the load commands and the result verifies.
func TestGoLinkerOracleAMD64(t *testing.T) {
	src := fixtures.GoDarwinBinary(t, "amd64")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := macho.Parse(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if f.CodeSignature != nil {
		t.Fatal("expected the Go linker's amd64 output to be unsigned")
	}
	out := filepath.Join(t.TempDir(), "hello")
	if _, err := SignFile(context.Background(), src, out, Options{}); err != nil {
		t.Fatal(err)
	}
	nf, sig := readSig(t, out)
	if nf.NCmds != f.NCmds+1 || nf.SizeOfCmds != f.SizeOfCmds+16 {
		t.Errorf("ncmds %d sizeofcmds %d, want %d %d", nf.NCmds, nf.SizeOfCmds, f.NCmds+1, f.SizeOfCmds+16)
	}
	if got := sig.Primary().Identifier; got != filepath.Base(src) {
		t.Errorf("identifier %q, want the file name", got)
	}
	rep, err := VerifyFile(context.Background(), out, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("signed amd64 binary does not verify: %v", rep.Err())
	}
}

// A real Apple Developer ID signature: node from npm. Every check passes,
// including the time-stamp token and the chain to Apple Root CA at the
// time-stamp's time (the leaf certificate has since expired).
func TestVerifyNode(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the 147 MB node fixture")
	}
	node := fixtures.NodeDarwinArm64(t)
	rep, err := VerifyFile(context.Background(), node, VerifyOptions{Roots: applecert.AppleRoots()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("node does not verify: %v", rep.Err())
	}
	s := rep.Slices[0]
	if s.TeamID != "HX7739G8FX" || s.Flags&blob.FlagRuntime == 0 {
		t.Errorf("team %q flags %#x", s.TeamID, s.Flags)
	}
	passed := map[string]bool{}
	for _, c := range s.Checks {
		if c.Err == nil && c.Skipped == "" {
			passed[c.Name] = true
		}
	}
	for _, want := range []string{"cms", "time-stamp", "certificate chain", "designated requirement", "cdhash attributes", "entitlements", "team ID"} {
		if !passed[want] {
			t.Errorf("check %q did not pass: %+v", want, s.Checks)
		}
	}
}

// Our default designated requirement for a Developer ID certificate is byte for
// byte the one Apple's codesign embedded in node.
func TestNodeDesignatedRequirement(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the 147 MB node fixture")
	}
	_, sig := readSig(t, fixtures.NodeDarwinArm64(t))
	got, ok := sig.SuperBlob.Find(blob.SlotRequirements)
	if !ok {
		t.Fatal("node has no requirement set")
	}
	want := requirement.DesignatedSet(requirement.Designated("node", requirement.Signer{Kind: requirement.SignerDeveloperID, TeamID: "HX7739G8FX"})).Bytes()
	if !bytes.Equal(got, want) {
		t.Fatalf("node's RequirementSet\n%x\nours\n%x", got, want)
	}
}
