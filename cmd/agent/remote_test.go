package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/codesign"
	"github.com/farsign/farsign/agent/macho/machotest"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/relay/standalone"
	"github.com/farsign/farsign/signer/keysource"
	"github.com/farsign/farsign/signer/session"
)

// testIdentity writes a fresh self-signed RSA identity (key + certificate)
// and the certificate alone as PEM files.
func testIdentity(t *testing.T, dir string) (idPath, certPath string, id keyfile.Identity) {
	t.Helper()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
		Profile: applecert.ProfileDeveloperIDApplication, Algorithm: applecert.RSA2048, TeamID: "REMOTE0001", PersonName: "Remote Test",
	})
	if err != nil {
		t.Fatal(err)
	}
	id = keyfile.Identity{Signer: key, Certificate: cert}
	idPath, certPath = filepath.Join(dir, "id.pem"), filepath.Join(dir, "cert.pem")
	if err := keyfile.WritePEM(idPath, id); err != nil {
		t.Fatal(err)
	}
	if err := keyfile.WriteCertificatesPEM(certPath, cert); err != nil {
		t.Fatal(err)
	}
	return idPath, certPath, id
}

// parseRemote parses args as `agent sign` flags and returns the remote config.
func parseRemote(t *testing.T, args ...string) (*remote.Config, error) {
	t.Helper()
	f := &signFlags{}
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	f.remote.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.remote.config(nil)
}

