package awsemu

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
)

// API Gateway websocket limits (AWS documentation, "Amazon API Gateway quotas"):
// a message is at most 128 KB; a larger one closes the connection with 1009.
const maxMessage = 128 << 10

// InvokeFunc runs the integration: it gets an APIGatewayWebsocketProxyRequest as
// JSON and returns the function's response payload. Runtime.Invoke is one.
type InvokeFunc func(ctx context.Context, event []byte) ([]byte, error)

// GatewayOptions configure StartGateway.
type GatewayOptions struct {
	// Stage is the stage name, the first path element (default "test").
	Stage string
	// APIID is the API id put in events (default "emu0000001").
	APIID string
}

// Gateway is an emulated API Gateway websocket API with one stage, served over TLS
// on a loopback port.
type Gateway struct {
	// URL is what clients dial: wss://127.0.0.1:PORT/STAGE.
	URL string
	// ManagementEndpoint is https://127.0.0.1:PORT/STAGE, the @connections base.
	ManagementEndpoint string
	// CAFile is a PEM file with the server's certificate, for SSL_CERT_FILE.
	CAFile string
	// Domain is the domainName put in events: 127.0.0.1:PORT.
	Domain string

	opts   GatewayOptions
	invoke InvokeFunc
	srv    *httptest.Server
	t      testing.TB

	closeOnce sync.Once
	mu        sync.Mutex
	conns     map[string]*gwConn
	posts     []Post
	wg        sync.WaitGroup
}

// Post records one management API call the gateway accepted.
type Post struct {
	Method, ConnectionID string
	Data                 []byte
}

type gwConn struct {
	id          string
	ws          *websocket.Conn
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	// ready is closed once the handshake finished (ws set) or failed (ws nil).
	// The connection is registered before the 101 response goes out, so a
	// management call made as soon as the client sees the handshake finds it, as
	// with API Gateway; such a call waits on ready.
	ready chan struct{}

	writeMu  sync.Mutex
	mu       sync.Mutex
	lastSeen time.Time
	closed   bool
}

