package certinfo

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
)

func TestDescribe(t *testing.T) {
	for _, alg := range []applecert.KeyAlgorithm{applecert.ECDSAP256, applecert.RSA2048} {
		_, cert, err := applecert.GenerateSelfSigned(applecert.Options{
			Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg, TeamID: "ABCDE12345", PersonName: "Jane Dev",
		})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		Describe(&b, "  ", cert, nil)
		out := b.String()
		for _, want := range []string{
			"  subject:              ",
			"  team ID:              ABCDE12345\n",
			"  issued by:            itself (self-signed",
			"  Apple profile:        Developer ID Application\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", alg, want, out)
			}
		}
		usable := "  publickey0 sessions:  yes\n"
		if alg == applecert.ECDSAP256 {
			usable = "  publickey0 sessions:  no (publickey0 needs an RSA key"
		}
		if !strings.Contains(out, usable) {
			t.Errorf("%s: output lacks %q", alg, usable)
		}
		// The printed PUBLIC KEY block is exactly the certificate's SPKI.
		i := strings.Index(out, "-----BEGIN PUBLIC KEY-----")
		if i < 0 {
			t.Fatalf("%s: no public key block", alg)
		}
		block, _ := pem.Decode([]byte(strings.ReplaceAll(out[i:], "\n  ", "\n")))
		if block == nil || !bytes.Equal(block.Bytes, cert.RawSubjectPublicKeyInfo) {
			t.Errorf("%s: public key block is not the certificate's SPKI", alg)
		}
	}
}

func TestExpiryNote(t *testing.T) {
	c := &x509.Certificate{NotBefore: time.Unix(1000, 0), NotAfter: time.Unix(2000, 0)}
	for now, want := range map[int64]string{500: " (NOT YET VALID)", 1500: "", 2500: " (EXPIRED)"} {
		if got := expiryNote(c, time.Unix(now, 0)); got != want {
			t.Errorf("at %d: %q, want %q", now, got, want)
		}
	}
}
