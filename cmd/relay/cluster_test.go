package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay/apigw"
	"github.com/farsign/farsign/relay/cluster"
)

// relayProc is a `relay serve` process started by a test.
type relayProc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	url     string // ws://.../
	cluster string // http://.../ of its cluster endpoint
	stderr  *syncBuffer
	done    chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRelay runs the relay binary (this test binary, via testscript's PATH
// set-up in TestMain) with args and the secret in its environment, and waits
// until it listens.
func startRelay(t *testing.T, name, secret string, args ...string) *relayProc {
	t.Helper()
	bin, err := exec.LookPath("relay")
	if err != nil {
		t.Fatalf("relay command not on PATH: %v", err)
	}
	addr := filepath.Join(t.TempDir(), "relay.url")
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", addr}, args...)...)
	cmd.Env = append(os.Environ(),
		"RELAY_CLUSTER_SECRET="+secret,
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=test-secret",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	p := &relayProc{t: t, name: name, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(addr); err == nil && len(b) > 0 {
			p.url = strings.TrimSpace(string(b))
			break
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %s", name, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %s", name, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := regexp.MustCompile(`relay cluster endpoint on (http://\S+/)`).FindStringSubmatch(p.stderr.String()); m != nil {
		p.cluster = m[1]
	}
	return p
}

// stop interrupts the process and waits for it to exit.
func (p *relayProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *relayProc) metrics() string {
	resp, err := http.Get("http" + strings.TrimPrefix(p.url, "ws") + "metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// wsPeer is a websocket client speaking the relay protocol.
type wsPeer struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
	n    int
}

func connect(t *testing.T, url, name string) *wsPeer {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &wsPeer{t: t, name: name, ws: ws}
}

func (p *wsPeer) send(api string, payload any) {
	p.t.Helper()
	p.n++
	msg, err := wire.EncodeRequest(fmt.Sprintf("%s-%d", p.name, p.n), api, payload)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		p.t.Fatalf("%s: send: %v", p.name, err)
	}
}

// expect reads the next message and checks its type.
func (p *wsPeer) expect(typ string) wire.ServerMessage {
	p.t.Helper()
	_ = p.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, raw, err := p.ws.ReadMessage()
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v", p.name, typ, err)
	}
	m, err := wire.ParseServerMessage(raw)
	if err != nil {
		p.t.Fatalf("%s: bad server message %s: %v", p.name, raw, err)
	}
	if m.Type != typ {
		p.t.Fatalf("%s: got %s, want %s", p.name, raw, typ)
	}
	return m
}

func (p *wsPeer) expectClosed(reason string) {
	p.t.Helper()
	sc, err := p.expect(wire.TypeSessionClosed).SessionClosed()
	if err != nil || sc.Reason == nil || *sc.Reason != reason {
		p.t.Fatalf("%s: session-closed %+v (%v), want reason %q", p.name, sc, err, reason)
	}
}

// pair creates session sid with a on its relay and joins it with b on
// another, checking that each side gets the other's context.
func pair(t *testing.T, a, b *wsPeer, sid string) {
	t.Helper()
	ctxA, ctxB := "context-of-"+a.name, "context-of-"+b.name
	a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid, Context: &ctxA})
	a.expect(wire.TypeSessionCreated)
	b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid, Context: &ctxB})
	if j, err := b.expect(wire.TypeSessionJoined).SessionJoined(); err != nil || j.Context == nil || *j.Context != ctxA {
		t.Fatalf("joiner got context %v (%v), want %q", j.Context, err, ctxA)
	}
	if j, err := a.expect(wire.TypeSessionJoined).SessionJoined(); err != nil || j.Context == nil || *j.Context != ctxB {
		t.Fatalf("initiator got context %v (%v), want %q", j.Context, err, ctxB)
	}
}

// exchange sends msg from one peer to the other and checks the ack and
// the delivery.
func exchange(t *testing.T, from, to *wsPeer, sid, msg string) {
	t.Helper()
	from.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: msg})
	from.expect(wire.TypeMessageSent)
	if pm, err := to.expect(wire.TypePeerMessage).PeerMessage(); err != nil || pm.Message != msg {
		t.Fatalf("%s got %+v (%v), want %q", to.name, pm, err, msg)
	}
}

const testClusterSecret = "kq1M6d3uQe1Y4bS4f0rM9tZr8a2Wc7Lx0pN5vJ3hT6E="