// StartGateway serves the websocket API and its management endpoint, invoking
// invoke for every route, until the test ends.
func StartGateway(t testing.TB, invoke InvokeFunc, opts GatewayOptions) *Gateway {
	t.Helper()
	if opts.Stage == "" {
		opts.Stage = "test"
	}
	if opts.APIID == "" {
		opts.APIID = "emu0000001"
	}
	g := &Gateway{opts: opts, invoke: invoke, conns: map[string]*gwConn{}, t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /"+opts.Stage+"/@connections/{id}", g.postToConnection)
	mux.HandleFunc("DELETE /"+opts.Stage+"/@connections/{id}", g.deleteConnection)
	mux.HandleFunc("GET /"+opts.Stage+"/@connections/{id}", g.getConnection)
	mux.HandleFunc("GET /"+opts.Stage, g.connect)
	mux.HandleFunc("GET /"+opts.Stage+"/", g.connect)
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.EnableHTTP2 = false
	g.srv.StartTLS()
	t.Cleanup(g.Close)

	host := g.srv.Listener.Addr().String()
	g.Domain = host
	g.URL = "wss://" + host + "/" + opts.Stage
	g.ManagementEndpoint = "https://" + host + "/" + opts.Stage
	g.CAFile = filepath.Join(t.TempDir(), "gateway-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.srv.Certificate().Raw})
	if err := os.WriteFile(g.CAFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// Close disconnects every client (running $disconnect for each), waits for the
// invocations in flight, and stops the server. It runs at the end of the test;
// call it earlier to shut down before the function does.
func (g *Gateway) Close() { g.closeOnce.Do(g.close) }

func (g *Gateway) close() {
	g.mu.Lock()
	conns := make([]*gwConn, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		<-c.ready // a handshake in progress finishes (or fails) promptly
		if c.ws != nil {
			_ = c.ws.Close()
		}
	}
	g.wg.Wait()
	g.srv.Close()
}

// Dialer returns a websocket dialer that trusts the gateway's certificate.
func (g *Gateway) Dialer() *websocket.Dialer {
	pool := x509.NewCertPool()
	pool.AddCert(g.srv.Certificate())
	return &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second}
}

// HTTPClient returns an HTTP client that trusts the gateway's certificate, for
// SDK clients of the management endpoint in the test process.
func (g *Gateway) HTTPClient() *http.Client { return g.srv.Client() }

// Posts returns the management calls made so far, in order.
func (g *Gateway) Posts() []Post {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Post(nil), g.posts...)
}

// Connections returns the ids of the open connections.
func (g *Gateway) Connections() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ids []string
	for id := range g.conns {
		ids = append(ids, id)
	}
	return ids
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	CheckOrigin:     func(*http.Request) bool { return true },
}

// connect handles a websocket upgrade: like API Gateway it runs the $connect route
// first, and completes the handshake only if the integration answered 2xx.
func (g *Gateway) connect(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, `{"message":"Forbidden"}`, http.StatusForbidden)
		return
	}
	c := &gwConn{
		id:          newConnectionID(),
		connectedAt: time.Now(),
		sourceIP:    hostOnly(r.RemoteAddr),
		userAgent:   r.UserAgent(),
		ready:       make(chan struct{}),
	}
	ev := g.event(c, "$connect", "CONNECT")
	ev.Headers = map[string]string{}
	ev.MultiValueHeaders = map[string][]string{}
	for k, v := range r.Header {
		ev.Headers[k] = v[0]
		ev.MultiValueHeaders[k] = v
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		ev.MultiValueQueryStringParameters = map[string][]string(q)
		for k, v := range q {
			ev.QueryStringParameters[k] = v[0]
		}
	}
	status, err := g.call(r.Context(), ev)
	if err != nil || status < 200 || status > 299 {
		if err != nil {
			g.t.Logf("awsemu: $connect integration failed: %v", err)
			status = http.StatusInternalServerError
		}
		http.Error(w, `{"message":"Forbidden"}`, status)
		return
	}
	g.mu.Lock()
	g.conns[c.id] = c
	g.mu.Unlock()
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.mu.Lock()
		delete(g.conns, c.id)
		g.mu.Unlock()
		close(c.ready)
		return
	}
	ws.SetReadLimit(maxMessage)
	c.ws = ws
	c.lastSeen = time.Now()
	g.wg.Add(1)
	close(c.ready)
	go g.readLoop(c)
}

// readLoop turns each message into a $default invocation. API Gateway invokes the
// integration for each message as it arrives, without waiting for the previous
// one, so neither does the emulation.
func (g *Gateway) readLoop(c *gwConn) {
	defer g.wg.Done()
	var inflight sync.WaitGroup
	var code int
	var reason string
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code, reason = ce.Code, ce.Text
			} else {
				code, reason = websocket.CloseAbnormalClosure, "Going away"
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				code, reason = websocket.CloseMessageTooBig, "Message too big"
				c.write(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason))
			}
			break
		}
		c.mu.Lock()
		c.lastSeen = time.Now()
		c.mu.Unlock()
		ev := g.event(c, "$default", "MESSAGE")
		ev.RequestContext.MessageID = newConnectionID()
		if typ == websocket.BinaryMessage {
			ev.Body = base64.StdEncoding.EncodeToString(data)
			ev.IsBase64Encoded = true
		} else {
			ev.Body = string(data)
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			if _, err := g.call(context.Background(), ev); err != nil {
				g.t.Logf("awsemu: $default integration failed: %v", err)
			}
		}()
	}
	g.mu.Lock()
	delete(g.conns, c.id)
	g.mu.Unlock()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.ws.Close()
	inflight.Wait()
	ev := g.event(c, "$disconnect", "DISCONNECT")
	ev.RequestContext.DisconnectStatusCode = int64(code)
	ev.RequestContext.DisconnectReason = &reason
	if _, err := g.call(context.Background(), ev); err != nil {
		g.t.Logf("awsemu: $disconnect integration failed: %v", err)
	}
}

func (c *gwConn) write(typ int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(typ, data)
}

