package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
)

// terminal runs a command on a real pseudo-terminal (util-linux `script`), so
// the prompts that need a person (--confirm, the p12 password) are tested the
// way a person meets them.
type terminal struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *testenv.Buffer
	exited chan error
}

func startTerminal(t *testing.T, env []string, argv ...string) *terminal {
	t.Helper()
	script := testenv.LookPath(t, "script", "apt-get install bsdutils (util-linux's script gives tests a terminal)")
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command(script, "-q", "-e", "-c", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), env...)
	term := &terminal{t: t, cmd: cmd, out: &testenv.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout = term.out
	cmd.Stderr = term.out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	term.in = in
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { term.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		in.Close()
		select {
		case <-term.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-term.exited
		}
	})
	return term
}

// expect waits until the terminal has shown s (after the first skip
// occurrences of it).
func (term *terminal) expect(s string, skip int) {
	term.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Count(term.out.String(), s) > skip {
			return
		}
	}
	term.t.Fatalf("the terminal never showed %q; it shows:\n%s", s, term.out)
}

func (term *terminal) typeLine(s string) {
	if _, err := io.WriteString(term.in, s+"\r"); err != nil {
		term.t.Fatal(err)
	}
}

func (term *terminal) wait() error {
	term.t.Helper()
	select {
	case err := <-term.exited:
		term.exited <- err
		return err
	case <-time.After(30 * time.Second):
		term.t.Fatalf("the command did not exit; the terminal shows:\n%s", term.out)
		return nil
	}
}

// TestTerminalPrompts: the p12 password is asked for without echo, and
// --confirm asks y/N before each signature; "n" refuses and ends the session.
func TestTerminalPrompts(t *testing.T) {
	relayURL := startRelay(t)
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileDeveloperIDApplication,
		Algorithm: applecert.ECDSAP256, TeamID: "TTY0000001", PersonName: "Terminal"})
	if err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(t.TempDir(), "id.p12")
	if err := keyfile.WriteP12(p12, keyfile.Identity{Signer: key, Certificate: cert}, []byte("tty secret"), keyfile.P12Modern); err != nil {
		t.Fatal(err)
	}
	cfg := initiatorConfig(relayURL, &testenv.Buffer{})
	cfg.SharedSecret = []byte("s")
	sess, err := remote.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	join := filepath.Join(t.TempDir(), "join.txt")
	os.WriteFile(join, []byte(sess.JoinLine()), 0o600)
	bin, err := exec.LookPath("signer")
	if err != nil {
		t.Fatal(err)
	}
	term := startTerminal(t, nil, bin, "remote-sign", "--p12-file", p12, "--confirm",
		"--remote-shared-secret", "s", "--remote-signing-url", relayURL, "--sjs-path", join)

	term.expect("Password for "+p12+": ", 0)
	term.typeLine("tty secret")
	signer, err := sess.Wait(context.Background())
	if err != nil {
		t.Fatalf("Wait: %v\nterminal:\n%s", err, term.out)
	}
	if strings.Contains(term.out.String(), "tty secret") {
		t.Error("the password was echoed")
	}
	type result struct {
		sig []byte
		err error
	}
	sign := func(i int) chan result {
		ch := make(chan result, 1)
		go func() {
			sig, err := crypto.SignMessage(signer, rand.Reader, testAttributes(i), crypto.SHA256)
			ch <- result{sig, err}
		}()
		return ch
	}
	first := sign(1)
	term.expect("Sign request #1? [y/N] ", 0)
	term.typeLine("y")
	if r := <-first; r.err != nil {
		t.Fatalf("confirmed signature: %v\nterminal:\n%s", r.err, term.out)
	}
	second := sign(2)
	term.expect("Sign request #2? [y/N] ", 0)
	term.typeLine("n")
	if r := <-second; r.err == nil || !strings.Contains(r.err.Error(), "the signer refused a request: declined by the user") {
		t.Fatalf("declined signature: %v", r.err)
	}
	err = term.wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("signer exit: %v", err)
	}
	term.expect("signer: refused signing request #2: declined by the user; session ended", 0)
}

// TestInterruptedSigner: Ctrl-C (SIGINT) on the signer says goodbye, so the
// initiator reports why, and the signer exits 130.
func TestInterruptedSigner(t *testing.T) {
	relayURL := startRelay(t)
	keyPath, _ := identity(t, applecert.ECDSAP256, "interrupted")
	cfg := initiatorConfig(relayURL, &testenv.Buffer{})
	cfg.SharedSecret = []byte("s")
	sess, err := remote.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := startSigner(t, sess.JoinLine(), nil, "--pem-source", keyPath, "--remote-shared-secret", "s", "--remote-signing-url", relayURL)
	signer, err := sess.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	proc.cmd.Process.Signal(syscall.SIGINT)
	err = proc.wait(t)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("signer exit = %v, want status 130\n%s", err, proc.stderr)
	}
	_, err = crypto.SignMessage(signer, rand.Reader, testAttributes(1), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "the remote signer left the session (the signer was interrupted)") {
		t.Fatalf("initiator: %v", err)
	}
}
