package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/protocol/wire"
)

// TestMain makes the test binary double as the relay command and as wsclient,
// a small websocket client the scripts use to talk to a running relay.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		// app().Main, like main: the scripts check signal handling too.
		"relay":    func() { app().Main() },
		"wsclient": func() { os.Exit(wsclient(os.Args[1:])) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile":   cmdWaitFile,
			"httpget":    cmdHTTPGet,
			"waitmetric": cmdWaitMetric,
			"gencert":    cmdGenCert,
		},
	})
}

// waitfile FILE: wait (up to 20 s) until FILE exists and is not empty.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && len(b) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear", args[0])
}

// waitmetric ADDRFILE REGEXP: poll /metrics (up to 20 s) until a line matches.
func cmdWaitMetric(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitmetric ADDRFILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	u, err := readURL(ts.MkAbs(args[0]))
	ts.Check(err)
	u = "http" + strings.TrimPrefix(u, "ws") + "metrics"
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if re.Match(body) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("no metric matched %q", args[1])
}

// gencert CERT KEY: write a self-signed certificate for 127.0.0.1 and its key.
func cmdGenCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gencert CERT KEY")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relay test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
}

func readURL(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// httpget ADDRFILE PATH: GET PATH from the relay whose URL is in ADDRFILE and
// print the status and body to stdout.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: httpget ADDRFILE PATH")
	}
	u, err := readURL(ts.MkAbs(args[0]))
	ts.Check(err)
	u = "http" + strings.TrimPrefix(u, "ws") + strings.TrimPrefix(args[1], "/")
	resp, err := http.Get(u)
	if err != nil {
		if !neg {
			ts.Fatalf("GET %s: %v", u, err)
		}
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%d\n%s", resp.StatusCode, body)
	if (resp.StatusCode != 200) != neg {
		ts.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
}

// wsclient session ADDRFILE: run a full two-peer session and print what
// each side received.
// wsclient hold ADDRFILE: pair two peers, print "paired", then wait for
// both to be told their session closed and print the reasons.
func wsclient(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wsclient session|hold ADDRFILE")
		return 2
	}
	url, err := readURL(args[1])
	if err == nil {
		switch args[0] {
		case "session":
			err = runSession(url)
		case "hold":
			err = runHold(url)
		default:
			err = fmt.Errorf("unknown mode %q", args[0])
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsclient:", err)
		return 1
	}
	return 0
}

type peer struct {
	name string
	ws   *websocket.Conn
	n    int
}

// dialer trusts the PEM certificate in $WSCLIENT_CA, if set (for wss://).
func dialer() (*websocket.Dialer, error) {
	d := *websocket.DefaultDialer
	if ca := os.Getenv("WSCLIENT_CA"); ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("no certificate in %s", ca)
		}
		d.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &d, nil
}

func dialPeer(url, name string) (*peer, error) {
	d, err := dialer()
	if err != nil {
		return nil, err
	}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return &peer{name: name, ws: ws}, nil
}

func (p *peer) send(api string, payload any) error {
	p.n++
	msg, err := wire.EncodeRequest(fmt.Sprintf("%s-%d", p.name, p.n), api, payload)
	if err != nil {
		return err
	}
	return p.ws.WriteMessage(websocket.TextMessage, msg)
}

// recv reads one message and prints "<peer> <- <type> [detail]".
func (p *peer) recv(want string) (wire.ServerMessage, error) {
	_ = p.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, raw, err := p.ws.ReadMessage()
	if err != nil {
		return wire.ServerMessage{}, fmt.Errorf("%s: %w", p.name, err)
	}
	m, err := wire.ParseServerMessage(raw)
	if err != nil {
		return m, fmt.Errorf("%s: bad server message %s: %w", p.name, raw, err)
	}
	detail := ""
	switch m.Type {
	case wire.TypeGreeting:
		g, _ := m.Greeting()
		if g.MOTD != nil {
			detail = "motd=" + *g.MOTD
		}
	case wire.TypePeerMessage:
		pm, _ := m.PeerMessage()
		detail = pm.Message
	case wire.TypeSessionClosed:
		if sc, err := m.SessionClosed(); err == nil && sc.Reason != nil {
			detail = "reason=" + *sc.Reason
		}
	case wire.TypeError:
		e, _ := m.ErrorReport()
		detail = e.Code
	}
	fmt.Printf("%s <- %s %s\n", p.name, m.Type, detail)
	if m.Type != want {
		return m, fmt.Errorf("%s: got %s, want %s", p.name, m.Type, want)
	}
	return m, nil
}

func pairPeers(url, sid string) (a, b *peer, err error) {
	if a, err = dialPeer(url, "initiator"); err != nil {
		return
	}
	if b, err = dialPeer(url, "signer"); err != nil {
		return
	}
	steps := []func() error{
		func() error { return a.send(wire.APIHello, nil) },
		func() error { _, err := a.recv(wire.TypeGreeting); return err },
		func() error {
			ttl := uint64(600)
			return a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid, TTL: &ttl})
		},
		func() error { _, err := a.recv(wire.TypeSessionCreated); return err },
		func() error {
			ctx := "Yg=="
			return b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: &ctx})
		},
		func() error { _, err := b.recv(wire.TypeSessionJoined); return err },
		func() error { _, err := a.recv(wire.TypeSessionJoined); return err },
	}
	for _, s := range steps {
		if err = s(); err != nil {
			return
		}
	}
	return
}

func runSession(url string) error {
	const sid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	a, b, err := pairPeers(url, sid)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		from, to *peer
		msg      string
	}{{a, b, "ping-from-initiator"}, {b, a, "ping-from-signer"}} {
		if err := x.from.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: x.msg}); err != nil {
			return err
		}
		if _, err := x.from.recv(wire.TypeMessageSent); err != nil {
			return err
		}
		if _, err := x.to.recv(wire.TypePeerMessage); err != nil {
			return err
		}
	}
	reason := "signing operations completed"
	if err := a.send(wire.APIGoodbye, wire.Goodbye{SessionID: sid, Reason: &reason}); err != nil {
		return err
	}
	if _, err := a.recv(wire.TypeSessionClosed); err != nil {
		return err
	}
	_, err = b.recv(wire.TypeSessionClosed)
	return err
}

func runHold(url string) error {
	a, b, err := pairPeers(url, "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c")
	if err != nil {
		return err
	}
	fmt.Println("paired")
	os.Stdout.Sync()
	var errs []error
	for _, p := range []*peer{a, b} {
		if _, err := p.recv(wire.TypeSessionClosed); err != nil {
			errs = append(errs, err)
		}
		// Then the relay closes the websocket with 1001 going away.
		_, _, err := p.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			fmt.Printf("%s closed %d\n", p.name, ce.Code)
		} else {
			errs = append(errs, fmt.Errorf("%s: want a close frame, got %v", p.name, err))
		}
	}
	return errors.Join(errs...)
}
