package terraform

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/farsign/farsign/internal/testenv"
)

// TestBuildScript runs build-lambda.sh as a user would and checks the package is
// what Lambda's provided.al2023 runtime on arm64 needs: one executable named
// bootstrap, an arm64 ELF with no dynamic loader (CGO off), and a reproducible
// zip (same source, same bytes, so the same source_code_hash).
func TestBuildScript(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the Lambda; skipped with -short")
	}
	testenv.LookPath(t, "python3", "apt-get install python3")
	dir := t.TempDir()
	build := func(name string) []byte {
		out := filepath.Join(dir, name)
		cmd := exec.Command("./build-lambda.sh", out)
		cmd.Env = append(os.Environ(), "GOARCH=") // the script's default, arm64
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build-lambda.sh: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := build("a.zip")
	if second := build("b.zip"); !bytes.Equal(first, second) {
		t.Error("two builds of the same source differ: source_code_hash would change on every build")
	}

	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		t.Fatalf("zip entries %v, want exactly bootstrap", zr.File)
	}
	f := zr.File[0]
	if mode := f.Mode(); mode.Perm() != 0o755 || !mode.IsRegular() {
		t.Errorf("bootstrap mode %v, want -rwxr-xr-x", mode)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF executable: %v", err)
	}
	if ef.Machine != elf.EM_AARCH64 || ef.Class != elf.ELFCLASS64 {
		t.Errorf("bootstrap is %v %v, want arm64", ef.Class, ef.Machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap needs a dynamic loader; it must be static (CGO_ENABLED=0)")
		}
	}
}
