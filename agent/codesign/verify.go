package codesign

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/entitlements"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/internal/applecert"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Roots, when not nil, requires the signer's certificate to chain to one of
	// them (with the code-signing usage). applecert.AppleRoots() checks for a
	// genuine Apple signature.
	Roots *x509.CertPool
	// TimestampRoots verify the time-stamp authority's chain; nil uses Roots.
	TimestampRoots *x509.CertPool
	// At is when the chain is checked if there is no verified time-stamp; zero
	// means now. With a verified time-stamp the chain is checked at its time, so
	// a signature made before the certificate expired stays valid.
	At time.Time
	// InfoPlist and CodeResources are the external files slots 1 and 3 cover;
	// nil checks the embedded __info_plist section (slot 1) or reports the slot
	// as not checked.
	InfoPlist     []byte
	CodeResources []byte
	// Workers bounds page hashing; 0 means GOMAXPROCS.
	Workers int

	// appleRoots replaces Apple's roots in tests; nil in production. It decides
	// what "anchor apple" and the team ID check accept, never the x509 chain
	// check, which uses Roots.
	appleRoots appleRoots
}

// Check is one verification step's outcome.
type Check struct {
	Name string
	// Err is nil when the check passed.
	Err error
	// Skipped explains why a check was not run (Err is nil then).
	Skipped string
	// Detail adds context to a passing check.
	Detail string
}

// Report is the outcome of verifying a file.
type Report struct {
	Slices []SliceReport
}

// SliceReport is the outcome for one Mach-O slice.
type SliceReport struct {
	Index      int
	Arch       string
	Identifier string
	TeamID     string
	Flags      uint32
	CDHash     []byte
	Signer     string
	Checks     []Check
}

// OK reports whether every check of every slice passed (skips are fine).
func (r *Report) OK() bool {
	for _, s := range r.Slices {
		if !s.OK() {
			return false
		}
	}
	return true
}

// OK reports whether every check passed.
func (s *SliceReport) OK() bool {
	for _, c := range s.Checks {
		if c.Err != nil {
			return false
		}
	}
	return len(s.Checks) > 0
}

