package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/awsemu"
	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay/dynamostore"
)

// buildBootstrap compiles this command, exactly as terraform/build-lambda.sh does
// but for the host (the test runs it here): CGO off, lambda.norpc.
var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

func bootstrap(t *testing.T) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go", "the Go toolchain builds the bootstrap under test")
	cache := testenv.CacheDir(t)
	buildOnce.Do(func() {
		// A fixed place in the test cache, overwritten by every run: nothing
		// accumulates in the temp dir.
		dir := filepath.Join(cache, "relay-lambda-e2e")
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		buildPath = filepath.Join(dir, "bootstrap")
		cmd := exec.Command(goBin, "build", "-trimpath", "-tags", "lambda.norpc", "-o", buildPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building bootstrap: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// deployment is the relay as deployed on AWS, on one machine: dynalite with the
// Terraform table, the real bootstrap binary under the Lambda Runtime API
// emulation, and the API Gateway websocket emulation in front.
type deployment struct {
	gw    *awsemu.Gateway
	fn    *awsemu.Runtime
	db    *dynalite.Server
	table string
}

func deploy(t *testing.T, env ...string) *deployment {
	t.Helper()
	d := &deployment{db: dynalite.Start(t)}
	d.table = d.db.CreateTable(t, "")
	var fn *awsemu.Runtime
	d.gw = awsemu.StartGateway(t, func(ctx context.Context, ev []byte) ([]byte, error) {
		return fn.Invoke(ctx, ev)
	}, awsemu.GatewayOptions{Stage: "v1"})
	fn = awsemu.StartRuntime(t, awsemu.RuntimeOptions{
		Bootstrap: bootstrap(t),
		Instances: 2, // concurrent invocations in separate processes, as Lambda scales
		Region:    dynalite.Region,
		Env: append([]string{
			"RELAY_TABLE=" + d.table,
			// No RELAY_MANAGEMENT_ENDPOINT: the function derives it from
			// the events' domainName and stage, over TLS it must trust.
			"SSL_CERT_FILE=" + d.gw.CAFile,
			"AWS_ENDPOINT_URL_DYNAMODB=" + d.db.Endpoint,
			"RELAY_MOTD=farsign relay on lambda",
		}, env...),
	})
	d.fn = fn
	// Shut the front down first, so its $disconnect events still reach a
	// running function.
	t.Cleanup(d.gw.Close)
	return d
}

type client struct {
	t    *testing.T
	name string
	ws   *websocket.Conn
}

func (d *deployment) dial(t *testing.T, name string) *client {
	t.Helper()
	ws, resp, err := d.gw.Dialer().Dial(d.gw.URL, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, d.gw.URL, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, name: name, ws: ws}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// next reads the next server message and checks it is a text frame that rcodesign
// could parse, of the wanted type.
func (c *client) next(wantType string) wire.ServerMessage {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v", c.name, wantType, err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("%s: got a binary frame; rcodesign treats that as fatal", c.name)
	}
	m, err := wire.ParseServerMessage(data)
	if err != nil {
		c.t.Fatalf("%s: unparseable server message %s: %v", c.name, data, err)
	}
	if m.Type != wantType {
		c.t.Fatalf("%s: got %s, want %s", c.name, data, wantType)
	}
	return m
}

// TestSessionThroughLambda runs a whole rcodesign-style session through the
// deployed shape: two websocket clients, every message through API Gateway, the
// real Lambda binary, DynamoDB and the @connections API.
func TestSessionThroughLambda(t *testing.T) {
	d := deploy(t)
	a := d.dial(t, "initiator")
	b := d.dial(t, "signer")

	sid := wire.NewRequestID()
	const bContext = "WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="
	const msgAB = "3sIbyIjOc2lnbmF0dXJlIHJlcXVlc3Q="
	const msgBA = "c2lnbmF0dXJlIGFuc3dlcg=="

	a.send(`{"request_id":"a-1","api":"hello","payload":null}`)
	g, err := a.next(wire.TypeGreeting).Greeting()
	if err != nil || g.CheckGreeting() != nil || g.MOTD == nil || *g.MOTD != "farsign relay on lambda" {
		t.Fatalf("greeting %+v, %v", g, err)
	}
	a.send(`{"request_id":"a-2","api":"create-session","payload":{"session_id":"` + sid + `","ttl":600,"context":null}}`)
	created := a.next(wire.TypeSessionCreated)
	if created.TTL == nil || *created.TTL != 600 {
		t.Fatalf("session-created ttl %v, want 600", created.TTL)
	}

	b.send(`{"request_id":"b-1","api":"hello","payload":null}`)
	b.next(wire.TypeGreeting)
	b.send(`{"request_id":"b-2","api":"join-session","payload":{"session_id":"` + sid + `","context":"` + bContext + `"}}`)
	joinedB := b.next(wire.TypeSessionJoined)
	if p, err := joinedB.SessionJoined(); err != nil || p.Context != nil {
		t.Fatalf("joiner's session-joined: %+v, %v; want the initiator's null context", p, err)
	}
	joinedA := a.next(wire.TypeSessionJoined)
	if p, err := joinedA.SessionJoined(); err != nil || p.Context == nil || *p.Context != bContext {
		t.Fatalf("initiator's session-joined: %+v, %v; want the joiner's context verbatim", p, err)
	}
	if joinedA.RequestID != nil {
		t.Errorf("the joiner's request id leaked to the initiator: %q", *joinedA.RequestID)
	}

	a.send(`{"request_id":"a-3","api":"send-message","payload":{"session_id":"` + sid + `","message":"` + msgAB + `"}}`)
	a.next(wire.TypeMessageSent)
	if p, err := b.next(wire.TypePeerMessage).PeerMessage(); err != nil || p.Message != msgAB {
		t.Fatalf("signer got %+v, %v", p, err)
	}
	b.send(`{"request_id":"b-3","api":"send-message","payload":{"session_id":"` + sid + `","message":"` + msgBA + `"}}`)
	b.next(wire.TypeMessageSent)
	if p, err := a.next(wire.TypePeerMessage).PeerMessage(); err != nil || p.Message != msgBA {
		t.Fatalf("initiator got %+v, %v", p, err)
	}

	a.send(`{"request_id":"a-4","api":"goodbye","payload":{"session_id":"` + sid + `","reason":"signing operations completed"}}`)
	a.next(wire.TypeSessionClosed)
	closed, err := b.next(wire.TypeSessionClosed).SessionClosed()
	if err != nil || closed.Reason == nil || *closed.Reason != "signing operations completed" {
		t.Fatalf("signer's session-closed: %+v, %v", closed, err)
	}

	// Reply before forward, as API Gateway accepted the posts: for the join, the
	// joiner's reply went out before the initiator's notification; for each
	// send-message, message-sent before peer-message; for goodbye, the reply
	// before the peer's session-closed.
	order := postOrder(t, d.gw.Posts())
	for _, pair := range [][2]string{
		{"signer:session-joined", "initiator:session-joined"},
		{"initiator:message-sent", "signer:peer-message"},
		{"signer:message-sent", "initiator:peer-message"},
		{"initiator:session-closed", "signer:session-closed"},
	} {
		conns := map[string]string{"initiator": connOf(t, d, a), "signer": connOf(t, d, b)}
		first, second := order.index(conns, pair[0]), order.index(conns, pair[1])
		if first < 0 || second < 0 || first > second {
			t.Errorf("%s posted at %d, %s at %d: want the reply first", pair[0], first, pair[1], second)
		}
	}

	// Goodbye deleted the session from the table.
	out, err := d.db.Client().GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            map[string]types.AttributeValue{dynamostore.KeySessionID: &types.AttributeValueMemberS{Value: sid}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || len(out.Item) != 0 {
		t.Errorf("session still in DynamoDB after goodbye: %v, %v", out.Item, err)
	}

	// The logs: EMF metrics are there; no message, context or session id is.
	sawCalls := d.fn.WaitLog(func(line string) bool {
		var m map[string]any
		return json.Unmarshal([]byte(line), &m) == nil && m["_aws"] != nil && m["api"] == "goodbye"
	}, 10*time.Second)
	logs := d.fn.Logs()
	if !sawCalls {
		t.Errorf("no EMF line counted goodbye calls; logs:\n%s", strings.Join(logs, "\n"))
	}
	for _, line := range logs {
		for _, secret := range []string{msgAB, msgBA, bContext, sid} {
			if strings.Contains(line, secret) {
				t.Errorf("log line leaks %q: %s", secret, line)
			}
		}
	}
}

// TestPeerDisconnectThroughLambda: when the signer's websocket drops, API Gateway
// runs $disconnect and the initiator is told with session-closed.
func TestPeerDisconnectThroughLambda(t *testing.T) {
	d := deploy(t)
	a := d.dial(t, "initiator")
	b := d.dial(t, "signer")
	sid := wire.NewRequestID()
	a.send(`{"request_id":"a-1","api":"create-session","payload":{"session_id":"` + sid + `","ttl":600,"context":null}}`)
	a.next(wire.TypeSessionCreated)
	b.send(`{"request_id":"b-1","api":"join-session","payload":{"session_id":"` + sid + `","context":"Yg=="}}`)
	b.next(wire.TypeSessionJoined)
	a.next(wire.TypeSessionJoined)

	b.ws.Close()
	closed, err := a.next(wire.TypeSessionClosed).SessionClosed()
	if err != nil || closed.Reason == nil || *closed.Reason != "peer disconnected" {
		t.Fatalf("initiator's session-closed: %+v, %v", closed, err)
	}

	// A third client cannot reuse the id or join it: the session is gone.
	c := d.dial(t, "intruder")
	c.send(`{"request_id":"c-1","api":"join-session","payload":{"session_id":"` + sid + `","context":null}}`)
	if p, err := c.next(wire.TypeError).ErrorReport(); err != nil || p.Code == "" {
		t.Fatalf("join of a closed session: %+v, %v", p, err)
	}
	// And malformed input is answered, not dropped, through the Lambda too.
	c.send(`{not json`)
	if p, err := c.next(wire.TypeError).ErrorReport(); err != nil || p.Code != wire.CodeRequestJSONParse {
		t.Fatalf("malformed request: %+v, %v", p, err)
	}
}

// TestConfigErrorIsInitError: a function deployed without its table reports a
// Runtime.InitError through the Runtime API instead of serving clients.
func TestConfigErrorIsInitError(t *testing.T) {
	fn := awsemu.StartRuntime(t, awsemu.RuntimeOptions{Bootstrap: bootstrap(t)})
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := fn.Invoke(t.Context(), []byte(`{}`))
		var fe *awsemu.FunctionError
		if errors.As(err, &fe) && fe.Type == "Runtime.InitError" {
			if !strings.Contains(fe.Message, "RELAY_TABLE") {
				t.Fatalf("init error %q does not name RELAY_TABLE", fe.Message)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocation of a misconfigured function: %v, want Runtime.InitError", err)
		}
		// The process may still be starting; its exit fails the invocation
		// first, the init error then sticks.
		time.Sleep(50 * time.Millisecond)
	}
}

type posted struct{ conn, typ string }
type postList []posted

func postOrder(t *testing.T, posts []awsemu.Post) postList {
	var l postList
	for _, p := range posts {
		if p.Method != "POST" {
			continue
		}
		m, err := wire.ParseServerMessage(p.Data)
		if err != nil {
			t.Fatalf("the function posted an unparseable message: %s", p.Data)
		}
		l = append(l, posted{p.ConnectionID, m.Type})
	}
	return l
}

// index finds "who:type" in the list.
func (l postList) index(conns map[string]string, what string) int {
	who, typ, _ := strings.Cut(what, ":")
	for i, p := range l {
		if p.conn == conns[who] && p.typ == typ {
			return i
		}
	}
	return -1
}

// connOf finds the connection id API Gateway gave a client, from the posts made
// to it (the greeting or first reply).
func connOf(t *testing.T, d *deployment, c *client) string {
	t.Helper()
	// Every client here received at least one message; match the first post
	// whose bytes equal a message the client read is overkill: ids are in the
	// posts, and the initiator is the one that got session-created.
	posts := postOrder(t, d.gw.Posts())
	switch c.name {
	case "initiator":
		for _, p := range posts {
			if p.typ == wire.TypeSessionCreated {
				return p.conn
			}
		}
	case "signer":
		var initiator string
		for _, p := range posts {
			if p.typ == wire.TypeSessionCreated {
				initiator = p.conn
			}
		}
		for _, p := range posts {
			if p.typ == wire.TypeSessionJoined && p.conn != initiator {
				return p.conn
			}
		}
	}
	t.Fatalf("no connection id for %s", c.name)
	return ""
}
