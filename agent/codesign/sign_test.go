package codesign

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testtsa"
)

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func selfSigned(t testing.TB, alg applecert.KeyAlgorithm) *Identity {
	t.Helper()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
		Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg,
		TeamID: "TEAMID1234", PersonName: "Farsign Test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Identity{Signer: key, Certificate: cert}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func mustVerify(t testing.TB, path string, opts VerifyOptions) *Report {
	t.Helper()
	rep, err := VerifyFile(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("%s does not verify: %v", path, rep.Err())
	}
	return rep
}

func checkNamed(rep *Report, name string) *Check {
	for i := range rep.Slices[0].Checks {
		if rep.Slices[0].Checks[i].Name == name {
			return &rep.Slices[0].Checks[i]
		}
	}
	return nil
}

func TestSignInPlace(t *testing.T) {
	p := writeTemp(t, "tool", machotest.Exe(machotest.Options{}))
	if _, err := SignFile(context.Background(), p, p, Options{}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(p)
	if len(first) != 22544 {
		t.Fatalf("size %d, want rcodesign's 22544", len(first))
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want the input's 0755", st.Mode())
	}
	if _, err := SignFile(context.Background(), p, p, Options{}); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(p)
	if !bytes.Equal(first, second) {
		t.Error("re-signing in place is not idempotent")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
	mustVerify(t, p, VerifyOptions{})
}

// A truncated Mach-O gets a clear error, and neither an output file nor a
// temporary file is left behind.
func TestTruncatedInputLeavesNoOutput(t *testing.T) {
	exe := machotest.Exe(machotest.Options{})
	for _, n := range []int{10, 500, 16385} {
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		os.WriteFile(in, exe[:n], 0o644)
		out := filepath.Join(dir, "out")
		_, err := SignFile(context.Background(), in, out, Options{})
		if err == nil {
			t.Fatalf("signing %d bytes succeeded", n)
		}
		if !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%d bytes: error %q does not say the file is truncated", n, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%d bytes: files left: %v", n, entries)
		}
	}
	// A signed file whose signature was cut off.
	signed, _ := signBytes(t, exe, "exe", Options{})
	in := writeTemp(t, "cut", signed[:len(signed)-100])
	if _, err := SignFile(context.Background(), in, in+".out", Options{}); err == nil || !errors.Is(err, macho.ErrTruncated) {
		t.Errorf("cut signature: %v", err)
	}
	if _, err := os.Stat(in + ".out"); !os.IsNotExist(err) {
		t.Error("output written for a bad input")
	}
}

func TestSignWithKeyAndTimestamp(t *testing.T) {
	tsa := testtsa.New(t)
	for _, alg := range []applecert.KeyAlgorithm{applecert.RSA2048, applecert.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			id := selfSigned(t, alg)
			in := writeTemp(t, "tool", machotest.Universal(machotest.Exe(machotest.Options{}), machotest.Exe(machotest.Options{Arch: machotest.X86_64})))
			out := in + ".signed"
			res, err := SignFile(context.Background(), in, out, Options{
				Identity:    id,
				Timestamper: &cms.HTTPTimestamper{URL: tsa.URL()},
				Flags:       flagsPtr(blob.FlagRuntime),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Slices) != 2 || res.Slices[0].TeamID != "" || res.Slices[1].Flags != blob.FlagRuntime {
				t.Errorf("result %+v", res.Slices)
			}
			rep := mustVerify(t, out, VerifyOptions{Roots: pool(id.Certificate), TimestampRoots: tsa.Roots()})
			for _, s := range rep.Slices {
				for _, c := range s.Checks {
					if c.Skipped != "" {
						t.Errorf("%s: check %s skipped: %s", s.Arch, c.Name, c.Skipped)
					}
				}
			}
			if c := checkNamed(rep, "designated requirement"); c == nil || !strings.HasPrefix(c.Detail, `identifier "tool" and certificate root = H"`) {
				t.Errorf("designated requirement check %+v", c)
			}
			// Against Apple's roots, the self-signed chain fails with a clear reason.
			rep, err = VerifyFile(context.Background(), out, VerifyOptions{Roots: applecert.AppleRoots(), TimestampRoots: tsa.Roots()})
			if err != nil {
				t.Fatal(err)
			}
			if c := checkNamed(rep, "certificate chain"); c == nil || c.Err == nil {
				t.Errorf("self-signed chain accepted against Apple roots: %+v", c)
			}
		})
	}
}

