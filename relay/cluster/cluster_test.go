package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/apigw"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// inbox is a local relay.Poster standing in for a standalone server's
// websockets: it holds the connections it was told about and records what
// reached them.
type inbox struct {
	mu      sync.Mutex
	conns   map[string][][]byte
	closed  []string
	block   chan struct{} // if set, Post signals entered, then waits for it
	entered chan struct{}
}

func newInbox(ids ...string) *inbox {
	b := &inbox{conns: map[string][][]byte{}}
	for _, id := range ids {
		b.conns[id] = nil
	}
	return b
}

func (b *inbox) Post(_ context.Context, conn string, msg []byte) error {
	if b.block != nil {
		b.entered <- struct{}{}
		<-b.block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.conns[conn]; !ok {
		return fmt.Errorf("inbox: %s: %w", conn, relay.ErrGone)
	}
	b.conns[conn] = append(b.conns[conn], msg)
	return nil
}

func (b *inbox) Close(_ context.Context, conn string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = append(b.closed, conn)
	delete(b.conns, conn)
	return nil
}

func (b *inbox) got(conn string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.conns[conn] {
		out = append(out, string(m))
	}
	return out
}

// testNode is a Node serving its cluster endpoint on a loopback port.
type testNode struct {
	*Node
	local *inbox
	url   string
}

func startNode(t *testing.T, secret []byte, tweak func(*Config)) *testNode {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Secret: secret, AdvertiseURL: "http://" + l.Addr().String(), PostTimeout: 5 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, local: newInbox(), url: cfg.AdvertiseURL}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: n.Handler(tn.local)}}
	srv.Start()
	t.Cleanup(srv.Close)
	return tn
}

// connect mints a connection id on tn and registers it as connected there.
func (tn *testNode) connect() string {
	id := tn.NewConnID()
	tn.local.mu.Lock()
	tn.local.conns[id] = nil
	tn.local.mu.Unlock()
	return id
}

func TestConnIDsNameTheirOwner(t *testing.T) {
	a, err := New(Config{Secret: secret, AdvertiseURL: "http://10.0.0.1:8081"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Secret: secret, AdvertiseURL: "https://relay-2.internal:9000/"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 100 {
		id := a.NewConnID()
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if !a.Local(id) || b.Local(id) {
			t.Fatalf("Local(%s): a %v b %v", id, a.Local(id), b.Local(id))
		}
		for _, n := range []*Node{a, b} {
			if owner, err := n.Owner(id); err != nil || owner != "http://10.0.0.1:8081" {
				t.Fatalf("Owner(%s) = %q, %v", id, owner, err)
			}
		}
		if strings.ContainsAny(id, "/+=%?#") || len(id) > 100 {
			t.Fatalf("id %q is not short and URL-safe", id)
		}
	}
	if owner, err := a.Owner(b.NewConnID()); err != nil || owner != "https://relay-2.internal:9000" {
		t.Fatalf("Owner of b's id = %q, %v", owner, err)
	}
}

func TestOwnerRefusesForeignAndTamperedIDs(t *testing.T) {
	a, _ := New(Config{Secret: secret, AdvertiseURL: "http://10.0.0.1:8081"})
	other, _ := New(Config{Secret: append([]byte("another "), secret...), AdvertiseURL: "http://10.0.0.1:8081"})
	id := a.NewConnID()
	enc, rest, _ := strings.Cut(id, ".")
	rnd, tag, _ := strings.Cut(rest, ".")
	evil := b64.EncodeToString([]byte("http://169.254.169.254:80"))
	// A correct tag on a URL that is not a canonical advertise URL.
	withPath := b64.EncodeToString([]byte("http://10.0.0.1:8081/x")) + "." + rnd
	withPath += "." + b64.EncodeToString(a.tag(withPath))
	for name, bad := range map[string]string{
		"other secret":   other.NewConnID(),
		"swapped owner":  evil + "." + rnd + "." + tag,
		"flipped random": enc + "." + flip(rnd) + "." + tag,
		"flipped tag":    enc + "." + rnd + "." + flip(tag),
		"no tag":         enc + "." + rnd,
		"standalone id":  "AAAAAAAAAAAAAAAA",
		"empty":          "",
		"dots":           "..",
		"long":           enc + "." + rnd + "." + tag + strings.Repeat("A", 600),
		"url with path":  withPath,
	} {
		if owner, err := a.Owner(bad); !errors.Is(err, ErrBadConnID) {
			t.Errorf("%s: Owner(%q) = %q, %v; want ErrBadConnID", name, bad, owner, err)
		}
	}
}

// flip changes the last character of a base64url string to another one.
func flip(s string) string {
	c := byte('A')
	if s[len(s)-1] == 'A' {
		c = 'B'
	}
	return s[:len(s)-1] + string(c)
}

func TestNewChecksConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Secret: []byte("short"), AdvertiseURL: "http://10.0.0.1:1"}, "at least 32 bytes"},
		{Config{Secret: secret, AdvertiseURL: "10.0.0.1:8081"}, "want http://HOST:PORT"},
		{Config{Secret: secret, AdvertiseURL: "http://10.0.0.1"}, "explicit host:port"},
		{Config{Secret: secret, AdvertiseURL: "http://0.0.0.0:8081"}, "not an address other processes can reach"},
		{Config{Secret: secret, AdvertiseURL: "http://[::]:8081"}, "not an address other processes can reach"},
		{Config{Secret: secret, AdvertiseURL: "http://10.0.0.1:8081/relay"}, "no path"},
		{Config{Secret: secret, AdvertiseURL: "http://u:p@10.0.0.1:8081"}, "no path, query or credentials"},
		{Config{Secret: secret, AdvertiseURL: "http://10.0.0.1:1", MaxInFlight: -1}, "must be positive"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q): %v; want %q", c.cfg.AdvertiseURL, err, c.want)
		}
	}
}

