package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/relay/standalone"
	"github.com/farsign/farsign/signer/smartcard/smartcardtest"
)

// TestMain makes this test binary double as `signer` and as three test
// helpers, each run as a separate process by the scripts and the end-to-end
// tests (testscript puts them on PATH):
//
//	testjoin   prints a join string for a key or secret, with no relay session
//	testrelay  runs an in-process relay and writes its URL to a file
//	testinit   runs an initiator session (agent/remote) that asks for signatures
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"signer":    main,
		"testjoin":  testJoinMain,
		"testrelay": testRelayMain,
		"testinit":  testInitMain,
	})
}

func TestScripts(t *testing.T) {
	root := testenv.RepoRoot(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			if err := smartcardtest.Setup(env); err != nil {
				return err
			}
			env.Setenv("REPO", root)
			// The default relay is never contacted by a test.
			env.Setenv("FARSIGN_REMOTE_SIGNING_URL", "ws://127.0.0.1:1/")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// vcard insert SERIAL | vcard retries SERIAL N: virtual PIV cards
			// on the real pcscd (see smartcardtest).
			"vcard": smartcardtest.Commands()["vcard"],
			// envfile VAR FILE: set VAR to FILE's contents.
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: envfile VAR FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
			// waitfile FILE: wait (up to 30 s) until FILE exists and is not empty.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				path := ts.MkAbs(args[0])
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
						return
					}
				}
				ts.Fatalf("%s did not appear", args[0])
			},
		},
	})
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// writeAtomic writes data to path so a waiting reader never sees part of it.
func writeAtomic(path string, data []byte) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		fail("%v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail("%v", err)
	}
}

// testJoinMain: testjoin [-pem] publickey0 CERT.pem RELAY-URL | sharedsecret0 SECRET
func testJoinMain() {
	pemForm := flag.Bool("pem", false, "print the PEM form")
	flag.Parse()
	args := flag.Args()
	var init *handshake.Initiator
	var err error
	switch {
	case len(args) == 3 && args[0] == "publickey0":
		certs, rerr := keyfile.ReadCertificates(args[1])
		if rerr != nil {
			fail("%v", rerr)
		}
		init, err = handshake.NewPublicKey0(certs[0].RawSubjectPublicKeyInfo, args[2])
	case len(args) == 2 && args[0] == "sharedsecret0":
		init, err = handshake.NewSharedSecret0([]byte(args[1]))
	default:
		fail("usage: testjoin [-pem] publickey0 CERT.pem URL | sharedsecret0 SECRET")
	}
	if err != nil {
		fail("%v", err)
	}
	if *pemForm {
		fmt.Print(init.PEM())
	} else {
		fmt.Println(init.Line())
	}
}

// testRelayMain: testrelay URLFILE — serve until interrupted.
func testRelayMain() {
	if len(os.Args) != 2 {
		fail("usage: testrelay URLFILE")
	}
	srv, err := standalone.New(standalone.Config{})
	if err != nil {
		fail("%v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail("%v", err)
		}
	}()
	writeAtomic(os.Args[1], []byte("ws://"+l.Addr().String()+"/"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
}

// testInitMain runs an initiator: it creates a session, writes the join string
// to -join, waits for the signer and asks for -n signatures of real CMS signed
// attributes (or of arbitrary bytes with -arbitrary), verifying each against
// the certificate, then says goodbye. It prints one line per verified
// signature on stdout.
func testInitMain() {
	relayURL := flag.String("relay", "", "relay URL")
	secret := flag.String("secret", "", "sharedsecret0 secret")
	pubCert := flag.String("pubkey", "", "PEM file with the certificate or PUBLIC KEY to encrypt to (publickey0)")
	joinFile := flag.String("join", "", "write the join string here")
	pemJoin := flag.Bool("pem", false, "write the PEM form of the join string")
	n := flag.Int("n", 1, "signatures to request")
	arbitrary := flag.Bool("arbitrary", false, "ask to sign bytes that are not CMS signed attributes")
	flag.Parse()
	cfg := remote.Config{RelayURL: *relayURL, Log: os.Stderr, JoinTimeout: 30 * time.Second, ResponseTimeout: 30 * time.Second}
	if *pubCert != "" {
		cfg.SignerPublicKey = readSPKI(*pubCert)
	} else {
		cfg.SharedSecret = []byte(*secret)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sess, err := remote.Start(ctx, cfg)
	if err != nil {
		fail("testinit: %v", err)
	}
	join := sess.JoinLine()
	if *pemJoin {
		join = sess.JoinPEM()
	}
	writeAtomic(*joinFile, []byte(join))
	signer, err := sess.Wait(ctx)
	if err != nil {
		fail("testinit: %v", err)
	}
	for i := range *n {
		msg := testAttributes(i)
		if *arbitrary {
			msg = []byte("not a code signature " + strconv.Itoa(i))
		}
		sig, err := crypto.SignMessage(signer, rand.Reader, msg, crypto.SHA256)
		if err != nil {
			fail("testinit: signature %d: %v", i+1, err)
		}
		if err := cms.CheckSignature(signer.Certificate(), msg, sig); err != nil {
			fail("testinit: signature %d does not verify: %v", i+1, err)
		}
		fmt.Printf("signature %d verified against %s\n", i+1, signer.Certificate().Subject.CommonName)
	}
	if err := signer.Close(); err != nil {
		fail("testinit: %v", err)
	}
}

// readSPKI returns the first PUBLIC KEY, or the first CERTIFICATE's key, in a
// PEM file (as agent --remote-public-key-pem-file accepts).
func readSPKI(path string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	// smartcard-scan indents the block it prints.
	var data []byte
	for line := range strings.Lines(string(raw)) {
		data = append(data, strings.TrimLeft(line, " \t")...)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			fail("%s: no PUBLIC KEY or CERTIFICATE block", path)
		}
		switch b.Type {
		case "PUBLIC KEY":
			return b.Bytes
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				fail("%v", err)
			}
			return c.RawSubjectPublicKeyInfo
		}
	}
}

// testAttributes returns CMS signed attributes for a made-up CodeDirectory.
func testAttributes(i int) []byte {
	cd := []byte("CodeDirectory " + strconv.Itoa(i))
	s256, s1 := sha256.Sum256(cd), sha1.Sum(cd)
	attrs, err := cms.SignedAttributes(cd, []cms.CDHash{{Hash: crypto.SHA256, Digest: s256[:]}, {Hash: crypto.SHA1, Digest: s1[:]}},
		time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC))
	if err != nil {
		fail("%v", err)
	}
	return attrs
}