func TestTamperDetected(t *testing.T) {
	id := selfSigned(t, applecert.ECDSAP256)
	signed, _ := signBytes(t, machotest.Exe(machotest.Options{}), "exe", Options{Identity: id})
	sig := firstSignature(t, signed)
	verify := func(b []byte) *Report {
		rep, err := Verify(context.Background(), bytes.NewReader(b), int64(len(b)), VerifyOptions{Roots: pool(id.Certificate)})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(signed); !rep.OK() {
		t.Fatal(rep.Err())
	}
	for _, tc := range []struct {
		name  string
		off   int
		check string
		msg   string
	}{
		{"code page", 16384, "CodeDirectory (sha256)", "page 4"},
		{"load commands", 100, "CodeDirectory (sha256)", "page 0"},
		{"code directory", int(sig.Offset) + int(sig.SuperBlob.Entries[0].Offset) + 200, "cms", "digest"},
		{"cms signature", int(sig.Offset) + len(sig.Raw) - 10, "cms", ""},
	} {
		b := append([]byte(nil), signed...)
		b[tc.off] ^= 0x55
		rep := verify(b)
		c := checkNamed(rep, tc.check)
		if c == nil || c.Err == nil {
			t.Errorf("%s: tampering not detected by %q: %+v", tc.name, tc.check, rep.Slices[0].Checks)
			continue
		}
		if !strings.Contains(c.Err.Error(), tc.msg) {
			t.Errorf("%s: error %q does not mention %q", tc.name, c.Err, tc.msg)
		}
	}
}

func TestEstimateGoldens(t *testing.T) {
	req := requirement.EmptySetBytes
	sp := map[blob.Slot][]byte{blob.SlotRequirements: req}
	for _, tc := range []struct {
		digests []blob.HashType
		want    int64
	}{
		{[]blob.HashType{blob.HashSHA256}, 6144},
		{[]blob.HashType{blob.HashSHA1, blob.HashSHA256}, 7168},
	} {
		if got := estimateSize(16386, tc.digests, sp, nil, nil, false); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.digests, got, tc.want)
		}
	}
}

func TestSigningTimeAndCancel(t *testing.T) {
	id := selfSigned(t, applecert.ECDSAP256)
	when := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	a, _ := signBytes(t, machotest.Exe(machotest.Options{}), "exe", Options{Identity: id, SigningTime: when})
	sd, err := cms.Parse(firstSignature(t, a).CMS)
	if err != nil {
		t.Fatal(err)
	}
	if !sd.Signer.SigningTime.Equal(when) {
		t.Errorf("signing time %v", sd.Signer.SigningTime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	exe := machotest.Exe(machotest.Options{})
	var out bytes.Buffer
	if _, err := Sign(ctx, bytes.NewReader(exe), int64(len(exe)), &out, "exe", Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled signing: %v", err)
	}
}

// A key that does not belong to the certificate is refused before anything is
// written: agent/cms checks every signature against the certificate.
func TestMismatchedKeyRefused(t *testing.T) {
	a := selfSigned(t, applecert.ECDSAP256)
	b := selfSigned(t, applecert.ECDSAP256)
	in := writeTemp(t, "exe", machotest.Exe(machotest.Options{}))
	_, err := SignFile(context.Background(), in, in+".out", Options{Identity: &Identity{Signer: b.Signer, Certificate: a.Certificate}})
	if err == nil {
		t.Fatal("signing with another key's certificate succeeded")
	}
	if _, serr := os.Stat(in + ".out"); !os.IsNotExist(serr) {
		t.Error("output written")
	}
	if entries, _ := os.ReadDir(filepath.Dir(in)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// A universal slice that is not a Mach-O (a static archive) is carried through
// unsigned; the Mach-O slices are signed.
func TestUniversalWithArchiveSlice(t *testing.T) {
	archive := append([]byte("!<arch>\n"), make([]byte, 100)...)
	u := machotest.Universal(machotest.Exe(machotest.Options{}), archive)
	out, res := signBytes(t, u, "mixed", Options{})
	if len(res.Slices) != 2 || res.Slices[0].Skipped || !res.Slices[1].Skipped {
		t.Fatalf("result %+v", res.Slices)
	}
	bin, err := macho.Open(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, bin.Slices[1].Reader.Size())
	bin.Slices[1].Reader.ReadAt(got, 0)
	if !bytes.Equal(got, archive) {
		t.Error("the archive slice changed")
	}
	rep, err := Verify(context.Background(), bytes.NewReader(out), int64(len(out)), VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Err())
	}
}

func TestHashPagesShapes(t *testing.T) {
	data := make([]byte, 3*PageSize+10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	r := bytes.NewReader(data)
	types := []blob.HashType{blob.HashSHA1, blob.HashSHA256}
	hs, err := HashPages(context.Background(), r, int64(len(data)), PageSize, types, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, ph := range hs {
		if ph.Count() != 4 {
			t.Fatalf("%s: %d pages", ph.Type, ph.Count())
		}
		for p := 0; p < 4; p++ {
			end := min((p+1)*PageSize, len(data))
			if !bytes.Equal(ph.Page(p), types[i].Sum(data[p*PageSize:end])) {
				t.Errorf("%s page %d: the last page must be hashed short, not padded", ph.Type, p)
			}
		}
	}
	one, err := HashPages(context.Background(), r, int64(len(data)), 0, types[1:], 0)
	if err != nil || !bytes.Equal(one[0].Page(0), types[1].Sum(data)) {
		t.Errorf("page size 0 (one page): %v", err)
	}
	if _, err := HashPages(context.Background(), r, int64(len(data)), 1<<30, types, 0); err == nil {
		t.Error("a 1 GiB page size was accepted")
	}
	if hs, err := HashPages(context.Background(), r, 0, PageSize, types, 0); err != nil || hs[0].Count() != 0 {
		t.Errorf("empty: %v", err)
	}
	if _, err := HashPages(context.Background(), r, int64(len(data))+1, PageSize, types, 0); err == nil {
		t.Error("reading past the end succeeded")
	}
}
