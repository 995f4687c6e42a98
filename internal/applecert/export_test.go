package applecert

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"testing"
)

// AllowTestRoot lets root, a synthesized certificate, pass AddExtraCertificates'
// check for Apple's published root fingerprints until t ends, so tests can build
// Apple-shaped hierarchies with keys they hold. It does not add the root: the test
// does that through the public API. When t ends, the extra certificates are restored
// to what they were. Tests calling it must not run in parallel.
func AllowTestRoot(t testing.TB, root *x509.Certificate) {
	t.Helper()
	sum := sha256.Sum256(root.Raw)
	fp := hex.EncodeToString(sum[:])
	extraMu.Lock()
	defer extraMu.Unlock()
	if _, ok := appleRootFingerprints[fp]; ok {
		t.Fatal("AllowTestRoot: already an Apple root")
	}
	appleRootFingerprints[fp] = "test root " + root.Subject.CommonName
	savedRoots, savedInters := slices.Clone(extraRoots), slices.Clone(extraInters)
	t.Cleanup(func() {
		extraMu.Lock()
		defer extraMu.Unlock()
		delete(appleRootFingerprints, fp)
		extraRoots, extraInters = savedRoots, savedInters
	})
}

// ResetExtraCertificates restores the extra certificates to their current state
// when t ends, for tests that add real Apple certificates.
func ResetExtraCertificates(t testing.TB) {
	extraMu.Lock()
	defer extraMu.Unlock()
	savedRoots, savedInters := slices.Clone(extraRoots), slices.Clone(extraInters)
	t.Cleanup(func() {
		extraMu.Lock()
		defer extraMu.Unlock()
		extraRoots, extraInters = savedRoots, savedInters
	})
}
