package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
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

func TestDieWithParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux-only")
	}
	// The parent is this test binary re-executed; it starts `sleep` with
	// DieWithParent and is then killed. The sleep must not survive it.
	if os.Getenv("FARSIGN_TESTENV_CHILD") == "1" {
		cmd := exec.Command("sleep", "60")
		DieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			os.Exit(3)
		}
		fmt.Println(cmd.Process.Pid)
		select {} // wait to be killed
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestDieWithParent$")
	parent.Env = append(os.Environ(), "FARSIGN_TESTENV_CHILD=1")
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		parent.Process.Kill()
		t.Fatalf("reading child pid: %v", err)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Signal 0 probes existence; a zombie reaped by init disappears quickly.
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d outlived its killed parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
