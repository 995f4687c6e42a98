package remote

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/peer"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/relay/standalone"
)

type identity struct {
	key  crypto.Signer
	cert *x509.Certificate
}

var (
	idOnce              sync.Once
	rsaID, ecID, rsaID2 identity
)

func ids(t *testing.T) (rsaA, ec, rsaB identity) {
	idOnce.Do(func() {
		mk := func(alg applecert.KeyAlgorithm) identity {
			k, c, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileAppleDevelopment, Algorithm: alg, TeamID: "T", PersonName: "P"})
			if err != nil {
				panic(err)
			}
			return identity{k, c}
		}
		rsaID, ecID, rsaID2 = mk(applecert.RSA2048), mk(applecert.ECDSAP256), mk(applecert.RSA2048)
	})
	return rsaID, ecID, rsaID2
}

// fakeSigner is a hand-written signer peer that can misbehave.
type fakeSigner struct {
	decrypt crypto.Decrypter  // publickey0
	secret  []byte            // sharedsecret0
	cert    *x509.Certificate // sent as the signing certificate
	// sign answers a sign request.
	sign func(msg []byte) *peer.Signature
}

// run joins the session of joinLine on relayURL and serves it until it ends.
func (f fakeSigner) run(t *testing.T, relayURL, joinLine string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			js, err := sjs.Parse(joinLine)
			if err != nil {
				return err
			}
			j, err := handshake.Join(js, handshake.Credentials{Key: f.decrypt, Password: f.secret})
			if err != nil {
				return err
			}
			c, err := relayclient.Dial(ctx, relayURL, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Hello(ctx); err != nil {
				return err
			}
			if _, err := c.JoinSession(ctx, j.SessionID(), j.JoinContext()); err != nil {
				return err
			}
			ch, _ := j.Finish()
			p := relayclient.NewPeer(c, j.SessionID(), ch)
			for _, m := range []peer.Message{&peer.Ping{}, &peer.Pong{}} {
				if err := p.Send(ctx, m); err != nil {
					return err
				}
				if _, err := p.Receive(ctx); err != nil {
					return err
				}
			}
			for {
				m, err := p.Receive(ctx)
				if err != nil {
					return err
				}
				switch m := m.(type) {
				case *peer.RequestSigningCertificate:
					err = p.Send(ctx, &peer.SigningCertificate{Certificates: []peer.CertificateInfo{{Certificate: f.cert.Raw}}})
				case *peer.SignRequest:
					err = p.Send(ctx, f.sign(m.Message))
				}
				if err != nil {
					return err
				}
			}
		}()
	}()
	return done
}

func honest(key crypto.Signer, oid asn1.ObjectIdentifier) func([]byte) *peer.Signature {
	return func(msg []byte) *peer.Signature {
		d := sha256.Sum256(msg)
		sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			panic(err)
		}
		return &peer.Signature{Message: msg, Signature: sig, AlgorithmOID: oid}
	}
}