// Err summarizes the failures, nil when there are none.
func (r *Report) Err() error {
	var errs []error
	for _, s := range r.Slices {
		for _, c := range s.Checks {
			if c.Err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", s.Arch, c.Name, c.Err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *SliceReport) pass(name, detail string) {
	s.Checks = append(s.Checks, Check{Name: name, Detail: detail})
}
func (s *SliceReport) fail(name string, err error) {
	s.Checks = append(s.Checks, Check{Name: name, Err: err})
}
func (s *SliceReport) skip(name, why string) {
	s.Checks = append(s.Checks, Check{Name: name, Skipped: why})
}

// VerifyFile verifies the signature of the Mach-O at path.
func VerifyFile(ctx context.Context, path string, opts VerifyOptions) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Verify(ctx, f, st.Size(), opts)
}

// Verify checks every slice's signature: structure, every page hash and special
// slot, the CMS signature and its digests, the time-stamp token and the
// certificate chain when roots are given, and the designated requirement
// against the signer. A returned error means the file could not be read as a
// Mach-O at all; problems with signatures are in the Report.
func Verify(ctx context.Context, r io.ReaderAt, size int64, opts VerifyOptions) (*Report, error) {
	bin, err := macho.Open(r, size)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for i, sl := range bin.Slices {
		sr := SliceReport{Index: i, Arch: macho.CPUName(sl.Arch.CPU, sl.Arch.SubCPU)}
		if sl.File == nil {
			sr.skip("slice", "not a Mach-O")
		} else if err := verifySlice(ctx, sl, &sr, &opts); err != nil {
			return nil, err
		}
		rep.Slices = append(rep.Slices, sr)
	}
	return rep, nil
}

func verifySlice(ctx context.Context, sl macho.Slice, sr *SliceReport, opts *VerifyOptions) error {
	f := sl.File
	sig, err := ReadSignature(f, sl.Reader)
	if err != nil {
		sr.fail("signature", err)
		return nil
	}
	primary := sig.Primary()
	sr.Identifier, sr.TeamID, sr.Flags = primary.Identifier, primary.TeamID, primary.Flags
	sr.CDHash = primary.CDHash()
	if len(sr.CDHash) > 20 {
		sr.CDHash = sr.CDHash[:20]
	}

	// Layout: where the signature sits.
	if le, err := f.Linkedit(); err != nil {
		sr.fail("layout", err)
	} else if end := le.FileOff + le.FileSize; uint64(sig.Offset+sig.Reserved) != end {
		sr.fail("layout", fmt.Errorf("the signature ends at %#x, not at the end of __LINKEDIT (%#x)", sig.Offset+sig.Reserved, end))
	} else {
		sr.pass("layout", fmt.Sprintf("signature at %#x, %d of %d reserved bytes used", sig.Offset, len(sig.Raw), sig.Reserved))
	}

	// Code pages, per CodeDirectory.
	if err := verifyCode(ctx, sl, sig, sr, opts); err != nil {
		return err
	}

	// Special slots.
	info := opts.InfoPlist
	if info == nil {
		if sec := f.Section("__TEXT", "__info_plist"); sec != nil {
			info, _ = f.SectionData(sl.Reader, sec, maxInfoPlist)
		}
	}
	for _, cd := range sig.CodeDirectories {
		verifySpecials(sig, cd, info, opts.CodeResources, sr)
	}

	// Entitlements consistency.
	verifyEntitlements(sig, f, sr)

	// Flags.
	adhoc := primary.Flags&blob.FlagAdhoc != 0
	switch {
	case sig.CMS == nil && !adhoc:
		sr.fail("cms", errors.New("the signature has no CMS slot (0x10000) and is not ad hoc"))
		return nil
	case sig.CMS == nil:
		sr.pass("cms", "ad-hoc signature without a CMS slot (as the linker writes them)")
		verifyRequirements(sig, nil, nil, sr)
		return nil
	case len(sig.CMS) == 0 && !adhoc:
		sr.fail("cms", errors.New("the CMS slot is empty but the adhoc flag is not set"))
		return nil
	case len(sig.CMS) == 0:
		sr.pass("cms", "ad-hoc signature (no CMS)")
		verifyRequirements(sig, nil, nil, sr)
		return nil
	case adhoc:
		sr.fail("flags", errors.New("the adhoc flag is set on a signature with a CMS signer"))
	}

	sd, err := cms.Parse(sig.CMS)
	if err != nil {
		sr.fail("cms", err)
		return nil
	}
	if c := sd.Signer.SignerCertificate; c != nil {
		sr.Signer = c.Subject.CommonName
	}
	if err := sd.Verify(primary.Raw); err != nil {
		sr.fail("cms", err)
	} else {
		sr.pass("cms", fmt.Sprintf("%s signature by %q over the CodeDirectory", sd.Signer.SignatureAlgorithmName, sr.Signer))
	}
	verifyCDHashAttributes(sig, sd, sr)

	// Time-stamp, then the chain at the time-stamp's time.
	at := opts.At
	tsRoots := opts.TimestampRoots
	if tsRoots == nil {
		tsRoots = opts.Roots
	}
	switch ts := sd.Signer.TimeStamp; {
	case ts == nil:
		sr.skip("time-stamp", "no time-stamp token")
	case tsRoots == nil:
		sr.skip("time-stamp", fmt.Sprintf("token from %s not checked (no roots given)", ts.GenTime.UTC().Format(time.RFC3339)))
	default:
		if err := sd.VerifyTimestamp(tsRoots); err != nil {
			sr.fail("time-stamp", err)
		} else {
			sr.pass("time-stamp", "issued "+ts.GenTime.UTC().Format(time.RFC3339))
			if at.IsZero() {
				at = ts.GenTime
			}
		}
	}
	var chain []*x509.Certificate
	if opts.Roots == nil {
		sr.skip("certificate chain", "no roots given")
	} else {
		chains, err := sd.VerifyChain(opts.Roots, at)
		if err != nil {
			sr.fail("certificate chain", err)
		} else {
			chain = chains[0]
			when := "now"
			if !at.IsZero() {
				when = at.UTC().Format(time.RFC3339)
			}
			sr.pass("certificate chain", fmt.Sprintf("%d certificates up to %q, valid at %s", len(chain), chain[len(chain)-1].Subject.CommonName, when))
		}
	}
	leaf := sd.Signer.SignerCertificate
	if chain == nil && leaf != nil {
		chain = append([]*x509.Certificate{leaf}, applecert.IssuerPath(leaf, sd.Certificates)...)
	}

	if leaf != nil {
		verifyTeamID(sig, leaf, sd.Certificates, opts.appleRoots, sr)
	}
	verifyRequirements(sig, chain, opts.appleRoots, sr)
	return nil
}

// verifyTeamID checks that every CodeDirectory carries the team ID the
// certificate implies: its subject OU when it chains to Apple, none otherwise.
func verifyTeamID(sig *Signature, leaf *x509.Certificate, certs []*x509.Certificate, roots appleRoots, sr *SliceReport) {
	want := ""
	if _, ok := roots.chain(leaf, certs); ok {
		want = applecert.TeamID(leaf)
	}
	for _, cd := range sig.CodeDirectories {
		if cd.TeamID != want {
			sr.fail("team ID", fmt.Errorf("%s says %q but the certificate implies %q", cd.Slot, cd.TeamID, want))
			return
		}
	}
	if want != "" {
		sr.pass("team ID", want)
	}
}

// verifyCode recomputes every page hash of every CodeDirectory.
func verifyCode(ctx context.Context, sl macho.Slice, sig *Signature, sr *SliceReport, opts *VerifyOptions) error {
	primary := sig.Primary()
	for _, cd := range sig.CodeDirectories {
		name := fmt.Sprintf("%s (%s)", cd.Slot, cd.HashType)
		if cd.Identifier != primary.Identifier {
			sr.fail(name, fmt.Errorf("identifier %q differs from the primary CodeDirectory's %q", cd.Identifier, primary.Identifier))
			continue
		}
		if _, ok := cd.HashType.Hash(); !ok {
			sr.fail(name, fmt.Errorf("unsupported hash type %d", cd.HashType))
			continue
		}
		if int64(cd.CodeLimit) != sig.Offset {
			sr.fail(name, fmt.Errorf("code limit %#x is not the signature's offset %#x", cd.CodeLimit, sig.Offset))
			continue
		}
		ps := cd.PageSize()
		if want := pageCount(int64(cd.CodeLimit), ps); int64(len(cd.Code)) != want {
			sr.fail(name, fmt.Errorf("%d code slots for a code limit of %d bytes (want %d)", len(cd.Code), cd.CodeLimit, want))
			continue
		}
		hs, err := HashPages(ctx, sl.Reader, int64(cd.CodeLimit), ps, []blob.HashType{cd.HashType}, opts.Workers)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			sr.fail(name, err)
			continue
		}
		var bad []int
		for i, want := range cd.Code {
			if !bytes.Equal(hs[0].Page(i), want) {
				bad = append(bad, i)
			}
		}
		if len(bad) > 0 {
			sr.fail(name, fmt.Errorf("%d of %d page hashes do not match the file (first: page %d at offset %#x); the code was modified after signing", len(bad), len(cd.Code), bad[0], int64(bad[0])*ps))
			continue
		}
		sr.pass(name, fmt.Sprintf("%d page hashes match, version %#x", len(cd.Code), cd.Version))
	}
	return nil
}