func TestRemoteFlags(t *testing.T) {
	dir := t.TempDir()
	_, certPath, id := testIdentity(t, dir)
	t.Setenv(relayclient.EnvURL, "ws://env-relay.example/")
	t.Setenv("FARSIGN_TEST_SECRET", "from the environment")
	t.Setenv("FARSIGN_TEST_EMPTY", "")

	// Off unless a remote flag is given.
	if cfg, err := parseRemote(t); cfg != nil || err != nil {
		t.Fatalf("no flags: cfg=%v err=%v", cfg, err)
	}

	cfg, err := parseRemote(t, "--remote-public-key-pem-file", certPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.SignerPublicKey, id.Certificate.RawSubjectPublicKeyInfo) || cfg.SharedSecret != nil {
		t.Error("publickey0 from a certificate PEM: wrong key")
	}
	if cfg.RelayURL != "ws://env-relay.example/" {
		t.Errorf("relay URL = %q, want the environment's", cfg.RelayURL)
	}
	if cfg.SessionTTL != remote.DefaultSessionTTL || cfg.JoinTimeout != 0 || cfg.ResponseTimeout != remote.DefaultResponseTimeout {
		t.Errorf("default timeouts: %+v", cfg)
	}

	cfg, err = parseRemote(t, "--remote-signer", "--remote-shared-secret-env", "FARSIGN_TEST_SECRET",
		"--remote-signing-url", "wss://relay.example/", "--remote-join-timeout", "90s", "--remote-session-ttl", "20m", "--remote-response-timeout", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.SharedSecret) != "from the environment" || cfg.SignerPublicKey != nil || cfg.RelayURL != "wss://relay.example/" ||
		cfg.JoinTimeout != 90*time.Second || cfg.SessionTTL != 20*time.Minute || cfg.ResponseTimeout != time.Minute {
		t.Errorf("sharedsecret0 config: %+v", cfg)
	}

	spkiB64 := base64.StdEncoding.EncodeToString(id.Certificate.RawSubjectPublicKeyInfo)
	cfg, err = parseRemote(t, "--remote-public-key", spkiB64)
	if err != nil || !bytes.Equal(cfg.SignerPublicKey, id.Certificate.RawSubjectPublicKeyInfo) {
		t.Errorf("--remote-public-key: err=%v", err)
	}

	// Pins: a file and a fingerprint in openssl's spelling, in either scheme.
	sum := sha256.Sum256(id.Certificate.Raw)
	opensslForm := "sha256:" + strings.ToUpper(strings.Join(regexp.MustCompile("..").FindAllString(hex.EncodeToString(sum[:]), -1), ":"))
	for _, scheme := range [][]string{{"--remote-shared-secret", "s"}, {"--remote-public-key-pem-file", certPath}} {
		cfg, err = parseRemote(t, append(scheme, "--remote-expect-certificate", certPath, "--remote-expect-certificate", opensslForm)...)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.ExpectCertificates) != 2 || cfg.ExpectCertificates[0].SHA256 != sum || cfg.ExpectCertificates[1].SHA256 != sum ||
			!cfg.ExpectCertificates[0].Certificate.Equal(id.Certificate) || cfg.ExpectCertificates[1].Certificate != nil {
			t.Errorf("%s: expected certificates %+v", scheme[0], cfg.ExpectCertificates)
		}
	}
	_, otherCert, _ := testIdentity(t, t.TempDir())
	notCert := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notCert, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args  []string
		usage bool // a usage error (exit 2), not a runtime one
		want  string
	}{
		{[]string{"--remote-expect-certificate", certPath}, true, "remote signing needs the signer's public key"},
		{[]string{"--remote-shared-secret", "s", "--remote-expect-certificate", "sha256:" + hex.EncodeToString(sum[:])[:63] + "x"}, true, "--remote-expect-certificate: sha256:"},
		{[]string{"--remote-shared-secret", "s", "--remote-expect-certificate", "sha256:abcd"}, true, "--remote-expect-certificate: sha256:abcd: 4 hex digits, want 64"},
		{[]string{"--remote-shared-secret", "s", "--remote-expect-certificate", filepath.Join(dir, "nope.pem")}, true, "--remote-expect-certificate: open " + filepath.Join(dir, "nope.pem") + ": no such file"},
		{[]string{"--remote-shared-secret", "s", "--remote-expect-certificate", notCert}, true, "notes.txt: not a PEM file, and not a DER certificate"},
		{[]string{"--remote-public-key-pem-file", certPath, "--remote-expect-certificate", otherCert}, true, "is for a different key"},
		{[]string{"--remote-signer"}, true, "remote signing needs the signer's public key"},
		{[]string{"--join-string-file", "j.txt"}, true, "remote signing needs"},
		{[]string{"--remote-shared-secret", "a", "--remote-shared-secret-env", "FARSIGN_TEST_SECRET"}, true, "give only one of"},
		{[]string{"--remote-public-key-pem-file", certPath, "--remote-public-key", spkiB64}, true, "give only one of"},
		{[]string{"--remote-shared-secret", ""}, true, "--remote-shared-secret is empty"},
		{[]string{"--remote-shared-secret", "s", "--remote-signing-url", "http://relay.example/"}, true, "must start with wss://"},
		{[]string{"--remote-shared-secret", "s", "--remote-session-ttl", "0s"}, true, "must be positive"},
		{[]string{"--remote-shared-secret", "s", "--remote-response-timeout", "-1s"}, true, "must be positive"},
		{[]string{"--remote-public-key", "!!"}, true, "not standard base64"},
		{[]string{"--remote-public-key", base64.StdEncoding.EncodeToString([]byte("not a key"))}, true, "not a DER SubjectPublicKeyInfo"},
		{[]string{"--remote-public-key-pem-file", filepath.Join(dir, "missing.pem")}, false, "no such file"},
		{[]string{"--remote-shared-secret-env", "FARSIGN_TEST_UNSET_VARIABLE"}, false, "FARSIGN_TEST_UNSET_VARIABLE is not set"},
		{[]string{"--remote-shared-secret-env", "FARSIGN_TEST_EMPTY"}, false, "FARSIGN_TEST_EMPTY is not set or empty"},
		{[]string{"--remote-shared-secret", "s", "--join-string-file", filepath.Join(dir, "nodir", "j.txt")}, false, "does not exist"},
	} {
		cfg, err := parseRemote(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: cfg=%v err=%v, want %q", tc.args, cfg, err, tc.want)
			continue
		}
		var ue *cli.UsageError
		if errors.As(err, &ue) != tc.usage {
			t.Errorf("%q: usage error = %v, want %v (%v)", tc.args, !tc.usage, tc.usage, err)
		}
	}
	if _, err := parseRemote(t, "--remote-join-timeout", "0s"); err == nil {
		t.Error("--remote-join-timeout 0s accepted")
	}
}

// agentRun is `agent sign ...` running in this process.
type agentRun struct {
	stderr *testenv.Buffer
	done   chan int
}

func startAgent(ctx context.Context, args ...string) *agentRun {
	a := &agentRun{stderr: &testenv.Buffer{}, done: make(chan int, 1)}
	go func() { a.done <- newApp(&bytes.Buffer{}, a.stderr).Run(ctx, append([]string{"sign"}, args...)) }()
	return a
}

func (a *agentRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-a.done:
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("agent sign did not finish; its stderr:\n%s", a.stderr)
		return -1
	}
}

