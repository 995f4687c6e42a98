//go:build unix

package pcsctest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// restartPCSCD stops the running pcscd (by the pid file it writes) and starts a
// new one, which loads the reader configuration afresh.
func restartPCSCD() error {
	b, err := os.ReadFile(pcscdPIDFile)
	if err != nil {
		return err
	}
	// pcscd writes the pid followed by a newline and a NUL.
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimRight(string(b), "\x00")))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s: bad pid %q", pcscdPIDFile, b)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping pcscd (pid %d): %v", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd (pid %d) did not exit within 10s of SIGTERM", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := exec.Command("pcscd").CombinedOutput(); err != nil {
		return fmt.Errorf("starting pcscd: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
