package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testtsa"
)

func TestMain(m *testing.M) {
	// The benchmarks run the agent as a child process (to measure its peak RSS
	// alone); this test binary is that agent when the variable is set.
	if os.Getenv(benchAgentEnv) == "1" {
		newApp(os.Stdout, os.Stderr).Main()
	}
	testscript.Main(m, map[string]func(){
		"agent": func() { newApp(os.Stdout, os.Stderr).Main() },
	})
}

// fixedKeyPath is farsign's deliberately public RSA test identity, whose
// deterministic signatures make whole signed files reproducible (see
// agent/codesign/testdata/README.md).
const fixedKeyPath = "../../agent/codesign/testdata/farsign-test-rsa-apple-development.pem"

// TestScripts runs the user-level scenarios in testdata/*.txt against the real
// agent binary, with a local time-stamp authority, the Go linker's darwin
// binaries and (unless -short) Apple's signature of node.
func TestScripts(t *testing.T) {
	tsa := testtsa.New(t)
	goARM64 := fixtures.GoDarwinBinary(t, "arm64")
	goAMD64 := fixtures.GoDarwinBinary(t, "amd64")
	fixedKey, err := filepath.Abs(fixedKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	node := ""
	if !testing.Short() {
		node = fixtures.NodeDarwinArm64(t)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("TSA_URL", tsa.URL())
			e.Setenv("GO_ARM64", goARM64)
			e.Setenv("GO_AMD64", goAMD64)
			e.Setenv("NODE", node)
			e.Setenv("FIXED_KEY", fixedKey)
			return keyfile.WriteCertificatesPEM(filepath.Join(e.WorkDir, "tsa-roots.pem"), tsa.CACertificate())
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "node":
				return node != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkmacho":     cmdMkMacho,
			"mkuniversal": cmdMkUniversal,
			"selfsigned":  cmdSelfSigned,
			"mkp12":       cmdMkP12,
			"sha256":      cmdSHA256,
			"truncate":    cmdTruncate,
			"flipbyte":    cmdFlipByte,
			"chopnl":      cmdChopNL,
		},
	})
}

// mkmacho [-x86_64] [-minos VERSION] [-notarget] FILE writes rcodesign's
// debug-create-macho executable.
func cmdMkMacho(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("mkmacho", flag.ContinueOnError)
	x86 := fs.Bool("x86_64", false, "")
	minos := fs.String("minos", "", "")
	notarget := fs.Bool("notarget", false, "")
	ts.Check(fs.Parse(args))
	if fs.NArg() != 1 {
		ts.Fatalf("usage: mkmacho [-x86_64] [-minos V] [-notarget] FILE")
	}
	o := machotest.Options{NoTargeting: *notarget}
	if *x86 {
		o.Arch = machotest.X86_64
	}
	if *minos != "" {
		v, err := macho.ParseVersion(*minos)
		ts.Check(err)
		o.MinOS = uint32(v)
	}
	ts.Check(os.WriteFile(ts.MkAbs(fs.Arg(0)), machotest.Exe(o), 0o755))
}

// mkuniversal OUT IN... joins thin binaries as rcodesign macho-universal-create does.
func cmdMkUniversal(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: mkuniversal OUT IN...")
	}
	var thin [][]byte
	for _, a := range args[1:] {
		thin = append(thin, []byte(ts.ReadFile(a)))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), machotest.Universal(thin...), 0o755))
}

// selfsigned [-rsa] [-profile P] [-team T] IDENTITY.pem CERT.pem writes a key and
// self-signed code-signing certificate (IDENTITY.pem) and the certificate alone.
func cmdSelfSigned(ts *testscript.TestScript, neg bool, args []string) {
	fs := flag.NewFlagSet("selfsigned", flag.ContinueOnError)
	rsa := fs.Bool("rsa", false, "")
	profile := fs.String("profile", "developer-id-application", "")
	team := fs.String("team", "TEAMID1234", "")
	ts.Check(fs.Parse(args))
	if fs.NArg() != 2 {
		ts.Fatalf("usage: selfsigned [-rsa] [-profile P] [-team T] IDENTITY.pem CERT.pem")
	}
	p, err := applecert.ParseProfile(*profile)
	ts.Check(err)
	alg := applecert.ECDSAP256
	if *rsa {
		alg = applecert.RSA2048
	}
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: p, Algorithm: alg, TeamID: *team, PersonName: "Farsign Test"})
	ts.Check(err)
	ts.Check(keyfile.WritePEM(ts.MkAbs(fs.Arg(0)), keyfile.Identity{Signer: key, Certificate: cert}))
	ts.Check(keyfile.WriteCertificatesPEM(ts.MkAbs(fs.Arg(1)), cert))
}

// mkp12 IDENTITY.pem OUT.p12 PASSWORD [legacy] converts a PEM identity to PKCS #12.
func cmdMkP12(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: mkp12 IDENTITY.pem OUT.p12 PASSWORD [legacy]")
	}
	id, err := keyfile.LoadPEM(ts.MkAbs(args[0]))
	ts.Check(err)
	enc := keyfile.P12Modern
	if len(args) == 4 && args[3] == "legacy" {
		enc = keyfile.P12Legacy
	}
	ts.Check(keyfile.WriteP12(ts.MkAbs(args[1]), id, []byte(args[2]), enc))
}

// sha256 FILE HEX asserts a file's SHA-256.
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sha256 FILE HEX")
	}
	sum := sha256.Sum256([]byte(ts.ReadFile(args[0])))
	got := hex.EncodeToString(sum[:])
	if (got == args[1]) == neg {
		ts.Fatalf("sha256 of %s is %s, want %s%s", args[0], got, map[bool]string{true: "not "}[neg], args[1])
	}
}

// truncate FILE N cuts a file to N bytes.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: truncate FILE N")
	}
	n, err := strconv.ParseInt(args[1], 0, 64)
	ts.Check(err)
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}

// flipbyte FILE OFFSET inverts one byte.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	off, err := strconv.ParseInt(args[1], 0, 64)
	ts.Check(err)
	b := []byte(ts.ReadFile(args[0]))
	if off < 0 || off >= int64(len(b)) {
		ts.Fatalf("offset %d outside %s (%d bytes)", off, args[0], len(b))
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o755))
}

// chopnl FILE removes one trailing newline.
func cmdChopNL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: chopnl FILE")
	}
	b := []byte(ts.ReadFile(args[0]))
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
}
