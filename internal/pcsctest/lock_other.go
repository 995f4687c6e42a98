//go:build !unix

package pcsctest

import (
	"testing"

	"github.com/farsign/farsign/internal/testenv"
)

// lock reports the PC/SC test stack as missing: it is Debian's pcscd with the
// vsmartcard vpcd driver, so these tests run on Linux (and other Unix) only.
func lock(t testing.TB) func() {
	t.Helper()
	testenv.Missing(t, "the virtual smart card tests need pcscd and vsmartcard-vpcd (Linux)")
	return func() {}
}
