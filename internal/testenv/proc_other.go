//go:build !linux

package testenv

import "os/exec"

// DieWithParent is a no-op where the platform has no parent-death signal; test
// cleanups still stop children on a normal exit.
func DieWithParent(cmd *exec.Cmd) {}
