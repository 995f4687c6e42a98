package smartcard_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/farsign/farsign/internal/testenv"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/relay/standalone"
	"github.com/farsign/farsign/signer/piv"
	"github.com/farsign/farsign/signer/session"
	"github.com/farsign/farsign/signer/smartcard/smartcardtest"
)

// TestRemoteSigningWithSmartCard is the end-to-end scenario below the
// command line: a card provisioned by `signer smartcard-generate-key` (key
// generated on the card, self-signed certificate stored in 9c), a real relay on
// loopback, the agent's initiator session, and the signer session using the
// card through pcscd. For both schemes, a first attempt with a wrong PIN is
// rejected and shows the attempts left; then the initiator gets signatures
// that verify against the card's certificate.
func TestRemoteSigningWithSmartCard(t *testing.T) {
	const serial = 24681357
	cards := smartcardtest.Insert(t, serial)
	cert := smartcardtest.Provision(t, serial, "9c")
	relayURL := relaytest.Start(t, standalone.Config{})

	for _, scheme := range []string{"publickey0", "sharedsecret0"} {
		t.Run(scheme, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			run := func(pin string) (*remote.Session, chan error, *testenv.Buffer) {
				t.Setenv("E2E_PIN", pin)
				rc := remote.Config{RelayURL: relayURL, StepSummary: "-", JoinTimeout: 20 * time.Second, ResponseTimeout: 20 * time.Second}
				secret := []byte("correct horse battery staple")
				if scheme == "publickey0" {
					rc.SignerPublicKey = cert.RawSubjectPublicKeyInfo
				} else {
					rc.SharedSecret = secret
				}
				sess, err := remote.Start(ctx, rc)
				if err != nil {
					t.Fatal(err)
				}
				js, err := sjs.Parse(sess.JoinLine())
				if err != nil {
					t.Fatal(err)
				}
				log := &testenv.Buffer{}
				done := make(chan error, 1)
				go func() {
					key, err := piv.Open(ctx, piv.Options{Slot: "9c", PINEnv: "E2E_PIN", Notice: log})
					if err != nil {
						done <- err
						return
					}
					defer key.Close()
					sc := session.Config{Key: key, RelayURL: relayURL, Log: log, JoinTimeout: 20 * time.Second}
					if scheme == "sharedsecret0" {
						sc.SharedSecret = secret
					}
					_, err = session.Run(ctx, js, sc)
					done <- err
				}()
				return sess, done, log
			}

			// Wrong PIN first. publickey0 needs the card to decrypt the join
			// string, so the signer fails before joining; sharedsecret0 joins
			// and fails at the first signature.
			sess, done, log := run("000000")
			var signErr error
			if scheme == "sharedsecret0" {
				signer, err := sess.Wait(ctx)
				if err != nil {
					t.Fatalf("initiator: %v\nsigner log:\n%s", err, log)
				}
				_, signErr = crypto.SignMessage(signer, rand.Reader, attributes(t, 0), crypto.SHA256)
				signer.Close()
			}
			err := <-done
			var wrong *piv.WrongPINError
			if !errors.As(err, &wrong) || !strings.Contains(err.Error(), "attempts left") {
				t.Fatalf("wrong PIN: signer error %v", err)
			}
			if scheme == "sharedsecret0" && signErr == nil {
				t.Fatal("the initiator got a signature although the PIN was wrong")
			}
			if got := cards[0].PINRetries(); got != 2 {
				t.Fatalf("card has %d PIN attempts left, want 2", got)
			}

			// Right PIN: signatures that verify against the card's certificate.
			sess, done, log = run(smartcardtest.PIN)
			signer, err := sess.Wait(ctx)
			if err != nil {
				t.Fatalf("initiator: %v\nsigner log:\n%s", err, log)
			}
			if !signer.Certificate().Equal(cert) {
				t.Fatal("the initiator received another certificate than the card's")
			}
			for i := range 3 {
				attrs := attributes(t, i)
				sig, err := crypto.SignMessage(signer, rand.Reader, attrs, crypto.SHA256)
				if err != nil {
					t.Fatalf("signature %d: %v\nsigner log:\n%s", i, err, log)
				}
				if err := cms.CheckSignature(cert, attrs, sig); err != nil {
					t.Fatalf("signature %d does not verify against the card's certificate: %v", i, err)
				}
			}
			if err := signer.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("signer session: %v\n%s", err, log)
			}
			if got := cards[0].PINRetries(); got != 3 {
				t.Errorf("PIN attempts after the right PIN: %d", got)
			}
		})
	}
}

// attributes returns CMS signed attributes for a made-up CodeDirectory: what
// the agent sends for every signature, and all the signer's policy accepts.
func attributes(t *testing.T, i int) []byte {
	t.Helper()
	cd := []byte(fmt.Sprintf("CodeDirectory %d", i))
	h := sha256.Sum256(cd)
	attrs, err := cms.SignedAttributes(cd, []cms.CDHash{{Hash: crypto.SHA256, Digest: h[:]}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}
