package codesign

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
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
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/internal/applecert"
)

// Info is a description of a file's signature structures, for humans (YAML)
// and tools (JSON). Field order is the output order.
type Info struct {
	Path       string      `yaml:"path,omitempty" json:"path,omitempty"`
	FileSize   int64       `yaml:"file_size" json:"file_size"`
	FileSHA256 string      `yaml:"file_sha256" json:"file_sha256"`
	Universal  bool        `yaml:"universal" json:"universal"`
	Slices     []SliceInfo `yaml:"slices" json:"slices"`
}

// SliceInfo describes one Mach-O slice.
type SliceInfo struct {
	Index     int            `yaml:"index" json:"index"`
	Arch      string         `yaml:"arch" json:"arch"`
	Offset    int64          `yaml:"offset" json:"offset"`
	Size      int64          `yaml:"size" json:"size"`
	FileType  string         `yaml:"file_type,omitempty" json:"file_type,omitempty"`
	Target    *TargetInfo    `yaml:"target,omitempty" json:"target,omitempty"`
	Signature *SignatureInfo `yaml:"signature,omitempty" json:"signature,omitempty"`
	// Error explains why the slice or its signature could not be described.
	Error string `yaml:"error,omitempty" json:"error,omitempty"`
}

// TargetInfo is the deployment target.
type TargetInfo struct {
	Platform  string `yaml:"platform" json:"platform"`
	MinimumOS string `yaml:"minimum_os" json:"minimum_os"`
	SDK       string `yaml:"sdk" json:"sdk"`
}

// SignatureInfo describes an embedded signature.
type SignatureInfo struct {
	Offset          int64      `yaml:"offset" json:"offset"`
	Reserved        int64      `yaml:"reserved" json:"reserved"`
	SuperBlobLength int        `yaml:"superblob_length" json:"superblob_length"`
	Blobs           []BlobInfo `yaml:"blobs" json:"blobs"`
	CodeDirectories []CDInfo   `yaml:"code_directories" json:"code_directories"`
	Requirements    []string   `yaml:"requirements,omitempty" json:"requirements,omitempty"`
	Entitlements    string     `yaml:"entitlements,omitempty" json:"entitlements,omitempty"`
	EntitlementsDER string     `yaml:"entitlements_der,omitempty" json:"entitlements_der,omitempty"`
	CMS             *CMSInfo   `yaml:"cms,omitempty" json:"cms,omitempty"`
	Problems        []string   `yaml:"problems,omitempty" json:"problems,omitempty"`
}

// BlobInfo is one SuperBlob entry.
type BlobInfo struct {
	Slot   string `yaml:"slot" json:"slot"`
	Magic  string `yaml:"magic" json:"magic"`
	Offset uint32 `yaml:"offset" json:"offset"`
	Length int    `yaml:"length" json:"length"`
	SHA1   string `yaml:"sha1" json:"sha1"`
	SHA256 string `yaml:"sha256" json:"sha256"`
}

// CDInfo describes a CodeDirectory.
type CDInfo struct {
	Slot           string   `yaml:"slot" json:"slot"`
	Version        string   `yaml:"version" json:"version"`
	Flags          []string `yaml:"flags" json:"flags"`
	Identifier     string   `yaml:"identifier" json:"identifier"`
	TeamID         string   `yaml:"team_id,omitempty" json:"team_id,omitempty"`
	HashType       string   `yaml:"hash_type" json:"hash_type"`
	CDHash         string   `yaml:"cdhash" json:"cdhash"`
	PageSize       int64    `yaml:"page_size" json:"page_size"`
	CodeLimit      uint64   `yaml:"code_limit" json:"code_limit"`
	CodeSlots      int      `yaml:"code_slots" json:"code_slots"`
	SpecialSlots   []string `yaml:"special_slots" json:"special_slots"`
	Platform       uint8    `yaml:"platform" json:"platform"`
	ExecSegBase    uint64   `yaml:"exec_segment_base" json:"exec_segment_base"`
	ExecSegLimit   uint64   `yaml:"exec_segment_limit" json:"exec_segment_limit"`
	ExecSegFlags   []string `yaml:"exec_segment_flags" json:"exec_segment_flags"`
	RuntimeVersion string   `yaml:"runtime_version,omitempty" json:"runtime_version,omitempty"`
}

// CMSInfo describes the CMS signature.
type CMSInfo struct {
	Certificates []CertInfo     `yaml:"certificates" json:"certificates"`
	Signer       SignerInfo     `yaml:"signer" json:"signer"`
	TimeStamp    *TimeStampInfo `yaml:"timestamp,omitempty" json:"timestamp,omitempty"`
}

