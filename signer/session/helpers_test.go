package session_test

import (
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"github.com/farsign/farsign/internal/testenv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/relayclient/relaytest"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/relay/standalone"
	"github.com/farsign/farsign/signer/keysource"
	"github.com/farsign/farsign/signer/session"
)

var (
	keyOnce sync.Once
	rsaKey  keysource.Key
	ecKey   keysource.Key
	rsaKey2 keysource.Key
)

// keys returns test identities (generated once: RSA generation is slow).
func keys(t testing.TB) (rsa, ec, otherRSA keysource.Key) {
	t.Helper()
	keyOnce.Do(func() {
		mk := func(alg applecert.KeyAlgorithm, name string) keysource.Key {
			k, c, err := applecert.GenerateSelfSigned(applecert.Options{
				Profile: applecert.ProfileDeveloperIDApplication, Algorithm: alg,
				TeamID: "TEAM123456", PersonName: name,
			})
			if err != nil {
				panic(err)
			}
			key, err := keysource.FromIdentity(keyfile.Identity{Signer: k, Certificate: c})
			if err != nil {
				panic(err)
			}
			return key
		}
		rsaKey = mk(applecert.RSA2048, "RSA Signer")
		ecKey = mk(applecert.ECDSAP256, "EC Signer")
		rsaKey2 = mk(applecert.RSA2048, "Someone Else")
	})
	return rsaKey, ecKey, rsaKey2
}

// signedAttributes returns real CMS signed attributes for a made-up
// CodeDirectory numbered i.
func signedAttributes(t testing.TB, i int) []byte {
	t.Helper()
	cd := []byte(fmt.Sprintf("a CodeDirectory blob, number %d", i))
	s256 := sha256.Sum256(cd)
	s1 := sha1.Sum(cd)
	attrs, err := cms.SignedAttributes(cd, []cms.CDHash{
		{Hash: crypto.SHA256, Digest: s256[:]},
		{Hash: crypto.SHA1, Digest: s1[:]},
	}, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// pair is an initiator session and a signer session sharing a relay.
type pair struct {
	t         testing.TB
	ctx       context.Context
	sess      *remote.Session
	initLog   *testenv.Buffer
	signerLog *testenv.Buffer
	done      chan result
}

type result struct {
	res *session.Result
	err error
}

type pairOptions struct {
	key         keysource.Key // the signer's key
	publicKey   keysource.Key // whose SPKI the initiator encrypts to (publickey0); nil for sharedsecret0
	secret      string        // initiator's shared secret
	signerSec   string        // signer's shared secret ("" = same as secret)
	relayURL    string        // "" starts a relay
	signerRelay string        // relay the signer uses when the join string names none ("" = relayURL)
	joinTimeout time.Duration
	config      func(*session.Config)
	remote      func(*remote.Config)
	signerCtx   context.Context
}

// start creates the session and starts the signer in a goroutine.
func start(t testing.TB, o pairOptions) *pair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if o.relayURL == "" {
		o.relayURL = relaytest.Start(t, standalone.Config{})
	}
	if o.signerRelay == "" {
		o.signerRelay = o.relayURL
	}
	p := &pair{t: t, ctx: ctx, initLog: &testenv.Buffer{}, signerLog: &testenv.Buffer{}, done: make(chan result, 1)}
	rc := remote.Config{RelayURL: o.relayURL, Log: p.initLog, StepSummary: "-", JoinTimeout: o.joinTimeout, ResponseTimeout: 20 * time.Second}
	if o.publicKey != nil {
		rc.SignerPublicKey = o.publicKey.Certificate().RawSubjectPublicKeyInfo
	} else {
		rc.SharedSecret = []byte(o.secret)
	}
	if o.remote != nil {
		o.remote(&rc)
	}
	sess, err := remote.Start(ctx, rc)
	if err != nil {
		t.Fatalf("remote.Start: %v", err)
	}
	p.sess = sess
	js, err := sjs.Parse(sess.JoinLine())
	if err != nil {
		t.Fatal(err)
	}
	sc := session.Config{Key: o.key, RelayURL: o.signerRelay, Log: p.signerLog, JoinTimeout: 20 * time.Second}
	if o.secret != "" || o.signerSec != "" {
		sec := o.signerSec
		if sec == "" {
			sec = o.secret
		}
		sc.SharedSecret = []byte(sec)
	}
	if o.config != nil {
		o.config(&sc)
	}
	sctx := ctx
	if o.signerCtx != nil {
		sctx = o.signerCtx
	}
	go func() {
		res, err := session.Run(sctx, js, sc)
		p.done <- result{res, err}
	}()
	return p
}

// signerResult waits for the signer session to end.
func (p *pair) signerResult() result {
	p.t.Helper()
	select {
	case r := <-p.done:
		return r
	case <-time.After(30 * time.Second):
		p.t.Fatalf("signer session did not end; its log:\n%s", p.signerLog)
		return result{}
	}
}

func mustContain(t testing.TB, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, s)
		}
	}
}
