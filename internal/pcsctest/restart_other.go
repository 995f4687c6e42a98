//go:build !unix

package pcsctest

import "errors"

// restartPCSCD is not supported off Unix, where the PC/SC tests do not run.
func restartPCSCD() error { return errors.New("restarting pcscd is only supported on Unix") }