func verifySpecials(sig *Signature, cd CodeDirectory, info, resources []byte, sr *SliceReport) {
	name := fmt.Sprintf("%s special slots", cd.Slot)
	zero := make([]byte, cd.HashSize)
	var problems []error
	var notes []string
	for s := blob.Slot(1); s <= blob.Slot(len(cd.Special)); s++ {
		have := cd.SpecialHash(s)
		if b, ok := sig.SuperBlob.Find(s); ok {
			if want := cd.HashType.Sum(b); !bytes.Equal(have, want) {
				problems = append(problems, fmt.Errorf("slot %d (%s) hash %x does not match its blob (%x)", s, s, have, want))
			}
			continue
		}
		external := map[blob.Slot][]byte{blob.SlotInfo: info, blob.SlotResourceDir: resources}[s]
		switch {
		case bytes.Equal(have, zero):
		case (s == blob.SlotInfo || s == blob.SlotResourceDir) && external == nil:
			notes = append(notes, fmt.Sprintf("slot %d (%s) binds an external file that was not given", s, s))
		case s == blob.SlotInfo || s == blob.SlotResourceDir:
			if want := cd.HashType.Sum(external); !bytes.Equal(have, want) {
				problems = append(problems, fmt.Errorf("slot %d (%s) hash %x does not match the given file (%x)", s, s, have, want))
			}
		default:
			problems = append(problems, fmt.Errorf("slot %d (%s) has a hash but the signature has no such blob", s, s))
		}
	}
	// Every embedded special blob must be covered.
	for _, e := range sig.SuperBlob.Entries {
		if e.Slot >= 1 && e.Slot <= blob.MaxSpecialSlot && int(e.Slot) > len(cd.Special) {
			problems = append(problems, fmt.Errorf("slot %d (%s) is embedded but not covered by the CodeDirectory", e.Slot, e.Slot))
		}
	}
	if len(problems) > 0 {
		sr.fail(name, errors.Join(problems...))
		return
	}
	detail := fmt.Sprintf("%d special slots match", len(cd.Special))
	for _, n := range notes {
		detail += "; " + n
	}
	sr.pass(name, detail)
}

