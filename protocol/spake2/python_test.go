package spake2

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/farsign/farsign/protocol/internal/spake2py"
)

// TestInteropPythonSPAKE2 runs live exchanges with Debian's python3-spake2 in both
// roles and checks both sides derive the same key (and different keys when the
// passwords differ, with no error on either side: SPAKE2 has no confirmation).
func TestInteropPythonSPAKE2(t *testing.T) {
	spake2py.Python(t)
	extra := make([]byte, 16)
	rand.Read(extra)
	sid := "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"
	ids := []struct{ name, idA, idB, pw string }{
		{"A.1 identities", "idA", "idB", "password"},
		{"sharedsecret0 identities", "A:" + sid + ":" + string(extra), "B:" + sid + ":" + string(extra), "correct horse battery staple"},
		{"empty identities", "", "", "pässwörd"},
	}
	for _, pyRole := range []Side{SideA, SideB} {
		goRole := SideA
		if pyRole == SideA {
			goRole = SideB
		}
		for _, id := range ids {
			t.Run(fmt.Sprintf("python is %c/%s", pyRole, id.name), func(t *testing.T) {
				py, pyMsg := spake2py.Start(t, byte(pyRole), []byte(id.pw), []byte(id.idA), []byte(id.idB))
				st, goMsg, err := Start(goRole, []byte(id.pw), []byte(id.idA), []byte(id.idB))
				if err != nil {
					t.Fatal(err)
				}
				pyKey := py.Finish(goMsg)
				goKey, err := st.Finish(pyMsg)
				if err != nil {
					t.Fatalf("Go Finish on python's message: %v", err)
				}
				if pyKey != hex.EncodeToString(goKey) {
					t.Fatalf("keys differ: Go %x, python %s", goKey, pyKey)
				}
			})
		}
		t.Run(fmt.Sprintf("python is %c/wrong password", pyRole), func(t *testing.T) {
			py, pyMsg := spake2py.Start(t, byte(pyRole), []byte("wrong"), []byte("idA"), []byte("idB"))
			st, goMsg, _ := Start(goRole, []byte("right"), []byte("idA"), []byte("idB"))
			pyKey := py.Finish(goMsg)
			goKey, err := st.Finish(pyMsg)
			if err != nil || strings.HasPrefix(pyKey, "error") || len(pyKey) != 64 {
				t.Fatalf("both sides should derive a key: Go %v, python %q", err, pyKey)
			}
			if pyKey == hex.EncodeToString(goKey) {
				t.Fatal("keys agree despite different passwords")
			}
		})
		t.Run(fmt.Sprintf("python is %c/rejects our message from its own side", pyRole), func(t *testing.T) {
			py, _ := spake2py.Start(t, byte(pyRole), []byte("pw"), nil, nil)
			_, goMsg, _ := Start(pyRole, []byte("pw"), nil, nil)
			if out := py.Finish(goMsg); out != "error OffSides" {
				t.Fatalf("python accepted a same-side message: %q", out)
			}
		})
	}
}