func (g *Gateway) event(c *gwConn, route, eventType string) events.APIGatewayWebsocketProxyRequest {
	now := time.Now()
	return events.APIGatewayWebsocketProxyRequest{
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey:          route,
			EventType:         eventType,
			ExtendedRequestID: newConnectionID(),
			RequestTime:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			MessageDirection:  "IN",
			Stage:             g.opts.Stage,
			ConnectedAt:       c.connectedAt.UnixMilli(),
			RequestTimeEpoch:  now.UnixMilli(),
			Identity:          events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
			RequestID:         newConnectionID(),
			DomainName:        g.Domain,
			ConnectionID:      c.id,
			APIID:             g.opts.APIID,
		},
		IsBase64Encoded: false,
	}
}

// call invokes the integration and returns the statusCode of its proxy response
// (200 when the function returned no statusCode).
func (g *Gateway) call(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (int, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 29*time.Second) // API Gateway's integration timeout
	defer cancel()
	out, err := g.invoke(ctx, payload)
	if err != nil {
		return 0, err
	}
	var resp events.APIGatewayProxyResponse
	if len(out) > 0 && string(out) != "null" {
		if err := json.Unmarshal(out, &resp); err != nil {
			return 0, fmt.Errorf("malformed Lambda proxy response: %v", err)
		}
	}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	return resp.StatusCode, nil
}

// checkSigned refuses management calls that are not SigV4-signed for the
// execute-api service, as API Gateway does (403 ForbiddenException).
func checkSigned(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/execute-api/aws4_request") {
		writeAWSError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return false
	}
	return true
}

func (g *Gateway) lookup(w http.ResponseWriter, r *http.Request) *gwConn {
	if !checkSigned(w, r) {
		return nil
	}
	g.mu.Lock()
	c := g.conns[r.PathValue("id")]
	g.mu.Unlock()
	if c != nil {
		select {
		case <-c.ready:
		case <-r.Context().Done():
			return nil
		}
	}
	if c == nil || c.ws == nil {
		writeAWSError(w, http.StatusGone, "GoneException", "")
		return nil
	}
	return c
}

// postToConnection is POST /{stage}/@connections/{id}: the body is sent to the
// client as one text message.
func (g *Gateway) postToConnection(w http.ResponseWriter, r *http.Request) {
	c := g.lookup(w, r)
	if c == nil {
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
	if err != nil {
		writeAWSError(w, http.StatusBadRequest, "BadRequestException", err.Error())
		return
	}
	if len(data) > maxMessage {
		writeAWSError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
		return
	}
	if err := c.write(websocket.TextMessage, data); err != nil {
		writeAWSError(w, http.StatusGone, "GoneException", "")
		return
	}
	g.mu.Lock()
	g.posts = append(g.posts, Post{Method: "POST", ConnectionID: c.id, Data: data})
	g.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// deleteConnection is DELETE /{stage}/@connections/{id}: close the websocket; the
// read loop then runs $disconnect.
func (g *Gateway) deleteConnection(w http.ResponseWriter, r *http.Request) {
	c := g.lookup(w, r)
	if c == nil {
		return
	}
	_ = c.write(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_ = c.ws.NetConn().Close()
	g.mu.Lock()
	g.posts = append(g.posts, Post{Method: "DELETE", ConnectionID: c.id})
	g.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// getConnection is GET /{stage}/@connections/{id}.
func (g *Gateway) getConnection(w http.ResponseWriter, r *http.Request) {
	c := g.lookup(w, r)
	if c == nil {
		return
	}
	c.mu.Lock()
	last := c.lastSeen
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ConnectedAt":  c.connectedAt.UTC().Format(time.RFC3339),
		"LastActiveAt": last.UTC().Format(time.RFC3339),
		"Identity":     map[string]string{"SourceIp": c.sourceIP, "UserAgent": c.userAgent},
	})
}

// writeAWSError writes a REST-JSON error the way AWS services do: the error type
// in x-amzn-ErrorType, the message in the body.
func writeAWSError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", typ)
	w.WriteHeader(status)
	var m any
	if msg != "" {
		m = msg
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"message": m})
}

// newConnectionID returns an id shaped like API Gateway's (11 random bytes,
// base64: 16 characters, e.g. "L0SM9cOFvHcCIhw=").
func newConnectionID() string {
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func hostOnly(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
