package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/farsign/farsign/internal/testenv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/awsemu"
	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
)

// inProcess runs a Function in the test process behind the API Gateway emulation,
// with the memory store: the adapter's own logic, without building the binary
// (cmd/relay-lambda's end-to-end test does that).
func inProcess(t *testing.T, cfg Config) (*Function, *awsemu.Gateway, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	var fn *Function
	gw := awsemu.StartGateway(t, func(ctx context.Context, payload []byte) ([]byte, error) {
		var ev events.APIGatewayWebsocketProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		resp, err := fn.Handle(ctx, ev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	}, awsemu.GatewayOptions{Stage: "v1"})
	if cfg.MetricsNamespace == "" {
		cfg.MetricsNamespace = "farsign/relay"
	}
	var err error
	fn, err = New(cfg, Options{
		AWS: aws.Config{
			Region:      "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
			HTTPClient:  gw.HTTPClient(),
		},
		Store: memstore.New(),
		Logs:  logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return fn, gw, logs
}

func dial(t *testing.T, gw *awsemu.Gateway) *websocket.Conn {
	t.Helper()
	ws, resp, err := gw.Dialer().Dial(gw.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

func read(t *testing.T, ws *websocket.Conn, wantType string) wire.ServerMessage {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("waiting for %s: %v", wantType, err)
	}
	m, err := wire.ParseServerMessage(data)
	if err != nil || m.Type != wantType {
		t.Fatalf("got %s (%v), want %s", data, err, wantType)
	}
	return m
}

// TestDerivedEndpointAndMetrics: with no RELAY_MANAGEMENT_ENDPOINT the function
// posts to https://{domainName}/{stage} of each event; messages are relayed, the
// logs carry EMF metrics, and no message content reaches the logs.
func TestDerivedEndpointAndMetrics(t *testing.T) {
	_, gw, logs := inProcess(t, Config{MOTD: "hi", LogLevel: -4 /* debug: the most verbose */})
	a, b := dial(t, gw), dial(t, gw)
	const sid = "0b8f3f5e-8a55-4f0e-9e2b-3d7c9c1d2e3f"
	const secret = "U0VDUkVUIFNJR05BVFVSRSBSRVFVRVNU"

	a.WriteMessage(websocket.TextMessage, []byte(`{"request_id":"1","api":"hello","payload":null}`))
	if g, _ := read(t, a, wire.TypeGreeting).Greeting(); g.MOTD == nil || *g.MOTD != "hi" {
		t.Fatalf("greeting without the MOTD: %+v", g)
	}
	a.WriteMessage(websocket.TextMessage, []byte(`{"request_id":"2","api":"create-session","payload":{"session_id":"`+sid+`","ttl":60,"context":null}}`))
	read(t, a, wire.TypeSessionCreated)
	b.WriteMessage(websocket.TextMessage, []byte(`{"request_id":"3","api":"join-session","payload":{"session_id":"`+sid+`","context":"`+secret+`"}}`))
	read(t, b, wire.TypeSessionJoined)
	read(t, a, wire.TypeSessionJoined)
	b.WriteMessage(websocket.TextMessage, []byte(`{"request_id":"4","api":"send-message","payload":{"session_id":"`+sid+`","message":"`+secret+`"}}`))
	read(t, b, wire.TypeMessageSent)
	if p, _ := read(t, a, wire.TypePeerMessage).PeerMessage(); p.Message != secret {
		t.Fatalf("peer-message %q", p.Message)
	}

	// The metrics of an invocation are written when it ends, which may be just
	// after the peer already got its message.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"api":"send-message","api_calls"`) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	out := logs.String()
	if strings.Contains(out, secret) || strings.Contains(out, sid) {
		t.Fatalf("logs leak a message, context or session id:\n%s", out)
	}
	calls := map[string]float64{}
	var sawPlain bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		meta, ok := m["_aws"].(map[string]any)
		if !ok {
			continue
		}
		if _, ok := meta["Timestamp"].(float64); !ok {
			t.Fatalf("EMF line without a Timestamp: %s", line)
		}
		for _, d := range meta["CloudWatchMetrics"].([]any) {
			dir := d.(map[string]any)
			if dir["Namespace"] != "farsign/relay" {
				t.Fatalf("namespace %v", dir["Namespace"])
			}
			// Every metric named in the directive must be a number on the line,
			// and every dimension a string on the line (EMF's rules).
			for _, mt := range dir["Metrics"].([]any) {
				name := mt.(map[string]any)["Name"].(string)
				if _, ok := m[name].(float64); !ok {
					t.Fatalf("metric %s missing from %s", name, line)
				}
			}
			for _, set := range dir["Dimensions"].([]any) {
				for _, dim := range set.([]any) {
					if _, ok := m[dim.(string)].(string); !ok {
						t.Fatalf("dimension %v missing from %s", dim, line)
					}
				}
			}
		}
		if api, ok := m["api"].(string); ok {
			calls[api] += m["api_calls"].(float64)
		}
		if _, ok := m["connections"]; ok {
			sawPlain = true
		}
	}
	want := map[string]float64{"hello": 1, "create-session": 1, "join-session": 1, "send-message": 1}
	for api, n := range want {
		if calls[api] != n {
			t.Errorf("EMF api_calls{api=%s} = %v, want %v (all: %v)", api, calls[api], n, calls)
		}
	}
	if !sawPlain {
		t.Errorf("no EMF line counted connections")
	}
}

// TestBinaryFrameAnswered: a binary frame arrives base64-encoded; the core sees
// the decoded bytes and answers with a parse error, as for any bad request.
func TestBinaryFrameAnswered(t *testing.T) {
	_, gw, _ := inProcess(t, Config{})
	a := dial(t, gw)
	a.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x01})
	if p, err := read(t, a, wire.TypeError).ErrorReport(); err != nil || p.Code != wire.CodeRequestJSONParse {
		t.Fatalf("binary frame: %+v %v", p, err)
	}
}

func TestBadEvents(t *testing.T) {
	fn, gw, _ := inProcess(t, Config{})
	ctx := t.Context()
	resp, err := fn.Handle(ctx, events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$default", DomainName: gw.Domain, Stage: "v1"},
	})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("event without a connection id: %d, %v; want 400", resp.StatusCode, err)
	}
	resp, err = fn.Handle(ctx, events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "sendmessage", ConnectionID: "c", DomainName: gw.Domain, Stage: "v1"},
	})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("unknown route: %d, %v; want 400", resp.StatusCode, err)
	}
	resp, err = fn.Handle(ctx, events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$default", ConnectionID: "c"},
	})
	if err != nil || resp.StatusCode != 500 {
		t.Errorf("no endpoint at all: %d, %v; want 500", resp.StatusCode, err)
	}
	// A message from a connection API Gateway no longer knows: the reply gets
	// GoneException, which the core treats as that connection's disconnect. The
	// invocation still succeeds: a function error would make API Gateway send
	// its own error frame.
	resp, err = fn.Handle(ctx, events.APIGatewayWebsocketProxyRequest{
		Body:           `{"request_id":"1","api":"hello","payload":null}`,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$default", ConnectionID: "Z29uZQ==", DomainName: gw.Domain, Stage: "v1"},
	})
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("message from a gone connection: %d, %v; want 200", resp.StatusCode, err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := ConfigFromEnv(env(EnvTable, "t", EnvMaxTTL, "900", EnvMOTD, " hi ", EnvMaxSessions, "2",
		EnvMessageRate, "-1", EnvLogLevel, "debug", EnvManagementEndpoint, "https://x/v1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "t" || c.MaxTTL != 900*time.Second || c.MOTD != " hi " || c.MaxSessionsPerConn != 2 ||
		c.MessageRate != -1 || c.ManagementEndpoint != "https://x/v1" || c.MetricsNamespace != "farsign/relay" {
		t.Errorf("config %+v", c)
	}
	if _, err := New(c, Options{Store: memstore.New(), Logs: &bytes.Buffer{}}); err != nil {
		t.Errorf("New with a valid config: %v", err)
	}
	for _, bad := range [][]string{
		{},
		{EnvTable, "t", EnvMaxTTL, "0"},
		{EnvTable, "t", EnvMaxTTL, "10m"},
		{EnvTable, "t", EnvMaxMessageBytes, "999999999"},
		{EnvTable, "t", EnvMessageRate, "fast"},
		{EnvTable, "t", EnvLogLevel, "loud"},
		{EnvTable, "t", EnvManagementEndpoint, "wss://x/v1"},
	} {
		if _, err := ConfigFromEnv(env(bad...)); err == nil {
			t.Errorf("ConfigFromEnv(%v) accepted", bad)
		}
	}
}

// Make sure the relay package's counters all map to distinct EMF metric names.
func TestMetricNamesDistinct(t *testing.T) {
	seen := map[string]relay.Counter{}
	for _, c := range relay.Counters() {
		n := metricName(c)
		if prev, dup := seen[n]; dup || n == "" {
			t.Errorf("counters %s and %s share metric name %q", prev, c, n)
		}
		seen[n] = c
	}
}
