//go:build unix

package pcsctest

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/farsign/farsign/internal/vpiv"
)

// TestLockExcludesOthers checks the property the package relies on: while one
// user holds the slot lock, another open file description of the lock file (a
// second test binary, or a parallel test here) cannot take it.
func TestLockExcludesOthers(t *testing.T) {
	unlock := lock(t)
	other, err := os.OpenFile(LockPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second lock while held: %v, want EWOULDBLOCK", err)
	}
	unlock()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("second lock after release: %v", err)
	}
	syscall.Flock(int(other.Fd()), syscall.LOCK_UN)
}

// TestStartTwoCardsAndRemove plugs two cards in, checks pcscd reports each in
// its own reader with its own serial, and that cleanup removes them.
func TestStartTwoCardsAndRemove(t *testing.T) {
	var readers []string
	t.Run("plugged", func(t *testing.T) {
		a, _ := vpiv.New(vpiv.Config{Serial: 101})
		b, _ := vpiv.New(vpiv.Config{Serial: 202})
		readers = Start(t, a, b)
		if len(readers) != 2 || readers[0] == readers[1] {
			t.Fatalf("readers %q", readers)
		}
		for i, want := range []uint32{101, 202} {
			got, err := readSerial(readers[i])
			if err != nil || got != want {
				t.Errorf("%s: serial %d, %v; want %d", readers[i], got, err, want)
			}
		}
	})
	if len(readers) != 2 {
		return
	}
	for _, r := range readers {
		if err := waitAbsent(r); err != nil {
			t.Errorf("%s after cleanup: %v", r, err)
		}
	}
}
