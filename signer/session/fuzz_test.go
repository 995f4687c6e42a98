package session_test

import (
	"crypto"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/signer/session"
)

// FuzzDescribe: the description of any request, however hostile, never
// panics, always says something, and calls a request CMS signed attributes
// only when the policy would accept it.
func FuzzDescribe(f *testing.F) {
	cd := []byte("CodeDirectory")
	sum := sha256.Sum256(cd)
	attrs, err := cms.SignedAttributes(cd, []cms.CDHash{{Hash: crypto.SHA256, Digest: sum[:]}}, time.Unix(1700000000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(attrs)
	f.Add([]byte{})
	f.Add([]byte("GET / HTTP/1.1"))
	f.Add([]byte{0x31, 0x00})
	f.Add(attrs[:len(attrs)-1])
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := session.Describe(msg)
		if len(d.Lines) == 0 {
			t.Fatal("no description")
		}
		if (d.Attributes == nil) == (d.NotAttributes == nil) {
			t.Fatalf("Attributes and NotAttributes disagree: %v / %v", d.Attributes, d.NotAttributes)
		}
		for _, l := range d.Lines {
			if strings.ContainsAny(l, "\x1b\r\n") {
				t.Fatalf("description line with control characters: %q", l)
			}
		}
	})
}
