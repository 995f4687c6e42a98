// Package codesign signs and verifies Mach-O binaries the way Apple's codesign and
// rcodesign do: CodeDirectories of page hashes, a RequirementSet, entitlements,
// and a CMS signature over the CodeDirectory carrying Apple's cdhash attributes
// and an RFC 3161 time-stamp.
//
// Signing is a streaming, two-phase pipeline (see the package's Sign):
//
//  1. Plan: parse each slice's header, resolve the settings (identifier, flags,
//     digests, entitlements, requirements, certificate), estimate the signature
//     size and lay out the output. Everything the page hashes cover is now fixed.
//  2. Write: copy the code to the output while hashing its pages on all cores,
//     then build the CodeDirectories, get the CMS signature (possibly from a
//     remote signer) and append the signature.
//
// A 150 MB binary is read about twice (once to hash, once by the kernel to copy)
// and never held in memory.
package codesign

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/entitlements"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
)

// Options configure a signing operation. The zero value signs ad hoc, keeping
// what an existing signature says about identifier, flags, runtime version and
// entitlements, like rcodesign.
type Options struct {
	// Identity signs with a certificate; nil signs ad hoc.
	Identity *Identity
	// Identifier is the signing identifier. Empty keeps the existing one, or
	// derives it from the file name (last extension removed unless numeric).
	Identifier string
	// Digests are the CodeDirectory hash types, primary first. Empty means SHA-256,
	// or SHA-1 primary plus a SHA-256 alternate when the deployment target predates
	// SHA-256 support (macOS < 10.11.4, iOS/tvOS < 11, watchOS) or is unknown.
	Digests []blob.HashType
	// Flags replaces the code signature flags (CS_* bits); nil keeps the existing
	// signature's. adhoc is always derived from Identity and linker-signed is
	// always removed.
	Flags *uint32
	// RuntimeVersion is the hardened runtime version; zero keeps the existing one
	// or, with the runtime flag, uses the SDK version from the binary.
	RuntimeVersion macho.Version
	// Entitlements replaces the entitlements; nil keeps the existing ones.
	Entitlements *entitlements.Value
	// InfoPlist is the Info.plist whose hash goes in special slot 1; nil uses the
	// binary's __TEXT,__info_plist section if it has one.
	InfoPlist []byte
	// CodeResources is the _CodeSignature/CodeResources file hashed in slot 3.
	CodeResources []byte
	// Requirements replaces the requirement set; nil derives the designated
	// requirement from the certificate (and an empty set when ad hoc).
	Requirements *requirement.Set
	// SigningTime goes in the CMS signing-time attribute; zero means now.
	SigningTime time.Time
	// Timestamper obtains an RFC 3161 token for the CMS signature; nil for none.
	Timestamper cms.Timestamper
	// Workers bounds the page-hashing goroutines; 0 means GOMAXPROCS.
	Workers int
	// Log receives progress messages; nil discards them.
	Log func(format string, args ...any)

	// appleRoots replaces Apple's roots in tests; nil in production.
	appleRoots appleRoots
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// Result describes what was signed.
type Result struct {
	Size   int64
	Slices []SliceResult
}

// SliceResult describes one signed Mach-O slice.
type SliceResult struct {
	Arch       string
	Identifier string
	TeamID     string
	Flags      uint32
	// CDHashes lists each CodeDirectory's digest with its own hash, slot order.
	CDHashes []cms.CDHash
	// SignatureSize is the SuperBlob's length; Reserved the space set aside.
	SignatureSize int
	Reserved      int64
	// Skipped is set for a universal slice that is not a Mach-O (copied as is).
	Skipped bool
}

// CDHash returns the cdhash Apple tools display: the primary CodeDirectory's
// digest truncated to 20 bytes.
func (s SliceResult) CDHash() []byte {
	if len(s.CDHashes) == 0 {
		return nil
	}
	return s.CDHashes[0].Digest[:20]
}

// SignFile signs the Mach-O at inPath and writes the result to outPath, which may
// be the same path. The output is written to a temporary file in outPath's
// directory and renamed into place only when complete, so a failure (bad input,
// a refused remote signature, an interrupt) never leaves a partial file, and
// re-signing in place never corrupts the input.
func SignFile(ctx context.Context, inPath, outPath string, opts Options) (res *Result, err error) {
	in, err := os.Open(inPath)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", inPath)
	}
	if ost, err := os.Stat(outPath); err == nil && ost.IsDir() {
		return nil, fmt.Errorf("output %s is a directory", outPath)
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".farsign-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, err = Sign(ctx, in, st.Size(), tmp, filepath.Base(inPath), opts)
	if err != nil {
		return nil, err
	}
	if err = tmp.Chmod(st.Mode().Perm()); err != nil {
		return nil, err
	}
	if err = tmp.Sync(); err != nil {
		return nil, err
	}
	if err = tmp.Close(); err != nil {
		return nil, err
	}
	if err = os.Rename(tmp.Name(), outPath); err != nil {
		return nil, err
	}
	return res, nil
}

// Sign signs the Mach-O (thin or universal) of the given size read from in and
// writes the signed file to out. name is the input's file name, used to derive
// an identifier when there is no other. When out is an *os.File the unchanged
// code is copied by the kernel (copy_file_range).
func Sign(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, name string, opts Options) (*Result, error) {
	bin, err := macho.Open(in, size)
	if err != nil {
		return nil, err
	}
	var facts *certFacts
	if opts.Identity != nil {
		if facts, err = resolveIdentity(opts.Identity, opts.appleRoots); err != nil {
			return nil, err
		}
		if facts.warning != "" {
			opts.logf("warning: %s", facts.warning)
		}
	}

	machos := 0
	for _, sl := range bin.Slices {
		if sl.File != nil {
			machos++
		}
	}
	if machos == 0 {
		return nil, errors.New("the universal file contains no Mach-O slice to sign")
	}

	// Read existing signatures first: settings shared by all slices (identifier,
	// SHA-1 need) depend on every slice.
	existing := make([]*Signature, len(bin.Slices))
	for i, sl := range bin.Slices {
		if sl.File == nil {
			continue
		}
		if err := sl.File.CheckSignable(sl.Reader); err != nil {
			return nil, sliceErr(bin, i, err)
		}
		sig, err := ReadSignature(sl.File, sl.Reader)
		if err != nil && !errors.Is(err, ErrUnsigned) {
			return nil, sliceErr(bin, i, fmt.Errorf("existing signature: %w", err))
		}
		existing[i] = sig
	}
	identifier := opts.Identifier
	if identifier == "" {
		for _, s := range existing {
			if s != nil && s.Primary().Identifier != "" {
				identifier = s.Primary().Identifier
				opts.logf("keeping the existing identifier %q", identifier)
				break
			}
		}
	}
	if identifier == "" {
		identifier = PathIdentifier(name)
		opts.logf("identifier %q (from the file name)", identifier)
	}
	digests := opts.Digests
	if len(digests) == 0 {
		digests = []blob.HashType{blob.HashSHA256}
		for _, sl := range bin.Slices {
			if sl.File != nil && needsSHA1(sl.File.Target) {
				digests = []blob.HashType{blob.HashSHA1, blob.HashSHA256}
				opts.logf("adding SHA-1 digests: the deployment target predates SHA-256 code signatures or is unknown")
				break
			}
		}
	}
	if err := checkDigests(digests); err != nil {
		return nil, err
	}

	jobs := make([]*sliceJob, len(bin.Slices))
	for i, sl := range bin.Slices {
		if sl.File == nil {
			jobs[i] = &sliceJob{slice: sl, skip: true}
			continue
		}
		j, err := planSlice(sl, existing[i], identifier, digests, facts, &opts)
		if err != nil {
			return nil, sliceErr(bin, i, err)
		}
		jobs[i] = j
	}

	res := &Result{}
	if !bin.Fat {
		sr, err := jobs[0].write(ctx, out, &opts, facts)
		if err != nil {
			return nil, err
		}
		res.Slices = append(res.Slices, sr)
		res.Size = jobs[0].size()
		return res, nil
	}

	archs := make([]macho.Arch, len(jobs))
	for i, j := range jobs {
		archs[i] = macho.Arch{CPU: j.slice.Arch.CPU, SubCPU: j.slice.Arch.SubCPU, Size: uint64(j.size())}
	}
	header, offsets, err := macho.FatLayout(archs)
	if err != nil {
		return nil, err
	}
	if _, err := out.Write(header); err != nil {
		return nil, err
	}
	pos := int64(len(header))
	for i, j := range jobs {
		if gap := int64(offsets[i]) - pos; gap > 0 {
			if _, err := out.Write(make([]byte, gap)); err != nil {
				return nil, err
			}
			pos += gap
		}
		if j.skip {
			opts.logf("slice %d (%s) is not a Mach-O; copying it unsigned", i, macho.CPUName(j.slice.Arch.CPU, j.slice.Arch.SubCPU))
			if _, err := io.Copy(out, io.NewSectionReader(j.slice.Reader, 0, j.slice.Reader.Size())); err != nil {
				return nil, err
			}
			res.Slices = append(res.Slices, SliceResult{Arch: macho.CPUName(j.slice.Arch.CPU, j.slice.Arch.SubCPU), Skipped: true})
		} else {
			sr, err := j.write(ctx, out, &opts, facts)
			if err != nil {
				return nil, sliceErr(bin, i, err)
			}
			res.Slices = append(res.Slices, sr)
		}
		pos += j.size()
	}
	res.Size = pos
	return res, nil
}

func sliceErr(bin *macho.Binary, i int, err error) error {
	if !bin.Fat {
		return err
	}
	sl := bin.Slices[i]
	return fmt.Errorf("slice %d (%s): %w", i, macho.CPUName(sl.Arch.CPU, sl.Arch.SubCPU), err)
}

func checkDigests(ds []blob.HashType) error {
	seen := map[blob.HashType]bool{}
	if len(ds) > int(blob.SlotAlternateCodeDirectoryMax-blob.SlotAlternateCodeDirectory0)+2 {
		return fmt.Errorf("too many digests (%d)", len(ds))
	}
	for _, d := range ds {
		if _, ok := d.Hash(); !ok || d == blob.HashSHA256Truncated {
			return fmt.Errorf("unsupported digest %s", d)
		}
		if seen[d] {
			return fmt.Errorf("digest %s given twice", d)
		}
		seen[d] = true
	}
	return nil
}

// needsSHA1 reports whether a deployment target needs a SHA-1 primary
// CodeDirectory: no targeting at all, macOS before 10.11.4, iOS/tvOS before 11,
// or watchOS (rcodesign's rules, matching Apple's).
func needsSHA1(t *macho.Target) bool {
	if t == nil {
		return true
	}
	switch t.Platform {
	case macho.PlatformMacOS:
		return t.MinOS < macho.MakeVersion(10, 11, 4)
	case macho.PlatformIOS, macho.PlatformTVOS:
		return t.MinOS < macho.MakeVersion(11, 0, 0)
	case macho.PlatformWatchOS:
		return true
	}
	return false
}

// PathIdentifier derives a signing identifier from a file name as rcodesign does:
// drop the last extension unless it is numeric, then strip a trailing version
// suffix but keep its first number ("libfoo1.2.3.dylib" -> "libfoo1",
// "tool.signed" -> "tool").
func PathIdentifier(path string) string {
	name := filepath.Base(path)
	id := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 && !allDigits(name[i+1:]) {
		id = name[:i]
	}
	if id == "" || id[0] == '.' || id[0] >= '0' && id[0] <= '9' {
		return id
	}
	prefix := strings.TrimRight(id, "0123456789.")
	stripped := id[len(prefix):]
	if stripped == "" {
		return id
	}
	if stripped[0] == '.' {
		prefix = id[:len(prefix)+1]
		stripped = stripped[1:]
	}
	n := 0
	for n < len(stripped) && stripped[n] >= '0' && stripped[n] <= '9' {
		n++
	}
	return prefix + stripped[:n]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// maxInfoPlist bounds an embedded __info_plist section.
const maxInfoPlist = 1 << 20

// sliceJob is one thin Mach-O's signing plan.
type sliceJob struct {
	slice macho.Slice
	skip  bool

	file       *macho.File
	identifier string
	flags      uint32
	digests    []blob.HashType
	runtime    macho.Version
	runtimeSet bool
	execBase   uint64
	execLimit  uint64
	execFlags  uint64
	teamID     string
	// specials are the blobs hashed into special slots and embedded.
	specials map[blob.Slot][]byte
	// external are hashed into special slots but not embedded (Info.plist, CodeResources).
	external map[blob.Slot][]byte
	plan     *macho.Plan
}

func (j *sliceJob) size() int64 {
	if j.skip {
		return j.slice.Reader.Size()
	}
	return j.plan.Size
}

// planSlice resolves one slice's settings and lays out its signed form.
func planSlice(sl macho.Slice, old *Signature, identifier string, digests []blob.HashType, facts *certFacts, opts *Options) (*sliceJob, error) {
	f := sl.File
	j := &sliceJob{
		slice:      sl,
		file:       f,
		identifier: identifier,
		digests:    digests,
		specials:   map[blob.Slot][]byte{},
		external:   map[blob.Slot][]byte{},
	}
	var oldCD *CodeDirectory
	if old != nil {
		oldCD = old.Primary()
	}

	// Flags: explicit, else kept; adhoc follows the signing mode; never linker-signed.
	switch {
	case opts.Flags != nil:
		j.flags = *opts.Flags
	case oldCD != nil:
		j.flags = oldCD.Flags
	}
	j.flags &^= blob.FlagLinkerSigned
	if facts == nil {
		j.flags |= blob.FlagAdhoc
	} else {
		j.flags &^= blob.FlagAdhoc
		j.teamID = facts.teamID
	}

	// Runtime version: explicit, else kept, else the SDK when hardened.
	switch {
	case opts.RuntimeVersion != 0:
		j.runtime, j.runtimeSet = opts.RuntimeVersion, true
	case oldCD != nil && oldCD.Version >= blob.CDVersionRuntime && oldCD.Runtime != 0:
		j.runtime, j.runtimeSet = macho.Version(oldCD.Runtime), true
	case j.flags&blob.FlagRuntime != 0:
		if f.Target != nil {
			j.runtime, j.runtimeSet = f.Target.SDK, true
		} else {
			opts.logf("warning: hardened runtime requested but the binary has no SDK version; set a runtime version or the OS may reject the signature")
		}
	}

	text := f.Segment("__TEXT")
	if text == nil {
		return nil, errors.New("cannot sign: the Mach-O has no __TEXT segment")
	}
	j.execBase, j.execLimit = text.FileOff, text.FileOff+text.FileSize

	// Requirements.
	reqs := opts.Requirements
	if reqs == nil {
		if facts != nil {
			reqs = requirement.DesignatedSet(requirement.Designated(identifier, facts.designated))
		} else {
			reqs = &requirement.Set{}
		}
	}
	j.specials[blob.SlotRequirements] = reqs.Bytes()

	// Entitlements: explicit, else kept from the existing signature.
	ents := opts.Entitlements
	if ents == nil && old != nil {
		var err error
		switch {
		case old.Entitlements != nil:
			ents, err = entitlements.ParseXML(old.Entitlements)
		case old.EntitlementsDER != nil:
			ents, err = entitlements.ParseDER(old.EntitlementsDER)
		}
		if err != nil {
			return nil, fmt.Errorf("existing entitlements: %w", err)
		}
		if ents != nil {
			opts.logf("keeping the existing entitlements")
		}
	}
	var entsDER []byte
	if ents != nil {
		j.specials[blob.SlotEntitlements] = blob.Wrap(blob.MagicEntitlements, ents.XML())
		der, err := ents.DER()
		if err != nil {
			return nil, fmt.Errorf("entitlements: %w", err)
		}
		entsDER = blob.Wrap(blob.MagicEntitlementsDER, der)
		if f.IsExecutable() {
			j.specials[blob.SlotEntitlementsDER] = entsDER
		}
	}
	if f.IsExecutable() {
		j.execFlags = blob.ExecSegMainBinary
		if ents != nil {
			j.execFlags |= ents.ExecSegFlags()
		}
	}
	// Launch and library constraints are kept as they are.
	if old != nil {
		for s := blob.SlotLaunchConstraintsSelf; s <= blob.SlotLibraryConstraints; s++ {
			if b, ok := old.SuperBlob.Find(s); ok {
				j.specials[s] = append([]byte(nil), b...)
			}
		}
	}

	// External files.
	info := opts.InfoPlist
	if info == nil {
		if sec := f.Section("__TEXT", "__info_plist"); sec != nil {
			b, err := f.SectionData(sl.Reader, sec, maxInfoPlist)
			if err != nil {
				return nil, err
			}
			info = b
			opts.logf("binding the embedded __info_plist section (%d bytes)", len(b))
		}
	}
	if info != nil {
		j.external[blob.SlotInfo] = info
	}
	if opts.CodeResources != nil {
		j.external[blob.SlotResourceDir] = opts.CodeResources
	}

	// Size estimate (rcodesign's formula), then the layout.
	codeLimit, err := f.CodeLimit()
	if err != nil {
		return nil, err
	}
	est := estimateSize(codeLimit, digests, j.specials, entsDER, facts, opts.Timestamper != nil && facts != nil)
	plan, err := f.PlanSignature(est)
	if err != nil {
		return nil, err
	}
	j.plan = plan
	return j, nil
}

// estimateSize reserves space for the signature with rcodesign's formula, so that
// output sizes match rcodesign's byte for byte:
//
//	1024 per CodeDirectory + the page hashes of every digest + the special blobs
//	+ 4096 for the CMS + the chain certificates + 8192 with a time-stamp,
//	then rounded up to the next multiple of 1024 (always adding 1 to 1024 bytes).
//
// Like rcodesign it counts the DER entitlements even for non-executables.
func estimateSize(codeLimit int64, digests []blob.HashType, specials map[blob.Slot][]byte, entsDER []byte, facts *certFacts, timestamp bool) int64 {
	n := int64(1024 * len(digests))
	pages := pageCount(codeLimit, PageSize)
	for _, d := range digests {
		n += pages * int64(d.Size())
	}
	for s, b := range specials {
		if s == blob.SlotEntitlementsDER {
			continue
		}
		n += int64(len(b))
	}
	n += int64(len(entsDER))
	n += 4096
	if facts != nil {
		for _, c := range facts.chain {
			n += int64(len(c.Raw))
		}
	}
	if timestamp {
		n += 8192
	}
	n += 1024 - n%1024
	return n
}

// write streams the signed slice to out: the body is copied while the pages are
// hashed, then the signature is built and appended.
func (j *sliceJob) write(ctx context.Context, out io.Writer, opts *Options, facts *certFacts) (SliceResult, error) {
	arch := j.file.CPUName()
	pages := pageCount(j.plan.CodeLimit(), PageSize)
	opts.logf("%s: hashing %d pages (%.1f MB) with %s", arch, pages, float64(j.plan.CodeLimit())/1e6, digestNames(j.digests))

	bodyErr := make(chan error, 1)
	go func() {
		_, err := j.plan.WriteBody(out, j.slice.Reader)
		bodyErr <- err
	}()
	hashes, herr := HashPages(ctx, j.plan.CodeReader(j.slice.Reader), j.plan.CodeLimit(), PageSize, j.digests, opts.Workers)
	if err := <-bodyErr; err != nil {
		return SliceResult{}, fmt.Errorf("writing the output: %w", err)
	}
	if herr != nil {
		return SliceResult{}, herr
	}

	sig, res, err := j.buildSignature(ctx, hashes, opts, facts)
	if err != nil {
		return SliceResult{}, err
	}
	if _, err := out.Write(sig); err != nil {
		return SliceResult{}, fmt.Errorf("writing the output: %w", err)
	}
	res.Arch = arch
	return res, nil
}

func digestNames(ds []blob.HashType) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, "+")
}