func startSession(t *testing.T, cfg Config) (*Session, string) {
	t.Helper()
	url := relaytest.Start(t, standalone.Config{})
	cfg.RelayURL = url
	cfg.StepSummary = "-"
	if cfg.ResponseTimeout == 0 {
		cfg.ResponseTimeout = 10 * time.Second
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, url
}

// TestSignatureChecks: whatever a signer answers, only a signature that
// verifies against its certificate, with the algorithm the request needs,
// is returned; anything else ends the session.
func TestSignatureChecks(t *testing.T) {
	rsaA, ec, rsaB := ids(t)
	msg := []byte("CMS signed attributes stand-in")
	for _, tc := range []struct {
		name string
		id   identity
		sign func([]byte) *peer.Signature
		want string
	}{
		{"honest RSA", rsaA, honest(rsaA.key, peer.OIDSHA256WithRSA), ""},
		{"honest ECDSA", ec, honest(ec.key, peer.OIDECDSAWithSHA256), ""},
		{"reports another algorithm", ec, honest(ec.key, peer.OIDECDSAWithSHA384), "the signer signed with ECDSA-SHA384, but this request needs ECDSA-SHA256"},
		{"reports an RSA algorithm for an EC key", ec, honest(ec.key, peer.OIDSHA256WithRSA), "the signer signed with SHA256-RSA, but this request needs ECDSA-SHA256"},
		{"unknown algorithm", rsaA, honest(rsaA.key, asn1.ObjectIdentifier{1, 2, 3}), "the signer reports an unknown signature algorithm 1.2.3"},
		{"signed by another key", rsaA, honest(rsaB.key, peer.OIDSHA256WithRSA), "the signature does not verify against the signer's certificate"},
		{"garbage", rsaA, func(m []byte) *peer.Signature {
			return &peer.Signature{Message: m, Signature: bytes.Repeat([]byte{7}, 256), AlgorithmOID: peer.OIDSHA256WithRSA}
		}, "the signature does not verify"},
		{"signed another message", rsaA, func(m []byte) *peer.Signature {
			s := honest(rsaA.key, peer.OIDSHA256WithRSA)([]byte("something else"))
			return s
		}, "the signature answers a different message than the one sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, url := startSession(t, Config{SharedSecret: []byte("pw")})
			done := fakeSigner{secret: []byte("pw"), cert: tc.id.cert, sign: tc.sign}.run(t, url, s.JoinLine())
			signer, err := s.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.SignMessage(rand.Reader, msg, crypto.SHA256)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := signer.Certificate().CheckSignature(expectedAlg(t, tc.id), msg, sig); err != nil {
					t.Fatal(err)
				}
				signer.Close()
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasSuffix(err.Error(), "; refusing to use it") {
					t.Fatalf("sig=%x err=%v, want %q", sig, err, tc.want)
				}
				if signer.Signatures() != 0 {
					t.Error("a bad signature was counted")
				}
				if _, err := signer.SignMessage(rand.Reader, msg, crypto.SHA256); err == nil {
					t.Error("the session went on after a bad signature")
				}
			}
			var closed *relayclient.SessionClosedError
			if err := <-done; !errors.As(err, &closed) {
				t.Errorf("fake signer ended with %v, want the session closed", err)
			}
		})
	}
}

