package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/internal/testenv"
)

// These tests run every part as users run it: `relay serve` built from
// cmd/relay as its own process on loopback, `signer remote-sign` as its own
// process (this test binary, installed on PATH by testscript.Main), and the
// initiator in this process through agent/remote, as `agent sign` uses it.

var (
	relayOnce sync.Once
	relayBin  string
	relayErr  error
)

// relayBinary builds cmd/relay once per test run.
func relayBinary(t *testing.T) string {
	t.Helper()
	gobin := testenv.LookPath(t, "go", "the Go toolchain builds cmd/relay for the end-to-end tests")
	relayOnce.Do(func() {
		dir, err := os.MkdirTemp("", "farsign-e2e-relay-")
		if err != nil {
			relayErr = err
			return
		}
		relayBin = filepath.Join(dir, "relay")
		cmd := exec.Command(gobin, "build", "-o", relayBin, "github.com/farsign/farsign/cmd/relay")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			relayErr = errors.New("building cmd/relay: " + err.Error() + "\n" + string(out))
		}
	})
	if relayErr != nil {
		t.Fatal(relayErr)
	}
	return relayBin
}

// startRelay runs `relay serve` on a free loopback port until the test ends.
func startRelay(t *testing.T) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "relay.url")
	cmd := exec.Command(relayBinary(t), "serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("relay did not stop on SIGTERM; its log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("relay serve did not start; its log:\n%s", logs.String())
	return ""
}

// identity writes a fresh self-signed identity as a PEM file.
func identity(t *testing.T, alg applecert.KeyAlgorithm, name string) (path string, id keyfile.Identity) {
	t.Helper()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
		Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg, TeamID: "E2ETEAM001", PersonName: name,
	})
	if err != nil {
		t.Fatal(err)
	}
	id = keyfile.Identity{Signer: key, Certificate: cert}
	path = filepath.Join(t.TempDir(), "identity.pem")
	if err := keyfile.WritePEM(path, id); err != nil {
		t.Fatal(err)
	}
	return path, id
}

// signerProc is a running `signer remote-sign`.
type signerProc struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	done   chan error
}