// CertInfo describes a certificate.
type CertInfo struct {
	Subject      string `yaml:"subject" json:"subject"`
	Issuer       string `yaml:"issuer" json:"issuer"`
	Serial       string `yaml:"serial" json:"serial"`
	NotBefore    string `yaml:"not_before" json:"not_before"`
	NotAfter     string `yaml:"not_after" json:"not_after"`
	KeyAlgorithm string `yaml:"key_algorithm" json:"key_algorithm"`
	SHA256       string `yaml:"sha256" json:"sha256"`
	AppleRoot    bool   `yaml:"apple_root,omitempty" json:"apple_root,omitempty"`
	Profile      string `yaml:"apple_profile,omitempty" json:"apple_profile,omitempty"`
}

// SignerInfo describes the CMS signer.
type SignerInfo struct {
	Certificate        string   `yaml:"certificate" json:"certificate"`
	ChainsToApple      bool     `yaml:"chains_to_apple" json:"chains_to_apple"`
	TeamID             string   `yaml:"team_id,omitempty" json:"team_id,omitempty"`
	DigestAlgorithm    string   `yaml:"digest_algorithm" json:"digest_algorithm"`
	SignatureAlgorithm string   `yaml:"signature_algorithm" json:"signature_algorithm"`
	SigningTime        string   `yaml:"signing_time,omitempty" json:"signing_time,omitempty"`
	MessageDigest      string   `yaml:"message_digest" json:"message_digest"`
	Attributes         []string `yaml:"signed_attributes" json:"signed_attributes"`
	CDHashes           []string `yaml:"cdhashes" json:"cdhashes"`
	CDHashesPlist      []string `yaml:"cdhashes_plist,omitempty" json:"cdhashes_plist,omitempty"`
}

// TimeStampInfo describes an RFC 3161 token.
type TimeStampInfo struct {
	Time           string `yaml:"time" json:"time"`
	Authority      string `yaml:"authority" json:"authority"`
	Policy         string `yaml:"policy" json:"policy"`
	Serial         string `yaml:"serial" json:"serial"`
	MessageImprint string `yaml:"message_imprint" json:"message_imprint"`
}

// DescribeFile describes the signatures in the file at path.
func DescribeFile(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Describe(f, st.Size(), filepath.Base(path))
}

// Describe describes the signatures of a Mach-O read from r. Malformed signatures
// are described as far as possible, with the problem recorded, rather than
// failing the whole description.
func Describe(r io.ReaderAt, size int64, name string) (*Info, error) {
	bin, err := macho.Open(r, size)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, err
	}
	info := &Info{Path: name, FileSize: size, FileSHA256: hex.EncodeToString(h.Sum(nil)), Universal: bin.Fat}
	for i, sl := range bin.Slices {
		si := SliceInfo{Index: i, Arch: macho.CPUName(sl.Arch.CPU, sl.Arch.SubCPU), Offset: int64(sl.Arch.Offset), Size: int64(sl.Arch.Size)}
		if sl.File == nil {
			si.Error = "not a Mach-O"
			info.Slices = append(info.Slices, si)
			continue
		}
		f := sl.File
		si.FileType = fileTypeName(f.Type)
		if t := f.Target; t != nil {
			si.Target = &TargetInfo{Platform: t.Platform.String(), MinimumOS: t.MinOS.String(), SDK: t.SDK.String()}
		}
		sig, err := ReadSignature(f, sl.Reader)
		switch {
		case errors.Is(err, ErrUnsigned):
			si.Error = "unsigned"
		case err != nil:
			si.Error = err.Error()
		default:
			si.Signature = describeSignature(sig)
		}
		info.Slices = append(info.Slices, si)
	}
	return info, nil
}

func fileTypeName(t uint32) string {
	switch t {
	case macho.TypeExecute:
		return "executable"
	case macho.TypeDylib:
		return "dylib"
	case macho.TypeBundle:
		return "bundle"
	case macho.TypeObject:
		return "object"
	}
	return fmt.Sprintf("type %d", t)
}