func verifyEntitlements(sig *Signature, f *macho.File, sr *SliceReport) {
	if sig.Entitlements == nil && sig.EntitlementsDER == nil {
		return
	}
	var xv, dv *entitlements.Value
	var err error
	if sig.Entitlements != nil {
		if xv, err = entitlements.ParseXML(sig.Entitlements); err != nil {
			sr.fail("entitlements", err)
			return
		}
	}
	if sig.EntitlementsDER != nil {
		if dv, err = entitlements.ParseDER(sig.EntitlementsDER); err != nil {
			sr.fail("entitlements", err)
			return
		}
	}
	if xv != nil && dv != nil {
		xd, err := xv.DER()
		if err != nil || !bytes.Equal(xd, sig.EntitlementsDER) {
			sr.fail("entitlements", errors.New("the XML and DER entitlements differ"))
			return
		}
	}
	if xv != nil && dv == nil && f.IsExecutable() {
		sr.pass("entitlements", "XML only (no DER form; macOS 12+ expects both for executables)")
		return
	}
	sr.pass("entitlements", "XML and DER agree")
}

func verifyCDHashAttributes(sig *Signature, sd *cms.SignedData, sr *SliceReport) {
	si := sd.Signer
	if len(si.CDHashes) == 0 && si.CDHashesPlist == nil {
		sr.skip("cdhash attributes", "the CMS has no cdhash attributes")
		return
	}
	var problems []error
	if len(si.CDHashes) > 0 && len(si.CDHashes) != len(sig.CodeDirectories) {
		problems = append(problems, fmt.Errorf("the CMS lists %d cdhashes for %d CodeDirectories", len(si.CDHashes), len(sig.CodeDirectories)))
	}
	if si.CDHashesPlist != nil && len(si.CDHashesPlist.Hashes) != len(sig.CodeDirectories) {
		problems = append(problems, fmt.Errorf("the cdhashes plist lists %d hashes for %d CodeDirectories", len(si.CDHashesPlist.Hashes), len(sig.CodeDirectories)))
	}
	for i, cd := range sig.CodeDirectories {
		h := cd.CDHash()
		if i < len(si.CDHashes) && (!bytes.Equal(si.CDHashes[i].Digest, h) || hashFor(si.CDHashes[i].Hash) != cd.HashType) {
			problems = append(problems, fmt.Errorf("cdhash %d in the CMS does not match %s", i, cd.Slot))
		}
		if si.CDHashesPlist != nil && i < len(si.CDHashesPlist.Hashes) && !bytes.Equal(si.CDHashesPlist.Hashes[i], h[:min(20, len(h))]) {
			problems = append(problems, fmt.Errorf("cdhash %d in the plist does not match %s", i, cd.Slot))
		}
	}
	if len(problems) > 0 {
		sr.fail("cdhash attributes", errors.Join(problems...))
		return
	}
	sr.pass("cdhash attributes", fmt.Sprintf("the signed attributes name all %d CodeDirectories", len(sig.CodeDirectories)))
}

func verifyRequirements(sig *Signature, chain []*x509.Certificate, roots appleRoots, sr *SliceReport) {
	if sig.Requirements == nil {
		sr.skip("designated requirement", "the signature has no RequirementSet (slot 2)")
		return
	}
	dr := sig.Requirements.Designated()
	if dr == nil {
		if len(sig.CMS) == 0 {
			sr.pass("designated requirement", "none (ad hoc)")
		} else {
			sr.skip("designated requirement", "none in the signature")
		}
		return
	}
	if dr.Expr == nil {
		sr.skip("designated requirement", "not in expression form")
		return
	}
	var cdhashes [][]byte
	for _, cd := range sig.CodeDirectories {
		cdhashes = append(cdhashes, cd.CDHash())
	}
	ok, why, err := requirement.Eval(dr.Expr, &requirement.Context{
		Identifier:  sig.Primary().Identifier,
		Chain:       chain,
		IsAppleRoot: roots.isRoot,
		CDHashes:    cdhashes,
	})
	switch {
	case err != nil:
		sr.skip("designated requirement", dr.String()+": "+err.Error())
	case !ok:
		sr.fail("designated requirement", fmt.Errorf("%s is not satisfied: %s", dr, why))
	default:
		sr.pass("designated requirement", dr.String())
	}
}