func TestPostAcrossNodes(t *testing.T) {
	a, b := startNode(t, secret, nil), startNode(t, secret, nil)
	onA, onB := a.connect(), b.connect()
	pa, pb := a.Poster(a.local), b.Poster(b.local)
	ctx := t.Context()

	// Local ids stay local; remote ones travel, in order.
	if err := pa.Post(ctx, onA, []byte(`{"type":"message-sent"}`)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pa.Post(ctx, onB, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatalf("post to b: %v", err)
		}
	}
	if err := pb.Post(ctx, onA, []byte(`{"from":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.local.got(onB), " "); got != `{"n":0} {"n":1} {"n":2}` {
		t.Errorf("b received %s", got)
	}
	if got := strings.Join(a.local.got(onA), " "); got != `{"type":"message-sent"} {"from":"b"}` {
		t.Errorf("a received %s", got)
	}
	if a.Stats().Sent.Load() != 3 || b.Stats().Served.Load() != 3 {
		t.Errorf("stats: a sent %d, b served %d", a.Stats().Sent.Load(), b.Stats().Served.Load())
	}

	// A connection b minted but no longer holds is gone, as is one no
	// process of the cluster minted; neither is an HTTP success.
	gone := b.NewConnID()
	if err := pa.Post(ctx, gone, []byte(`{}`)); !errors.Is(err, relay.ErrGone) {
		t.Errorf("post to a vanished connection: %v, want ErrGone", err)
	}
	if err := pa.Post(ctx, "AAAAAAAAAAAAAAAA", []byte(`{}`)); !errors.Is(err, relay.ErrGone) {
		t.Errorf("post to a foreign id: %v, want ErrGone", err)
	}

	// Close reaches the owner.
	if err := pa.Close(ctx, onB); err != nil {
		t.Fatal(err)
	}
	if len(b.local.closed) != 1 || b.local.closed[0] != onB {
		t.Errorf("b closed %v, want [%s]", b.local.closed, onB)
	}
	if err := pa.Post(ctx, onB, []byte(`{}`)); !errors.Is(err, relay.ErrGone) {
		t.Errorf("post after close: %v, want ErrGone", err)
	}
}

func TestUnreachableOwnerIsGone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead, _ := New(Config{Secret: secret, AdvertiseURL: "http://" + l.Addr().String()})
	l.Close() // nothing listens there any more
	a := startNode(t, secret, nil)
	err = a.Poster(a.local).Post(t.Context(), dead.NewConnID(), []byte(`{}`))
	if !errors.Is(err, relay.ErrGone) {
		t.Fatalf("post to a stopped process: %v, want ErrGone", err)
	}
}

// signedRequest builds a request to node's endpoint signed the way
// relay/apigw signs, with the given secret access key and time.
func signedRequest(t *testing.T, url, method, id string, body []byte, sigSecret string, when time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url+"/@connections/"+id, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: sigSecret}
	// A fresh signer: the SDK's caches derived keys by key id, not secret.
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), Service, Region, when); err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype") + " " + string(b)
}

func TestEndpointRefusesWhatIsNotSignedByTheCluster(t *testing.T) {
	b := startNode(t, secret, nil)
	id := b.connect()
	body := []byte(`{"type":"peer-message"}`)
	now := time.Now()
	good := b.sigSecret
	wrong, _ := New(Config{Secret: []byte("a different secret, also 32 bytes long"), AdvertiseURL: "http://10.0.0.9:1"})

	for name, req := range map[string]*http.Request{
		"unsigned": func() *http.Request {
			r, _ := http.NewRequest("POST", b.url+"/@connections/"+id, bytes.NewReader(body))
			return r
		}(),
		"wrong secret": signedRequest(t, b.url, "POST", id, body, wrong.sigSecret, now),
		"too old":      signedRequest(t, b.url, "POST", id, body, good, now.Add(-6*time.Minute)),
		"future":       signedRequest(t, b.url, "POST", id, body, good, now.Add(6*time.Minute)),
		"body swapped": func() *http.Request {
			r := signedRequest(t, b.url, "POST", id, body, good, now)
			r.Body = io.NopCloser(strings.NewReader(`{"type":"peer-message","x":1}`))
			r.ContentLength = int64(len(body)) + 6
			return r
		}(),
		"other target": func() *http.Request {
			other := b.connect()
			r := signedRequest(t, b.url, "POST", other, body, good, now)
			r.URL.Path = "/@connections/" + id
			return r
		}(),
		"method changed": func() *http.Request {
			r := signedRequest(t, b.url, "POST", id, nil, good, now)
			r.Method = "DELETE"
			return r
		}(),
		"garbage auth": func() *http.Request {
			r, _ := http.NewRequest("POST", b.url+"/@connections/"+id, bytes.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+string(secret))
			return r
		}(),
	} {
		if code, msg := do(t, req); code != http.StatusForbidden || !strings.HasPrefix(msg, "ForbiddenException") {
			t.Errorf("%s: %d %s, want 403 ForbiddenException", name, code, msg)
		}
	}
	if got := b.local.got(id); len(got) != 0 || len(b.local.closed) != 0 {
		t.Errorf("refused requests reached the connection: %q, closed %v", got, b.local.closed)
	}
	if n := b.Stats().Refused.Load(); n != 8 {
		t.Errorf("Refused = %d, want 8", n)
	}

	// The same, signed properly, is delivered: the refusals were not a
	// broken verifier.
	if code, msg := do(t, signedRequest(t, b.url, "POST", id, body, good, now)); code != http.StatusOK {
		t.Fatalf("signed post: %d %s", code, msg)
	}
	if got := b.local.got(id); len(got) != 1 || got[0] != string(body) {
		t.Errorf("delivered %q", got)
	}

	// And a poster with the wrong secret learns it was refused (an error,
	// but not ErrGone: the connection may well exist).
	p, err := apigw.New(aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, wrong.sigSecret, ""),
	}, b.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Post(t.Context(), id, body); err == nil || errors.Is(err, relay.ErrGone) || !strings.Contains(err.Error(), "403") {
		t.Errorf("post with the wrong secret: %v, want a 403 error", err)
	}
}

func TestEndpointBoundsSizeAndConcurrency(t *testing.T) {
	b := startNode(t, secret, func(c *Config) { c.MaxBody = 4096; c.MaxInFlight = 1 })
	id := b.connect()
	now := time.Now()

	big := bytes.Repeat([]byte("A"), 4097)
	if code, msg := do(t, signedRequest(t, b.url, "POST", id, big, b.sigSecret, now)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized post: %d %s, want 413", code, msg)
	}
	// Without a Content-Length the limit still holds while reading.
	req := signedRequest(t, b.url, "POST", id, big, b.sigSecret, now)
	req.ContentLength = -1
	req.Body = io.NopCloser(bytes.NewReader(big))
	if code, msg := do(t, req); code != http.StatusRequestEntityTooLarge && code != http.StatusForbidden {
		t.Errorf("oversized chunked post: %d %s, want 413 or 403", code, msg)
	}
	if got := b.local.got(id); len(got) != 0 {
		t.Fatalf("oversized message delivered")
	}

	// One request in flight holds the only slot; the next is told to back off.
	b.local.block, b.local.entered = make(chan struct{}), make(chan struct{}, 1)
	first := make(chan int, 1)
	go func() {
		code, _ := do(t, signedRequest(t, b.url, "POST", id, []byte(`{"n":1}`), b.sigSecret, now))
		first <- code
	}()
	<-b.local.entered // the first request holds the slot
	code, msg := do(t, signedRequest(t, b.url, "POST", id, []byte(`{"n":2}`), b.sigSecret, now))
	if code != http.StatusTooManyRequests || !strings.HasPrefix(msg, "LimitExceededException") {
		t.Errorf("second concurrent post: %d %s, want 429 LimitExceededException", code, msg)
	}
	close(b.local.block)
	if c := <-first; c != http.StatusOK {
		t.Errorf("first post: %d", c)
	}
}