// joinString waits for the agent's --join-string-file.
func joinString(t *testing.T, path string, a *agentRun) sjs.JoinString {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			js, err := sjs.Parse(string(b))
			if err != nil {
				t.Fatalf("the join string file does not parse: %v\n%s", err, b)
			}
			return js
		}
		select {
		case code := <-a.done:
			t.Fatalf("agent exited %d before writing the join string:\n%s", code, a.stderr)
		default:
		}
	}
	t.Fatalf("no join string in %s; agent stderr:\n%s", path, a.stderr)
	return nil
}

// TestSignRemote runs `agent sign --remote-...` in this process against an
// in-process relay and signer session, over a synthesized universal binary:
// one session, one signature per slice, a verified output, and progress
// lines naming the file and each slice.
func TestSignRemote(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := t.TempDir()
	idPath, certPath, id := testIdentity(t, dir)
	relayURL := relaytest.Start(t, standalone.Config{})
	in := filepath.Join(dir, "tool")
	if err := os.WriteFile(in, machotest.Universal(machotest.Exe(machotest.Options{}), machotest.Exe(machotest.Options{Arch: machotest.X86_64})), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, scheme := range []string{"publickey0", "sharedsecret0"} {
		t.Run(scheme, func(t *testing.T) {
			out := filepath.Join(dir, "tool."+scheme)
			join := filepath.Join(dir, "join."+scheme)
			args := []string{"--remote-signing-url", relayURL, "--timestamp-url", "none", "--join-string-file", join, in, out}
			var secret []byte
			if scheme == "publickey0" {
				args = append([]string{"--remote-public-key-pem-file", certPath}, args...)
			} else {
				secret = []byte("a secret for " + t.Name())
				t.Setenv("FARSIGN_TEST_SECRET", string(secret))
				args = append([]string{"--remote-shared-secret-env", "FARSIGN_TEST_SECRET"}, args...)
			}
			a := startAgent(context.Background(), args...)
			js := joinString(t, join, a)
			if st, err := os.Stat(join); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("join string file mode: %v %v", st.Mode(), err)
			}
			key, err := keysource.LoadPEM(idPath)
			if err != nil {
				t.Fatal(err)
			}
			defer key.Close()
			slog := &testenv.Buffer{}
			res, err := session.Run(context.Background(), js, session.Config{Key: key, SharedSecret: secret, RelayURL: relayURL, Log: slog})
			if err != nil {
				t.Fatalf("signer: %v\n%s\nagent:\n%s", err, slog, a.stderr)
			}
			if code := a.wait(t); code != 0 {
				t.Fatalf("agent exit %d:\n%s", code, a.stderr)
			}
			if res.Signatures != 2 || res.Reason != remote.ReasonCompleted {
				t.Errorf("signer: %d signatures, reason %q; want 2, %q", res.Signatures, res.Reason, remote.ReasonCompleted)
			}
			log := a.stderr.String()
			for _, want := range []string{
				"remote signer ready after ",
				"; 2 signature(s) to make\n",
				"  tool (arm64): asking the remote signer for signature 1 of 2 (message digest ",
				"  tool (x86_64): asking the remote signer for signature 2 of 2 (message digest ",
				"  tool (x86_64): the remote signer answered in ",
				"relay server confirmed session termination\n",
				"of it waiting for the remote signer's 2 signature(s)\n",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("agent stderr lacks %q:\n%s", want, log)
				}
			}
			// The digests the agent announces are the ones the signer shows
			// before signing, so a person can match the two logs.
			announced := regexp.MustCompile(`message digest ([0-9a-f]{64})\)`).FindAllStringSubmatch(log, -1)
			shown := regexp.MustCompile(`message digest: ([0-9a-f]{64})`).FindAllStringSubmatch(slog.String(), -1)
			if len(announced) != 2 || len(shown) != 2 || announced[0][1] != shown[0][1] || announced[1][1] != shown[1][1] || announced[0][1] == announced[1][1] {
				t.Errorf("digests announced by the agent %q, shown by the signer %q", announced, shown)
			}
			if n := strings.Count(log, "session successfully created on server"); n != 1 {
				t.Errorf("%d sessions created, want 1", n)
			}
			// Verified up to the signer's certificate as the only root: the
			// CMS in every slice is by the remote signer's key.
			roots := x509.NewCertPool()
			roots.AddCert(id.Certificate)
			rep, err := codesign.VerifyFile(context.Background(), out, codesign.VerifyOptions{Roots: roots})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || len(rep.Slices) != 2 {
				t.Fatalf("output does not verify: %+v", rep)
			}
			for _, s := range rep.Slices {
				if s.Signer != id.Certificate.Subject.CommonName {
					t.Errorf("slice %s signed by %q", s.Arch, s.Signer)
				}
			}
		})
	}
}

