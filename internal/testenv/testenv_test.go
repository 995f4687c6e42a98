package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepoRootHasGoMod(t *testing.T) {
	if _, err := os.Stat(filepath.Join(RepoRoot(t), "go.mod")); err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
}

func TestCacheDirOverride(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	t.Setenv("FARSIGN_TEST_CACHE", dir)
	if got := CacheDir(t); got != dir {
		t.Fatalf("CacheDir = %q, want %q", got, dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("cache dir not created: %v", err)
	}
}