// startSigner writes the join string to a file and runs signer remote-sign
// --sjs-path FILE with args.
func startSigner(t *testing.T, join string, env []string, args ...string) *signerProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "join.txt")
	if err := os.WriteFile(path, []byte(join), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("signer")
	if err != nil {
		t.Fatalf("signer is not on PATH (testscript.Main installs it): %v", err)
	}
	cmd := exec.Command(bin, append([]string{"remote-sign", "--sjs-path", path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &signerProc{cmd: cmd, stderr: &testenv.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the signer's exit error (nil for status 0).
func (p *signerProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("signer did not exit; its stderr:\n%s", p.stderr)
		return nil
	}
}

// lastLine is the signer's final stderr line, where a failure is explained.
func (p *signerProc) lastLine() string {
	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	return lines[len(lines)-1]
}

func initiatorConfig(relayURL string, log *testenv.Buffer) remote.Config {
	return remote.Config{RelayURL: relayURL, Log: log, StepSummary: "-", JoinTimeout: 30 * time.Second, ResponseTimeout: 30 * time.Second}
}

// TestEndToEnd: for both schemes, the initiator obtains several signatures of
// real CMS signed attributes from a signer process over `relay serve`; each
// verifies against the certificate, and so does a CMS built with cms.Sign.
func TestEndToEnd(t *testing.T) {
	relayURL := startRelay(t)
	for _, tc := range []struct {
		name   string
		alg    applecert.KeyAlgorithm
		scheme string
	}{
		{"publickey0", applecert.RSA2048, "publickey0"},
		{"sharedsecret0-rsa", applecert.RSA2048, "sharedsecret0"},
		{"sharedsecret0-ecdsa", applecert.ECDSAP256, "sharedsecret0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyPath, id := identity(t, tc.alg, "E2E "+tc.name)
			ilog := &testenv.Buffer{}
			cfg := initiatorConfig(relayURL, ilog)
			var env, args []string
			if tc.scheme == "publickey0" {
				cfg.SignerPublicKey = id.Certificate.RawSubjectPublicKeyInfo
			} else {
				cfg.SharedSecret = []byte("a shared secret for " + tc.name)
				env = []string{"E2E_SECRET=a shared secret for " + tc.name}
				args = []string{"--remote-shared-secret-env", "E2E_SECRET", "--remote-signing-url", relayURL}
			}
			ctx := context.Background()
			sess, err := remote.Start(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			proc := startSigner(t, sess.JoinPEM(), env, append(args, "--pem-source", keyPath)...)
			signer, err := sess.Wait(ctx)
			if err != nil {
				t.Fatalf("Wait: %v\nsigner stderr:\n%s", err, proc.stderr)
			}
			for i := range 4 {
				attrs := testAttributes(i)
				sig, err := crypto.SignMessage(signer, rand.Reader, attrs, crypto.SHA256)
				if err != nil {
					t.Fatalf("signature %d: %v\nsigner stderr:\n%s", i, err, proc.stderr)
				}
				if err := cms.CheckSignature(id.Certificate, attrs, sig); err != nil {
					t.Fatalf("signature %d does not verify: %v", i, err)
				}
			}
			der, err := cms.Sign(ctx, testAttributes(9), signer, signer.Certificate(), signer.Chain(), nil)
			if err != nil {
				t.Fatal(err)
			}
			sd, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := sd.Verify([]byte("CodeDirectory 9")); err != nil {
				t.Fatalf("CMS signed through the remote signer does not verify: %v", err)
			}
			if err := signer.Close(); err != nil {
				t.Fatal(err)
			}
			if err := proc.wait(t); err != nil {
				t.Fatalf("signer exited with %v; stderr:\n%s", err, proc.stderr)
			}
			if got := proc.lastLine(); got != "session ended after 5 signature(s)" {
				t.Errorf("signer's last line = %q", got)
			}
			if !strings.Contains(proc.stderr.String(), "signing session closed; reason: signing operations completed") {
				t.Errorf("signer stderr:\n%s", proc.stderr)
			}
		})
	}
}

// TestEndToEndWrongSecret: both processes fail fast with the same explanation;
// nothing is signed.
func TestEndToEndWrongSecret(t *testing.T) {
	relayURL := startRelay(t)
	keyPath, _ := identity(t, applecert.ECDSAP256, "wrong secret")
	cfg := initiatorConfig(relayURL, &testenv.Buffer{})
	cfg.SharedSecret = []byte("the right secret")
	sess, err := remote.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	proc := startSigner(t, sess.JoinLine(), []string{"S=the wrong secret"}, "--pem-source", keyPath,
		"--remote-shared-secret-env", "S", "--remote-signing-url", relayURL)
	_, err = sess.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "could not decrypt the signer's first message: wrong shared secret or wrong key") {
		t.Fatalf("initiator error = %v", err)
	}
	if err := proc.wait(t); err == nil {
		t.Fatal("signer exited 0")
	}
	if got, want := proc.lastLine(), "signer: could not decrypt the peer's first message: wrong shared secret or wrong key"; got != want {
		t.Errorf("signer's last line = %q, want %q", got, want)
	}
	if strings.Contains(proc.stderr.String(), "signing request") {
		t.Error("the signer signed")
	}
	t.Logf("both sides failed %v after the signer started", time.Since(start))
}

// TestEndToEndWrongKey: a publickey0 join string for another key; the signer
// refuses before connecting, the initiator times out waiting.
func TestEndToEndWrongKey(t *testing.T) {
	relayURL := startRelay(t)
	keyPath, _ := identity(t, applecert.RSA2048, "holder")
	_, other := identity(t, applecert.RSA2048, "someone else")
	cfg := initiatorConfig(relayURL, &testenv.Buffer{})
	cfg.SignerPublicKey = other.Certificate.RawSubjectPublicKeyInfo
	cfg.JoinTimeout = 2 * time.Second
	sess, err := remote.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := startSigner(t, sess.JoinLine(), nil, "--pem-source", keyPath)
	if err := proc.wait(t); err == nil {
		t.Fatal("signer exited 0")
	}
	if got := proc.lastLine(); !strings.HasPrefix(got, "signer: this join string was encrypted to a different key: SPKI sha256 ") {
		t.Errorf("signer's last line = %q", got)
	}
	if strings.Contains(proc.stderr.String(), "connecting to") {
		t.Error("signer connected with a join string it could not read")
	}
	if _, err := sess.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "no signer joined the session within 2s") {
		t.Fatalf("initiator error = %v", err)
	}
}

// TestEndToEndSignerKilled: a signer process killed mid-session makes the
// initiator fail with a clear error at once, not hang until a timeout.
func TestEndToEndSignerKilled(t *testing.T) {
	relayURL := startRelay(t)
	keyPath, _ := identity(t, applecert.ECDSAP256, "killed")
	cfg := initiatorConfig(relayURL, &testenv.Buffer{})
	cfg.SharedSecret = []byte("s")
	cfg.ResponseTimeout = time.Minute // far longer than the test may take
	sess, err := remote.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	proc := startSigner(t, sess.JoinLine(), nil, "--pem-source", keyPath, "--remote-shared-secret", "s", "--remote-signing-url", relayURL)
	signer, err := sess.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.SignMessage(signer, rand.Reader, testAttributes(1), crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	proc.cmd.Process.Kill()
	proc.wait(t)
	start := time.Now()
	_, err = crypto.SignMessage(signer, rand.Reader, testAttributes(2), crypto.SHA256)
	if err == nil || !strings.Contains(err.Error(), "the remote signer left the session (peer disconnected)") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("the failure took %v: it should come from the relay's notice, not a timeout", time.Since(start))
	}
}

// TestEndToEndTampering puts a man-in-the-middle between the peers and
// `relay serve`, altering, replaying or dropping one peer message. The side
// that receives it detects it and aborts; the other side ends too; no
// tampered signature is ever returned.
func TestEndToEndTampering(t *testing.T) {
	relayURL := startRelay(t)
	keyPath, _ := identity(t, applecert.RSA2048, "tampering")
	for _, tc := range []struct {
		name string
		// conn 0 is the initiator, 1 the signer; n counts peer messages to it.
		conn, n   int
		act       func(f relaytest.Frame, msg string) [][]byte
		initErr   string // what the initiator reports
		signerErr string // the signer's last line, "" if it ends normally
	}{
		{
			name: "altered signature", conn: 0, n: 3,
			act: func(f relaytest.Frame, msg string) [][]byte {
				return [][]byte{relaytest.WithPeerMessage(f, relaytest.FlipBit(msg))}
			},
			initErr: "a message from the peer failed authentication: it was altered in transit",
		},
		{
			name: "replayed sign request", conn: 1, n: 3,
			act:       func(f relaytest.Frame, _ string) [][]byte { return [][]byte{f.Data, f.Data} },
			initErr:   "the remote signer left the session (the signer detected tampering in transit)",
			signerErr: "a message from the peer was replayed in transit",
		},
		{
			name: "dropped certificate request", conn: 1, n: 2,
			act:       func(relaytest.Frame, string) [][]byte { return nil },
			initErr:   "the remote signer did not answer",
			signerErr: "",
		},
		{
			name: "dropped pong", conn: 1, n: 1,
			act:       func(relaytest.Frame, string) [][]byte { return nil },
			initErr:   "the remote signer left the session (the signer detected tampering in transit)",
			signerErr: "a message from the peer was dropped or reordered in transit",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var counter relaytest.Counter
			proxy := relaytest.NewProxy(t, relayURL, func(f relaytest.Frame) [][]byte {
				msg, ok := relaytest.PeerMessage(f)
				if !ok || f.Conn != tc.conn || counter.Next(f.Conn) != tc.n {
					return [][]byte{f.Data}
				}
				return tc.act(f, msg)
			})
			cfg := initiatorConfig(proxy.URL, &testenv.Buffer{})
			cfg.SharedSecret = []byte("s")
			cfg.ResponseTimeout = 3 * time.Second
			sess, err := remote.Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			proc := startSigner(t, sess.JoinLine(), nil, "--pem-source", keyPath, "--remote-shared-secret", "s", "--remote-signing-url", proxy.URL)
			// Ask for two signatures: a replayed request is only noticed when
			// the copy arrives, after the genuine one was answered.
			signer, err := sess.Wait(context.Background())
			for i := 0; err == nil && i < 2; i++ {
				var sig []byte
				msg := testAttributes(i)
				sig, err = crypto.SignMessage(signer, rand.Reader, msg, crypto.SHA256)
				if err == nil {
					if verr := cms.CheckSignature(signer.Certificate(), msg, sig); verr != nil {
						t.Fatalf("a signature that does not verify was returned: %v", verr)
					}
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.initErr) {
				t.Fatalf("initiator: err=%v, want %q\nsigner stderr:\n%s", err, tc.initErr, proc.stderr)
			}
			exit := proc.wait(t)
			if tc.signerErr == "" {
				// The initiator detected it and ended the session with a reason.
				if exit != nil || !strings.Contains(proc.stderr.String(), "signing session closed; reason: the initiator aborted the session") {
					t.Errorf("signer: exit %v\n%s", exit, proc.stderr)
				}
				return
			}
			if exit == nil || !strings.Contains(proc.lastLine(), tc.signerErr) {
				t.Errorf("signer exit %v, last line %q, want %q", exit, proc.lastLine(), tc.signerErr)
			}
		})
	}
}