// TestSignRemoteFailure: when the signer stops half-way (its limit is one
// signature, the universal binary needs two), the agent fails with the
// signer's reason and leaves no output, not even a temporary file.
func TestSignRemoteFailure(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := t.TempDir()
	idPath, _, _ := testIdentity(t, dir)
	relayURL := relaytest.Start(t, standalone.Config{})
	in := filepath.Join(dir, "tool")
	if err := os.WriteFile(in, machotest.Universal(machotest.Exe(machotest.Options{}), machotest.Exe(machotest.Options{Arch: machotest.X86_64})), 0o755); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	out := filepath.Join(outDir, "tool.signed")
	join := filepath.Join(dir, "join.txt")
	a := startAgent(context.Background(), "--remote-shared-secret", "s", "--remote-signing-url", relayURL,
		"--timestamp-url", "none", "--join-string-file", join, in, out)
	js := joinString(t, join, a)
	key, err := keysource.LoadPEM(idPath)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	_, err = session.Run(context.Background(), js, session.Config{Key: key, SharedSecret: []byte("s"), RelayURL: relayURL, MaxSignatures: 1})
	var refused *session.RefusedError
	if !errors.As(err, &refused) || refused.N != 2 {
		t.Fatalf("signer: %v", err)
	}
	if code := a.wait(t); code != 1 {
		t.Fatalf("agent exit %d, want 1:\n%s", code, a.stderr)
	}
	if want := "agent: slice 1 (x86_64): cms: signing: the remote signer left the session (the signer refused a request: the limit of 1 signatures"; !strings.Contains(a.stderr.String(), want) {
		t.Errorf("agent stderr lacks %q:\n%s", want, a.stderr)
	}
	if left, _ := os.ReadDir(outDir); len(left) != 0 {
		t.Errorf("files left in the output folder: %v", left)
	}
}

// TestSignRemoteInterrupted: cancelling the command (Ctrl-C) while it waits
// for the signer ends the session on the relay and exits 130.
func TestSignRemoteInterrupted(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := t.TempDir()
	relayURL := relaytest.Start(t, standalone.Config{})
	in := filepath.Join(dir, "tool")
	if err := os.WriteFile(in, machotest.Exe(machotest.Options{}), 0o755); err != nil {
		t.Fatal(err)
	}
	join := filepath.Join(dir, "join.txt")
	ctx, cancel := context.WithCancel(context.Background())
	a := startAgent(ctx, "--remote-shared-secret", "s", "--remote-signing-url", relayURL, "--join-string-file", join, in, in+".signed")
	js := joinString(t, join, a)
	cancel()
	if code := a.wait(t); code != 130 {
		t.Fatalf("agent exit %d, want 130:\n%s", code, a.stderr)
	}
	if !strings.Contains(a.stderr.String(), "interrupted") {
		t.Errorf("agent stderr:\n%s", a.stderr)
	}
	if _, err := os.Stat(in + ".signed"); !os.IsNotExist(err) {
		t.Errorf("output exists after an interrupt: %v", err)
	}
	// The session is gone from the relay: joining now fails.
	_, err := session.Run(context.Background(), js, session.Config{Key: mustKey(t), SharedSecret: []byte("s"), RelayURL: relayURL})
	if err == nil || !strings.Contains(err.Error(), "the relay does not know it") {
		t.Fatalf("joining the interrupted session: %v", err)
	}
}