func hexSum1(b []byte) string   { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
func hexSum256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func describeSignature(sig *Signature) *SignatureInfo {
	si := &SignatureInfo{Offset: sig.Offset, Reserved: sig.Reserved, SuperBlobLength: len(sig.Raw)}
	for _, e := range sig.SuperBlob.Entries {
		si.Blobs = append(si.Blobs, BlobInfo{
			Slot:   fmt.Sprintf("%s (%#x)", e.Slot, uint32(e.Slot)),
			Magic:  fmt.Sprintf("%08x", e.Magic()),
			Offset: e.Offset,
			Length: len(e.Data),
			SHA1:   hexSum1(e.Data),
			SHA256: hexSum256(e.Data),
		})
	}
	for _, cd := range sig.CodeDirectories {
		ci := CDInfo{
			Slot:         fmt.Sprintf("%s (%#x)", cd.Slot, uint32(cd.Slot)),
			Version:      fmt.Sprintf("%#x", cd.Version),
			Flags:        append([]string{}, blob.FlagNames(cd.Flags)...),
			Identifier:   cd.Identifier,
			TeamID:       cd.TeamID,
			HashType:     cd.HashType.String(),
			CDHash:       hex.EncodeToString(cd.CDHash()),
			PageSize:     cd.PageSize(),
			CodeLimit:    cd.CodeLimit,
			CodeSlots:    len(cd.Code),
			Platform:     cd.Platform,
			ExecSegBase:  cd.ExecSegBase,
			ExecSegLimit: cd.ExecSegLimit,
			ExecSegFlags: append([]string{}, blob.ExecSegFlagNames(cd.ExecSegFlags)...),
		}
		if cd.Version >= blob.CDVersionRuntime && cd.Runtime != 0 {
			ci.RuntimeVersion = macho.Version(cd.Runtime).String()
		}
		for s := blob.Slot(1); int(s) <= len(cd.Special); s++ {
			ci.SpecialSlots = append(ci.SpecialSlots, fmt.Sprintf("%d %s: %x", s, s, cd.SpecialHash(s)))
		}
		si.CodeDirectories = append(si.CodeDirectories, ci)
	}
	if sig.Requirements != nil {
		for _, e := range sig.Requirements.Entries {
			si.Requirements = append(si.Requirements, e.Type.String()+" => "+e.Requirement.String())
		}
	}
	if sig.Entitlements != nil {
		si.Entitlements = string(sig.Entitlements)
	}
	if sig.EntitlementsDER != nil {
		if v, err := entitlements.ParseDER(sig.EntitlementsDER); err != nil {
			si.Problems = append(si.Problems, "DER entitlements: "+err.Error())
		} else {
			si.EntitlementsDER = string(v.XML())
		}
	}
	if len(sig.CMS) > 0 {
		sd, err := cms.Parse(sig.CMS)
		if err != nil {
			si.Problems = append(si.Problems, "CMS: "+err.Error())
		} else {
			si.CMS = describeCMS(sd)
		}
	}
	return si
}

func certInfo(c *x509.Certificate) CertInfo {
	ci := CertInfo{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		Serial:       c.SerialNumber.Text(16),
		NotBefore:    c.NotBefore.UTC().Format(time.RFC3339),
		NotAfter:     c.NotAfter.UTC().Format(time.RFC3339),
		KeyAlgorithm: c.PublicKeyAlgorithm.String(),
		SHA256:       hexSum256(c.Raw),
		AppleRoot:    applecert.IsAppleRoot(c),
	}
	if p := applecert.GuessProfile(c); p != applecert.ProfileUnknown {
		ci.Profile = p.String()
	}
	return ci
}

func describeCMS(sd *cms.SignedData) *CMSInfo {
	ci := &CMSInfo{}
	for _, c := range sd.Certificates {
		ci.Certificates = append(ci.Certificates, certInfo(c))
	}
	s := sd.Signer
	si := SignerInfo{
		DigestAlgorithm:    s.DigestAlgorithm.String(),
		SignatureAlgorithm: s.SignatureAlgorithmName,
		MessageDigest:      hex.EncodeToString(s.MessageDigest),
	}
	if c := s.SignerCertificate; c != nil {
		si.Certificate = c.Subject.String()
		if applecert.ChainsToApple(c, sd.Certificates) {
			si.ChainsToApple = true
			si.TeamID = applecert.TeamID(c)
		}
	}
	if !s.SigningTime.IsZero() {
		si.SigningTime = s.SigningTime.UTC().Format(time.RFC3339)
	}
	for _, a := range s.Attributes {
		si.Attributes = append(si.Attributes, a.Type.String())
	}
	for _, h := range s.CDHashes {
		si.CDHashes = append(si.CDHashes, strings.ToLower(hashName(h.Hash))+":"+hex.EncodeToString(h.Digest))
	}
	if s.CDHashesPlist != nil {
		for _, h := range s.CDHashesPlist.Hashes {
			si.CDHashesPlist = append(si.CDHashesPlist, hex.EncodeToString(h))
		}
	}
	ci.Signer = si
	if ts := s.TimeStamp; ts != nil {
		ti := &TimeStampInfo{
			Time:           ts.GenTime.UTC().Format(time.RFC3339),
			Policy:         ts.Policy.String(),
			MessageImprint: strings.ToLower(hashName(ts.HashAlgorithm)) + ":" + hex.EncodeToString(ts.MessageImprint),
		}
		if ts.SerialNumber != nil {
			ti.Serial = ts.SerialNumber.Text(16)
		}
		if ts.SignedData != nil && ts.SignedData.Signer != nil && ts.SignedData.Signer.SignerCertificate != nil {
			ti.Authority = ts.SignedData.Signer.SignerCertificate.Subject.CommonName
		}
		ci.TimeStamp = ti
	}
	return ci
}

func hashName(h interface{ String() string }) string {
	return strings.ReplaceAll(h.String(), "-", "")
}
