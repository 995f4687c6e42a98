package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
)

// runAgent runs the agent in-process and fails the test on a non-zero exit.
func runAgent(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if code := newApp(&out, &errb).Run(context.Background(), args); code != 0 {
		t.Fatalf("agent %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.Bytes()
}

func openssl(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// openssl, an independent CMS implementation, accepts the CMS signatures agent
// writes, extracted with `agent extract`, over the CodeDirectory: the signature,
// the message digest and (with -CAfile) the certificate.
func TestOpenSSLVerifiesOurCMS(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	for _, alg := range []applecert.KeyAlgorithm{applecert.RSA2048, applecert.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
				Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg, TeamID: "TEAMID1234", PersonName: "OpenSSL Oracle",
			})
			if err != nil {
				t.Fatal(err)
			}
			idPEM := filepath.Join(dir, "id.pem")
			certPEM := filepath.Join(dir, "cert.pem")
			if err := keyfile.WritePEM(idPEM, keyfile.Identity{Signer: key, Certificate: cert}); err != nil {
				t.Fatal(err)
			}
			if err := keyfile.WriteCertificatesPEM(certPEM, cert); err != nil {
				t.Fatal(err)
			}
			exe := filepath.Join(dir, "exe")
			os.WriteFile(exe, machotest.Universal(machotest.Exe(machotest.Options{}), machotest.Exe(machotest.Options{Arch: machotest.X86_64})), 0o755)
			runAgent(t, "sign", "--quiet", "--pem-source", idPEM, "--timestamp-url", "none", exe)

			for _, arch := range []string{"arm64", "x86_64"} {
				cmsDER := filepath.Join(dir, arch+".cms")
				cd := filepath.Join(dir, arch+".cd")
				runAgent(t, "extract", "--data", "cms", "--arch", arch, "-o", cmsDER, exe)
				runAgent(t, "extract", "--data", "code-directory", "--arch", arch, "-o", cd, exe)
				if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-noverify", "-out", os.DevNull); err != nil {
					t.Fatalf("%s: openssl cms -verify -noverify: %v\n%s", arch, err, out)
				}
				if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-CAfile", certPEM, "-purpose", "any", "-ignore_critical", "-out", os.DevNull); err != nil {
					t.Fatalf("%s: openssl cms -verify with the certificate as CA: %v\n%s", arch, err, out)
				}
				// The oracle is not a rubber stamp: a different content fails.
				b, _ := os.ReadFile(cd)
				b[len(b)-1] ^= 1
				os.WriteFile(cd, b, 0o644)
				if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-noverify", "-out", os.DevNull); err == nil {
					t.Fatalf("%s: openssl accepted a modified CodeDirectory\n%s", arch, out)
				}
			}
		})
	}
}

// The committed RSA test identity at rcodesign's sign-cms signing time: openssl
// verifies the signature over the CodeDirectory and the chain at that time, and
// reads the signing time we wrote. Two signings are byte-identical.
func TestOpenSSLVerifiesFixedKeyCMS(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	os.WriteFile(exe, machotest.Exe(machotest.Options{}), 0o755)
	var signed [2][]byte
	for i := range signed {
		out := filepath.Join(dir, fmt.Sprintf("exe.%d", i))
		runAgent(t, "sign", "--quiet", "--pem-source", fixedKeyPath, "--signing-time", "2023-11-05T10:00:00Z", "--timestamp-url", "none", exe, out)
		signed[i], _ = os.ReadFile(out)
	}
	if len(signed[0]) != 22544 || !bytes.Equal(signed[0], signed[1]) {
		t.Fatalf("sizes %d and %d: want two identical 22544-byte files", len(signed[0]), len(signed[1]))
	}
	cmsDER, cd, cert := filepath.Join(dir, "cms"), filepath.Join(dir, "cd"), filepath.Join(dir, "cert.pem")
	in := filepath.Join(dir, "exe.0")
	runAgent(t, "extract", "--data", "cms", "-o", cmsDER, in)
	runAgent(t, "extract", "--data", "code-directory", "-o", cd, in)
	runAgent(t, "extract", "--data", "certificates", "-o", cert, in)
	// 1699178400 is 2023-11-05T10:00:00Z.
	if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-CAfile", cert,
		"-purpose", "any", "-ignore_critical", "-attime", "1699178400", "-out", os.DevNull); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	out, err := openssl(t, bin, "cms", "-cmsout", "-print", "-inform", "DER", "-in", cmsDER)
	if err != nil {
		t.Fatalf("openssl cms -cmsout -print: %v\n%s", err, out)
	}
	if !strings.Contains(out, "UTCTIME:Nov  5 10:00:00 2023 GMT") {
		t.Errorf("openssl does not see the signing time 2023-11-05T10:00:00Z:\n%s", out)
	}
	// A CodeDirectory one bit off is refused.
	b, _ := os.ReadFile(cd)
	b[8] ^= 1
	os.WriteFile(cd, b, 0o644)
	if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-noverify", "-out", os.DevNull); err == nil {
		t.Fatalf("openssl accepted a modified CodeDirectory\n%s", out)
	}
}

// The same extraction over Apple's own signature of node, checked by openssl up to
// the Apple Root CA certificate the CMS carries, at the signing time.
func TestOpenSSLVerifiesNodeCMS(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the 147 MB node fixture")
	}
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	node := fixtures.NodeDarwinArm64(t)
	dir := t.TempDir()
	cmsDER, cd, certs := filepath.Join(dir, "cms"), filepath.Join(dir, "cd"), filepath.Join(dir, "certs.pem")
	runAgent(t, "extract", "--data", "cms", "-o", cmsDER, node)
	runAgent(t, "extract", "--data", "code-directory", "-o", cd, node)
	runAgent(t, "extract", "--data", "certificates", "-o", certs, node)
	if out, err := openssl(t, bin, "cms", "-verify", "-inform", "DER", "-in", cmsDER, "-content", cd, "-binary", "-CAfile", certs,
		"-purpose", "any", "-ignore_critical", "-attime", "1790000000", "-out", os.DevNull); err != nil {
		t.Fatalf("openssl cms -verify on node: %v\n%s", err, out)
	}
}
