package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/testtsa"
	"github.com/farsign/farsign/signer/smartcard/smartcardtest"
)

// The commands under test, built once per test binary run by binaries.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds cmd/agent, cmd/signer and cmd/relay with `go build`, as a
// user installs them, and returns the folder holding them.
func binaries(t testing.TB) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go", "the Go toolchain builds the commands under test")
	root := testenv.RepoRoot(t)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "farsign-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command(gobin, "build", "-o", binDir+string(filepath.Separator), "./cmd/agent", "./cmd/signer", "./cmd/relay")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/agent ./cmd/signer ./cmd/relay: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// TestScripts runs the scenarios in testdata/*.txt with the three real
// commands on PATH, a local RFC 3161 authority (TSA_URL, its CA in
// tsa-roots.pem), Go-built darwin binaries (GO_ARM64, GO_AMD64), openssl,
// and, for the smart-card scenario, virtual cards on the real pcscd.
func TestScripts(t *testing.T) {
	bin := binaries(t)
	testenv.LookPath(t, "openssl", "apt-get install openssl: an independent CMS verifier")
	tsa := testtsa.New(t)
	goARM64 := fixtures.GoDarwinBinary(t, "arm64")
	goAMD64 := fixtures.GoDarwinBinary(t, "amd64")
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			if err := smartcardtest.Setup(e); err != nil {
				return err
			}
			e.Setenv("PATH", bin+string(os.PathListSeparator)+e.Getenv("PATH"))
			// No test ever reaches rcodesign's public relay by accident.
			e.Setenv("FARSIGN_REMOTE_SIGNING_URL", "ws://127.0.0.1:1/")
			e.Setenv("GITHUB_STEP_SUMMARY", "")
			e.Setenv("TSA_URL", tsa.URL())
			e.Setenv("GO_ARM64", goARM64)
			e.Setenv("GO_AMD64", goAMD64)
			return keyfile.WriteCertificatesPEM(filepath.Join(e.WorkDir, "tsa-roots.pem"), tsa.CACertificate())
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"vcard":       smartcardtest.Commands()["vcard"],
			"waitfile":    cmdWaitFile,
			"envfile":     cmdEnvFile,
			"mkuniversal": cmdMkUniversal,
			"hangtsa":     cmdHangTSA,
			"nofile":      cmdNoFile,
		},
	})
}

// waitfile FILE waits (up to 60 s) until FILE exists and is not empty.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			return
		}
	}
	ts.Fatalf("%s did not appear within 60s", args[0])
}

// envfile VAR FILE sets VAR to FILE's contents, trimmed.
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// mkuniversal OUT IN... joins thin Mach-O files into a universal one (as
// lipo -create does, with rcodesign's 16 KiB slice alignment).
func cmdMkUniversal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkuniversal OUT IN...")
	}
	var thin [][]byte
	for _, a := range args[1:] {
		thin = append(thin, []byte(ts.ReadFile(a)))
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), machotest.Universal(thin...), 0o755))
}

// hangtsa FILE starts a time-stamp server that never answers and sets
// HANG_TSA to its URL; FILE is created when a request arrives. It holds an
// agent still in the middle of a session, so that a script can interrupt it
// there.
func cmdHangTSA(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hangtsa FILE")
	}
	marker := ts.MkAbs(args[0])
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	var once sync.Once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { os.WriteFile(marker, []byte("request\n"), 0o644) })
		<-r.Context().Done()
	})}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	ts.Defer(func() { srv.Close() })
	ts.Setenv("HANG_TSA", "http://"+l.Addr().String()+"/")
}

// nofile GLOB fails if any file in the work folder matches GLOB (used to
// check that no temporary output survives a failure).
func cmdNoFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: nofile GLOB")
	}
	m, err := filepath.Glob(ts.MkAbs(args[0]))
	ts.Check(err)
	if len(m) > 0 {
		ts.Fatalf("unexpected files: %s", strings.Join(m, ", "))
	}
}

// TestQuickstart runs scripts/quickstart (what `make quickstart` runs) as a
// newcomer would: it must exit 0 after a verified remote signature, and
// clean up after itself. It must also fail loudly when a step fails.
func TestQuickstart(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	gobin := testenv.LookPath(t, "go", "the quickstart builds the commands with Go")
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "quickstart")

	run := func(goCmd string) (string, error) {
		tmp := t.TempDir()
		cmd := exec.Command(bash, script)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "GO="+goCmd)
		out, err := cmd.CombinedOutput()
		left, rerr := os.ReadDir(tmp)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if len(left) != 0 {
			t.Errorf("the quickstart left %d entries in TMPDIR (first %s)", len(left), left[0].Name())
		}
		return string(out), err
	}

	out, err := run(gobin)
	if err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"==> 7/7 Anyone can check the result",
		"signer | signing request #1:",
		"agent  | relay server confirmed session termination",
		"agent  | hello.signed: signature is valid",
		"relay  | relay stopped",
		"Done: a real remote-signing session ran through a relay",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out)
		}
	}

	// A failing step (here: the build) makes the whole script fail.
	out, err = run("false")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("quickstart with a failing build: err = %v\n%s", err, out)
	}
	if !strings.Contains(out, "quickstart: FAILED") {
		t.Errorf("no failure notice:\n%s", out)
	}
}