// TestClusterOfTwoProcesses runs two `relay serve --store dynamodb` processes
// sharing a dynalite table created from the Terraform module, with the
// initiator on one and the signer on the other: every message of a session
// crosses between the processes.
func TestClusterOfTwoProcesses(t *testing.T) {
	dyn := dynalite.Start(t)
	table := dyn.CreateTable(t, "")
	args := []string{"--store", "dynamodb", "--dynamodb-table", table, "--dynamodb-endpoint", dyn.Endpoint,
		"--region", dynalite.Region, "--cluster-listen", "127.0.0.1:0", "--rate", "-1"}
	r1 := startRelay(t, "relay-1", testClusterSecret, args...)
	r2 := startRelay(t, "relay-2", testClusterSecret, args...)
	if r1.cluster == "" || r2.cluster == "" {
		t.Fatalf("no cluster endpoint announced:\n%s\n%s", r1.stderr, r2.stderr)
	}

	t.Run("full session", func(t *testing.T) {
		const sid = "11111111-2222-4333-8444-555555555555"
		a, b := connect(t, r1.url, "initiator"), connect(t, r2.url, "signer")
		a.send(wire.APIHello, nil)
		a.expect(wire.TypeGreeting)
		pair(t, a, b, sid)
		exchange(t, a, b, sid, "ping-from-initiator")
		exchange(t, b, a, sid, "ping-from-signer")
		for i := range 5 { // several round trips, both directions, in order
			exchange(t, a, b, sid, fmt.Sprintf("sign-request-%d", i))
			exchange(t, b, a, sid, fmt.Sprintf("signature-%d", i))
		}
		reason := "signing operations completed"
		a.send(wire.APIGoodbye, wire.Goodbye{SessionID: sid, Reason: &reason})
		a.expectClosed(reason)
		b.expectClosed(reason)
		// The session is gone on both processes.
		b.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: "late"})
		b.expect(wire.TypeError)
	})

	t.Run("reply before forward across processes", func(t *testing.T) {
		// rcodesign's signer needs its message-sent before the initiator's
		// next request (spec 6.5, race 3). Here the initiator answers every
		// peer-message at once, so its answer races the signer's ack through
		// two processes; the signer must always read the ack first.
		const sid = "77777777-2222-4333-8444-555555555555"
		a, b := connect(t, r1.url, "initiator"), connect(t, r2.url, "signer")
		pair(t, a, b, sid)
		const rounds = 50
		errc := make(chan error, 1)
		go func() {
			for i := range rounds {
				_ = a.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, raw, err := a.ws.ReadMessage()
				if err != nil || !strings.Contains(string(raw), `"peer-message"`) {
					errc <- fmt.Errorf("initiator round %d: %s %v", i, raw, err)
					return
				}
				msg, _ := wire.EncodeRequest("a", wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: fmt.Sprint("request-", i+1)})
				if err := a.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
					errc <- err
					return
				}
				if _, raw, err = a.ws.ReadMessage(); err != nil || !strings.Contains(string(raw), `"message-sent"`) {
					errc <- fmt.Errorf("initiator ack %d: %s %v", i, raw, err)
					return
				}
			}
			errc <- nil
		}()
		for i := range rounds {
			b.send(wire.APISendMessage, wire.SendMessage{SessionID: sid, Message: fmt.Sprint("signature-", i)})
			b.expect(wire.TypeMessageSent)
			if pm, err := b.expect(wire.TypePeerMessage).PeerMessage(); err != nil || pm.Message != fmt.Sprint("request-", i+1) {
				t.Fatalf("round %d: signer got %+v %v", i, pm, err)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("disconnect reaches the other process", func(t *testing.T) {
		// The signer's relay tells the initiator's, and the other way round.
		a, b := connect(t, r1.url, "initiator"), connect(t, r2.url, "signer")
		pair(t, a, b, "22222222-2222-4333-8444-555555555555")
		b.ws.Close()
		a.expectClosed("peer disconnected")

		a, b = connect(t, r1.url, "initiator"), connect(t, r2.url, "signer")
		pair(t, a, b, "33333333-2222-4333-8444-555555555555")
		a.ws.Close()
		b.expectClosed("peer disconnected")
	})

	t.Run("same session id is refused across processes", func(t *testing.T) {
		const sid = "44444444-2222-4333-8444-555555555555"
		a, c := connect(t, r1.url, "initiator"), connect(t, r2.url, "intruder")
		a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
		a.expect(wire.TypeSessionCreated)
		c.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
		if e, _ := c.expect(wire.TypeError).ErrorReport(); e.Code != wire.CodeSessionExists {
			t.Fatalf("second create on the other process: %s, want %s", e.Code, wire.CodeSessionExists)
		}
	})

	m1, m2 := r1.metrics(), r2.metrics()
	for _, m := range []string{m1, m2} {
		for _, re := range []string{`relay_cluster_deliveries_sent [1-9]`, `relay_cluster_requests_served [1-9]`, `relay_cluster_requests_refused 0`} {
			if !regexp.MustCompile(re).MatchString(m) {
				t.Errorf("metrics lack %q:\n%s", re, m)
			}
		}
	}

	t.Run("wrong cluster secret is refused", func(t *testing.T) {
		// A relay started with another secret cannot authenticate the other
		// relays' connection ids, so it never even sends them a request: the
		// session it cannot serve ends, and its own client is told.
		r3 := startRelay(t, "relay-3", strings.Repeat("not the cluster secret ", 2), args...)
		a, b := connect(t, r1.url, "initiator"), connect(t, r3.url, "signer")
		const sid = "55555555-2222-4333-8444-555555555555"
		a.send(wire.APICreateSession, wire.CreateSession{SessionID: sid})
		a.expect(wire.TypeSessionCreated)
		b.send(wire.APIJoinSession, wire.JoinSession{SessionID: sid})
		b.expect(wire.TypeSessionJoined)
		b.expectClosed("peer disconnected")
		if !strings.Contains(r3.stderr.String(), "cluster: undeliverable connection id") {
			t.Errorf("relay-3 did not log why it could not deliver:\n%s", r3.stderr)
		}

		// Requests signed with the wrong secret, or not at all, are refused
		// by the endpoint before anything is delivered.
		wrong, err := apigw.New(aws.Config{
			Region:      cluster.Region,
			Credentials: credentials.NewStaticCredentialsProvider(cluster.AccessKeyID, "a guessed secret access key", ""),
		}, strings.TrimSuffix(r1.cluster, "/"))
		if err != nil {
			t.Fatal(err)
		}
		err = wrong.Post(t.Context(), "any-connection-id", []byte(`{"request_id":null,"type":"peer-message","payload":{"message":"injected"}}`))
		if err == nil || !strings.Contains(err.Error(), "ForbiddenException") {
			t.Errorf("post signed with the wrong secret: %v, want ForbiddenException", err)
		}
		resp, err := http.Post(r1.cluster+"@connections/any-connection-id", "application/json", strings.NewReader(`{"type":"peer-message"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned POST: %d, want 403", resp.StatusCode)
		}
		waitFor(t, func() bool { return strings.Count(r1.stderr.String(), "cluster: refused request") == 2 }, "relay-1 to log both refusals")
		if !regexp.MustCompile(`relay_cluster_requests_refused 2`).MatchString(r1.metrics()) {
			t.Error("relay-1 did not count the refusals")
		}
		if strings.Contains(r1.stderr.String(), "injected") {
			t.Error("relay-1 logged the refused message")
		}
	})

	t.Run("shutdown tells peers on other processes", func(t *testing.T) {
		a, b := connect(t, r1.url, "initiator"), connect(t, r2.url, "signer")
		pair(t, a, b, "66666666-2222-4333-8444-555555555555")
		r2.stop()
		a.expectClosed("relay shutting down")
		if !strings.Contains(r2.stderr.String(), "relay stopped") {
			t.Errorf("relay-2 did not stop cleanly:\n%s", r2.stderr)
		}
	})

	for _, p := range []*relayProc{r1, r2} {
		if s := p.stderr.String(); strings.Contains(s, "ping-from") || strings.Contains(s, "context-of") || strings.Contains(s, testClusterSecret) {
			t.Errorf("%s logged message contents or the secret:\n%s", p.name, s)
		}
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDynamoDBSingleProcess runs one `relay serve --store dynamodb` that
// creates its own table (--dynamodb-create-table, the local-setup path) and
// serves a whole session from it.
func TestDynamoDBSingleProcess(t *testing.T) {
	dyn := dynalite.Start(t)
	r := startRelay(t, "relay", "", "--store", "dynamodb", "--dynamodb-table", "created-by-relay",
		"--dynamodb-endpoint", dyn.Endpoint, "--region", dynalite.Region, "--dynamodb-create-table")
	if !strings.Contains(r.stderr.String(), "creating DynamoDB table created-by-relay") {
		t.Errorf("no progress line for the table creation:\n%s", r.stderr)
	}
	const sid = "88888888-2222-4333-8444-555555555555"
	a, b := connect(t, r.url, "initiator"), connect(t, r.url, "signer")
	pair(t, a, b, sid)
	exchange(t, a, b, sid, "sign-request")
	exchange(t, b, a, sid, "signature")

	// The session lives in the table, not in the process...
	count := func() int32 {
		out, err := dyn.Client().Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String("created-by-relay")})
		if err != nil {
			t.Fatal(err)
		}
		return out.Count
	}
	if n := count(); n != 1 {
		t.Errorf("%d sessions in the table during the session, want 1", n)
	}
	a.ws.Close()
	b.expectClosed("peer disconnected")
	// ...and the disconnect removed it (before telling the peer).
	if n := count(); n != 0 {
		t.Errorf("%d sessions left in the table after the disconnect", n)
	}
}
