//go:build unix

package pcsctest

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// lock takes the exclusive slot lock, waiting (and saying so) if another test
// binary holds it.
func lock(t testing.TB) func() {
	t.Helper()
	f, err := os.OpenFile(LockPath, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("pcsctest: lock file: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			t.Fatalf("pcsctest: flock %s: %v", LockPath, err)
		}
		t.Logf("pcsctest: waiting for the vpcd slots (%s is held by another test)", LockPath)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("pcsctest: flock %s: %v", LockPath, err)
		}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
