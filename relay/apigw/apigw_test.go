package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/internal/awsemu"
	"github.com/farsign/farsign/relay"
)

// routes records the route of every event the gateway emulation invokes.
type routes struct {
	mu     sync.Mutex
	events []events.APIGatewayWebsocketProxyRequest
	seen   chan string
}

func (r *routes) invoke(_ context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.seen <- ev.RequestContext.RouteKey + " " + ev.RequestContext.ConnectionID
	return []byte(`{"statusCode":200}`), nil
}

// setup returns a gateway, a Poster on its management endpoint, one connected
// websocket client and its connection id.
func setup(t *testing.T) (*awsemu.Gateway, *Poster, *websocket.Conn, string, *routes) {
	t.Helper()
	r := &routes{seen: make(chan string, 16)}
	gw := awsemu.StartGateway(t, r.invoke, awsemu.GatewayOptions{Stage: "prod"})
	p, err := New(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:  gw.HTTPClient(),
	}, Endpoint(gw.Domain, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	ws, resp, err := gw.Dialer().Dial(gw.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	route, conn, _ := strings.Cut(<-r.seen, " ")
	if route != "$connect" {
		t.Fatalf("first event %q, want $connect", route)
	}
	return gw, p, ws, conn, r
}

func TestPostDeliversTextInOrder(t *testing.T) {
	_, p, ws, conn, _ := setup(t)
	msgs := []string{`{"type":"greeting"}`, `{"type":"session-created"}`, `{"type":"peer-message"}`}
	for _, m := range msgs {
		if err := p.Post(t.Context(), conn, []byte(m)); err != nil {
			t.Fatalf("Post: %v", err)
		}
	}
	for _, want := range msgs {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.TextMessage || string(data) != want {
			t.Fatalf("client got (%d) %s, want text %s", typ, data, want)
		}
	}
}

func TestPostToGoneConnection(t *testing.T) {
	_, p, _, _, _ := setup(t)
	err := p.Post(t.Context(), "Z29uZWNvbm5lY3Rpb24=", []byte(`{}`))
	if !errors.Is(err, relay.ErrGone) {
		t.Fatalf("Post to an unknown connection: %v, want relay.ErrGone", err)
	}
}

func TestPostTooLargeIsNotGone(t *testing.T) {
	_, p, _, conn, _ := setup(t)
	err := p.Post(t.Context(), conn, make([]byte, 128<<10+1))
	if err == nil || errors.Is(err, relay.ErrGone) {
		t.Fatalf("oversized Post: %v, want a non-gone error", err)
	}
}

func TestCloseDisconnects(t *testing.T) {
	_, p, ws, conn, r := setup(t)
	if err := p.Close(t.Context(), conn); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("client still connected after Close")
	}
	select {
	case got := <-r.seen:
		if got != "$disconnect "+conn {
			t.Fatalf("event after Close: %q, want $disconnect", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no $disconnect after Close")
	}
	if err := p.Close(t.Context(), conn); err != nil {
		t.Errorf("second Close of a gone connection: %v, want nil", err)
	}
	if err := p.Post(t.Context(), conn, []byte(`{}`)); !errors.Is(err, relay.ErrGone) {
		t.Errorf("Post after Close: %v, want relay.ErrGone", err)
	}
}

func TestNewRejectsBadEndpoint(t *testing.T) {
	for _, e := range []string{"", "wss://x.execute-api.us-east-1.amazonaws.com/prod", "x/prod"} {
		if _, err := New(aws.Config{Region: "us-east-1"}, e); err == nil {
			t.Errorf("New(%q) accepted", e)
		}
	}
	if got := Endpoint("abc.execute-api.eu-west-1.amazonaws.com", "v1"); got != "https://abc.execute-api.eu-west-1.amazonaws.com/v1" {
		t.Errorf("Endpoint = %s", got)
	}
}