func mustKey(t *testing.T) keysource.Key {
	t.Helper()
	idPath, _, _ := testIdentity(t, t.TempDir())
	k, err := keysource.LoadPEM(idPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// TestSignRemoteExpectCertificate runs `agent sign --remote-expect-certificate`
// against an in-process relay and a real signer session. With the signer's
// certificate pinned (among others) it signs, in either scheme; with another
// certificate pinned it refuses the signer before any signature, names both
// fingerprints on one line, writes nothing, and the signer is told why in a
// goodbye (it ends its session normally, having made no signature).
func TestSignRemoteExpectCertificate(t *testing.T) {
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	dir := t.TempDir()
	idPath, certPath, id := testIdentity(t, dir)
	_, otherPath, other := testIdentity(t, t.TempDir())
	relayURL := relaytest.Start(t, standalone.Config{})
	in := filepath.Join(dir, "tool")
	if err := os.WriteFile(in, machotest.Exe(machotest.Options{}), 0o755); err != nil {
		t.Fatal(err)
	}
	fp := func(c *x509.Certificate) string {
		s := sha256.Sum256(c.Raw)
		return "sha256:" + hex.EncodeToString(s[:])
	}
	key, err := keysource.LoadPEM(idPath)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()

	for _, tc := range []struct {
		name   string
		scheme []string
		pins   []string
		ok     bool
	}{
		{"sharedsecret0 right pin", []string{"--remote-shared-secret-env", "FARSIGN_TEST_SECRET"}, []string{otherPath, certPath}, true},
		{"publickey0 right pin", []string{"--remote-public-key-pem-file", certPath}, []string{strings.ToUpper(fp(id.Certificate))}, true},
		{"sharedsecret0 wrong pin", []string{"--remote-shared-secret-env", "FARSIGN_TEST_SECRET"}, []string{fp(other.Certificate)}, false},
		{"sharedsecret0 wrong pin file", []string{"--remote-shared-secret-env", "FARSIGN_TEST_SECRET"}, []string{otherPath}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var secret []byte
			if tc.scheme[0] == "--remote-shared-secret-env" {
				secret = []byte("a secret for " + t.Name())
				t.Setenv("FARSIGN_TEST_SECRET", string(secret))
			}
			outDir := t.TempDir()
			out := filepath.Join(outDir, "tool.signed")
			join := filepath.Join(dir, "join-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{}, tc.scheme...)
			for _, p := range tc.pins {
				args = append(args, "--remote-expect-certificate", p)
			}
			args = append(args, "--remote-signing-url", relayURL, "--timestamp-url", "none", "--join-string-file", join, in, out)
			a := startAgent(context.Background(), args...)
			js := joinString(t, join, a)
			slog := &testenv.Buffer{}
			res, err := session.Run(context.Background(), js, session.Config{Key: key, SharedSecret: secret, RelayURL: relayURL, Log: slog})
			if tc.ok && err != nil {
				t.Fatalf("signer: %v\n%s\nagent:\n%s", err, slog, a.stderr)
			}
			code := a.wait(t)
			log := a.stderr.String()
			if tc.ok {
				if code != 0 || res.Signatures != 1 || res.Reason != remote.ReasonCompleted {
					t.Fatalf("agent exit %d, signer made %d signature(s), reason %q:\n%s", code, res.Signatures, res.Reason, log)
				}
				if want := "remote signer's certificate " + fp(id.Certificate) + " is an expected one\n"; !strings.Contains(log, want) {
					t.Errorf("agent stderr lacks %q:\n%s", want, log)
				}
				roots := x509.NewCertPool()
				roots.AddCert(id.Certificate)
				rep, err := codesign.VerifyFile(context.Background(), out, codesign.VerifyOptions{Roots: roots})
				if err != nil || !rep.OK() {
					t.Fatalf("output does not verify: %+v %v", rep, err)
				}
				return
			}
			if code != 1 {
				t.Fatalf("agent exit %d, want 1:\n%s", code, log)
			}
			want := "agent: the signer's certificate is not the expected one: it presented " +
				`"Developer ID Application: Remote Test (REMOTE0001)" (` + fp(id.Certificate) + "), expected " + fp(other.Certificate) + "\n"
			if !strings.HasSuffix(log, want) {
				t.Errorf("agent stderr does not end with %q:\n%s", want, log)
			}
			if strings.Contains(log, "asking the remote signer") || strings.Contains(log, "is an expected one") {
				t.Errorf("agent went on after refusing the certificate:\n%s", log)
			}
			if left, _ := os.ReadDir(outDir); len(left) != 0 {
				t.Errorf("files left in the output folder: %v", left)
			}
			// The signer is told in a goodbye and fails with its own
			// explanation (so `signer remote-sign` exits 1), after no signature.
			if !errors.Is(err, session.ErrCertificateRejected) {
				t.Errorf("signer: %v, want session.ErrCertificateRejected", err)
			}
			if session.ReasonCertificateRejected != remote.ReasonCertificateRejected {
				t.Errorf("signer and agent disagree on the rejection reason: %q vs %q", session.ReasonCertificateRejected, remote.ReasonCertificateRejected)
			}
			if res == nil || res.Signatures != 0 || res.Reason != remote.ReasonCertificateRejected {
				t.Errorf("signer: %d signature(s), reason %q; want 0, %q", res.Signatures, res.Reason, remote.ReasonCertificateRejected)
			}
			if want := "signing session closed; reason: " + remote.ReasonCertificateRejected + "\n"; !strings.Contains(slog.String(), want) {
				t.Errorf("signer log lacks %q:\n%s", want, slog)
			}
		})
	}
}