// buildSignature assembles the SuperBlob, padded to the planned size.
func (j *sliceJob) buildSignature(ctx context.Context, hashes []*PageHashes, opts *Options, facts *certFacts) ([]byte, SliceResult, error) {
	nSpecial := blob.SlotRequirements // a RequirementSet is always present
	for s := range j.specials {
		if s <= blob.MaxSpecialSlot && s > nSpecial {
			nSpecial = s
		}
	}
	for s := range j.external {
		if s > nSpecial {
			nSpecial = s
		}
	}
	version := uint32(blob.CDVersionExecSeg)
	if j.runtimeSet {
		version = blob.CDVersionRuntime
	}

	var entries []blob.Entry
	var cdhashes []cms.CDHash
	var primary []byte
	for i, ph := range hashes {
		t := ph.Type
		cd := &blob.CodeDirectory{
			Version:      version,
			Flags:        j.flags,
			HashType:     t,
			HashSize:     uint8(t.Size()),
			PageSizeLog2: 12,
			CodeLimit:    uint64(j.plan.CodeLimit()),
			ExecSegBase:  j.execBase,
			ExecSegLimit: j.execLimit,
			ExecSegFlags: j.execFlags,
			Identifier:   j.identifier,
			TeamID:       j.teamID,
			Code:         ph.Slices(),
			Special:      make([][]byte, nSpecial),
		}
		if j.runtimeSet {
			cd.Runtime = uint32(j.runtime)
		}
		for s := blob.Slot(1); s <= nSpecial; s++ {
			switch {
			case j.specials[s] != nil:
				cd.Special[s-1] = t.Sum(j.specials[s])
			case j.external[s] != nil:
				cd.Special[s-1] = t.Sum(j.external[s])
			default:
				cd.Special[s-1] = make([]byte, t.Size())
			}
		}
		raw := cd.Bytes()
		slot := blob.SlotCodeDirectory
		if i > 0 {
			slot = blob.SlotAlternateCodeDirectory0 + blob.Slot(i-1)
		} else {
			primary = raw
		}
		entries = append(entries, blob.Entry{Slot: slot, Data: raw})
		h, _ := t.Hash()
		d := h.New()
		d.Write(raw)
		cdhashes = append(cdhashes, cms.CDHash{Hash: h, Digest: d.Sum(nil)})
	}
	for s, b := range j.specials {
		entries = append(entries, blob.Entry{Slot: s, Data: b})
	}

	var wrapper []byte
	if facts != nil {
		when := opts.SigningTime
		if when.IsZero() {
			when = time.Now()
		}
		attrs, err := cms.SignedAttributes(primary, cdhashes, when.UTC().Truncate(time.Second))
		if err != nil {
			return nil, SliceResult{}, fmt.Errorf("building the signed attributes: %w", err)
		}
		opts.logf("%s: requesting the CMS signature from %s", j.file.CPUName(), signerName(facts))
		der, err := cms.Sign(ctx, attrs, opts.Identity.Signer, facts.cert, facts.chain, opts.Timestamper)
		if err != nil {
			return nil, SliceResult{}, err
		}
		wrapper = blob.Wrap(blob.MagicBlobWrapper, der)
	} else {
		wrapper = blob.Wrap(blob.MagicBlobWrapper, nil)
	}
	entries = append(entries, blob.Entry{Slot: blob.SlotSignature, Data: wrapper})

	sb := blob.BuildSuperBlob(entries)
	if int64(len(sb)) > j.plan.SignatureSize {
		return nil, SliceResult{}, fmt.Errorf("the signature (%d bytes) does not fit the %d bytes reserved for it; this is a bug in the size estimate, please report it", len(sb), j.plan.SignatureSize)
	}
	padded := make([]byte, j.plan.SignatureSize)
	copy(padded, sb)
	return padded, SliceResult{
		Identifier:    j.identifier,
		TeamID:        j.teamID,
		Flags:         j.flags,
		CDHashes:      cdhashes,
		SignatureSize: len(sb),
		Reserved:      j.plan.SignatureSize,
	}, nil
}

func signerName(f *certFacts) string {
	if f.cert.Subject.CommonName != "" {
		return fmt.Sprintf("%q", f.cert.Subject.CommonName)
	}
	return "the signing key"
}

// hashFor maps a crypto.Hash back to a CodeDirectory hash type.
func hashFor(h crypto.Hash) blob.HashType {
	switch h {
	case crypto.SHA1:
		return blob.HashSHA1
	case crypto.SHA256:
		return blob.HashSHA256
	case crypto.SHA384:
		return blob.HashSHA384
	}
	return 0
}