func expectedAlg(t *testing.T, id identity) x509.SignatureAlgorithm {
	a, err := expectedAlgorithm(id.cert.PublicKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestPublicKey0CertificateMismatch: a publickey0 signer that decrypts with
// the key it was sent to but hands out a certificate for another key is
// refused before any signing.
func TestPublicKey0CertificateMismatch(t *testing.T) {
	rsaA, _, rsaB := ids(t)
	s, url := startSession(t, Config{SignerPublicKey: rsaA.cert.RawSubjectPublicKeyInfo})
	fakeSigner{decrypt: rsaA.key.(*rsa.PrivateKey), cert: rsaB.cert, sign: honest(rsaB.key, peer.OIDSHA256WithRSA)}.run(t, url, s.JoinLine())
	_, err := s.Wait(context.Background())
	want := "the signer's certificate is for a different key (SPKI sha256 " + handshake.SPKIFingerprint(rsaB.cert.RawSubjectPublicKeyInfo) +
		") than the one the join string was encrypted to (SPKI sha256 " + handshake.SPKIFingerprint(rsaA.cert.RawSubjectPublicKeyInfo) + ")"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestSignerAPI: the crypto.Signer face of a remote signer.
func TestSignerAPI(t *testing.T) {
	_, ec, _ := ids(t)
	s, url := startSession(t, Config{SharedSecret: []byte("pw")})
	fakeSigner{secret: []byte("pw"), cert: ec.cert, sign: honest(ec.key, peer.OIDECDSAWithSHA256)}.run(t, url, s.JoinLine())
	signer, err := s.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer signer.Close()
	if !signer.Public().(*ecdsa.PublicKey).Equal(ec.cert.PublicKey) {
		t.Error("Public() is not the certificate's key")
	}
	if _, err := signer.Sign(rand.Reader, make([]byte, 32), crypto.SHA256); !errors.Is(err, ErrNeedsMessage) {
		t.Errorf("Sign with a digest: %v", err)
	}
	if _, err := signer.SignMessage(rand.Reader, []byte("m"), &rsa.PSSOptions{Hash: crypto.SHA256}); err == nil || !strings.Contains(err.Error(), "RSA-PSS") {
		t.Errorf("PSS: %v", err)
	}
	if _, err := signer.SignMessage(rand.Reader, []byte("m"), crypto.MD5); err == nil || !strings.Contains(err.Error(), "unsupported hash") {
		t.Errorf("MD5: %v", err)
	}
	// crypto.SignMessage uses the MessageSigner path.
	sig, err := crypto.SignMessage(signer, rand.Reader, []byte("m"), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	if !ecdsa.VerifyASN1(ec.cert.PublicKey.(*ecdsa.PublicKey), d[:], sig) {
		t.Error("signature does not verify")
	}
}

// TestInstructions: rcodesign's printed join instructions (spec §2.3) with
// the signer command, and the GitHub step summary.
func TestInstructions(t *testing.T) {
	summary := filepath.Join(t.TempDir(), "summary.md")
	os.WriteFile(summary, []byte("# earlier step\n"), 0o644)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	url := relaytest.Start(t, standalone.Config{})
	var log bytes.Buffer
	s, err := Start(context.Background(), Config{RelayURL: url, SharedSecret: []byte("pw"), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pem := strings.TrimRight(strings.ReplaceAll(s.JoinPEM(), "\r\n", "\n"), "\n")
	want := "connecting to " + url + "\n" +
		"session successfully created on server\n" +
		"\n" +
		"Run the following command to join this signing session:\n" +
		"\n" +
		"    signer remote-sign " + s.JoinLine() + "\n" +
		"\n" +
		"Or if this output is too long, paste the following output:\n" +
		"\n" +
		pem + "\n" +
		"\n" +
		"Into an interactive editor using:\n" +
		"\n" +
		"    signer remote-sign --editor\n" +
		"\n" +
		"Or into a new file whose path you define with:\n" +
		"\n" +
		"    signer remote-sign --sjs-path /path/to/file/you/just/saved\n" +
		"\n" +
		"(The signer also needs the shared secret: --remote-shared-secret-env VAR, and this relay: --remote-signing-url " + url + ")\n" +
		"\n" +
		"(waiting for remote signer to join)\n"
	if log.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", log.String(), want)
	}
	if !strings.HasPrefix(s.JoinLine(), "gm1zaGFyZWRzZWNyZXQwg") || strings.ContainsAny(s.JoinLine(), "+/=") {
		t.Errorf("join line is not url-nopad sharedsecret0: %s", s.JoinLine())
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, w := range []string{"# earlier step\n", "### Remote signing session waiting for a signer", "```\nsigner remote-sign " + s.JoinLine() + "\n```", pem, "The session expires in 10m0s."} {
		if !strings.Contains(md, w) {
			t.Errorf("step summary lacks %q:\n%s", w, md)
		}
	}
}

func TestStartErrors(t *testing.T) {
	rsaA, ec, _ := ids(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "needs exactly one of"},
		{Config{SharedSecret: []byte("a"), SignerPublicKey: rsaA.cert.RawSubjectPublicKeyInfo}, "needs exactly one of"},
		{Config{SignerPublicKey: ec.cert.RawSubjectPublicKeyInfo, RelayURL: "ws://127.0.0.1:1/"}, "publickey0 needs an RSA key"},
		{Config{SharedSecret: []byte("a"), RelayURL: "http://x/"}, "must start with wss://"},
		{Config{SharedSecret: []byte("a"), RelayURL: "ws://127.0.0.1:1/"}, "cannot connect to relay ws://127.0.0.1:1/"},
	} {
		if _, err := Start(context.Background(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestPublicKeyInputs(t *testing.T) {
	rsaA, _, _ := ids(t)
	spki := rsaA.cert.RawSubjectPublicKeyInfo
	if got, err := ParsePublicKey(base64.StdEncoding.EncodeToString(spki)); err != nil || !bytes.Equal(got, spki) {
		t.Errorf("ParsePublicKey: %v", err)
	}
	if _, err := ParsePublicKey("not base64!"); err == nil {
		t.Error("bad base64 accepted")
	}
	if _, err := ParsePublicKey(base64.StdEncoding.EncodeToString([]byte("junk"))); err == nil {
		t.Error("junk DER accepted")
	}
	dir := t.TempDir()
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsaA.cert.Raw})
	indented := "    public key (for agent --remote-public-key-pem-file):\n"
	for line := range strings.Lines(string(pubPEM)) {
		indented += "    " + line
	}
	for name, content := range map[string]string{
		"pub.pem":      string(pubPEM),
		"cert.pem":     string(certPEM),
		"indented.txt": indented,
		"both.pem":     string(certPEM) + string(pubPEM),
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o644)
		if got, err := ReadPublicKeyPEM(path); err != nil || !bytes.Equal(got, spki) {
			t.Errorf("%s: %v", name, err)
		}
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("nothing here"), 0o644)
	if _, err := ReadPublicKeyPEM(empty); err == nil || !strings.Contains(err.Error(), "empty.pem: no PUBLIC KEY or CERTIFICATE block") {
		t.Errorf("empty: %v", err)
	}
}
