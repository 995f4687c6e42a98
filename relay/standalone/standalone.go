// Package standalone serves the relay core over websockets from one process:
// `relay serve`, and an embedded relay for tests and the quickstart.
//
//	srv, err := standalone.New(standalone.Config{})
//	l, err := net.Listen("tcp", "127.0.0.1:0")
//	go srv.Serve(l)                 // clients connect to ws://<l.Addr()>/
//	defer srv.Shutdown(ctx)         // peers get session-closed "relay shutting down"
//
// It translates websocket events into relay.Handler calls and implements
// relay.Poster with one ordered, bounded send queue per connection (see
// conn). A connection costs no goroutine beyond the one net/http already
// runs for it: queues are drained by the reader that filled them, or by a
// writer goroutine that exists only while there is something to write,
// which is what lets one small machine hold tens of thousands of waiting
// peers.
//
// Endpoints: the websocket at "/", "/healthz" (200 "ok", 503 while shutting
// down) and "/metrics" (Prometheus text).
//
// One Server reaches only its own websockets. Several of them behind a load
// balancer share a Store (relay/dynamostore) and deliver to each other
// through relay/cluster, which plugs in with Config.ConnID (ids that name
// the process holding a connection) and Config.Poster (a Poster that routes
// other processes' connections to them), and serves LocalPoster to them.
package standalone

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
	"github.com/farsign/farsign/relay/metrics"
)

// Defaults for the zero values of Config.
const (
	DefaultPingInterval   = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultWriteTimeout   = 10 * time.Second
	DefaultSendQueue      = 256
	DefaultSweepInterval  = 5 * time.Second
	DefaultMaxConnections = 50_000
)

// Config configures a Server. Zero values mean the defaults.
//
// The Server is its core's relay.Poster: Relay.Poster is ignored.
type Config struct {
	// Relay configures the core. Relay.Store defaults to a fresh memstore; Relay.Metrics
	// defaults to Metrics; Relay.Logger to Logger.
	Relay relay.Config

	// Logger receives the server's structured logs (default: discard).
	Logger *slog.Logger
	// Metrics is served on /metrics (default: a new registry).
	Metrics *metrics.Registry

	// PingInterval is how often a websocket ping is sent to each client.
	PingInterval time.Duration
	// IdleTimeout closes a connection from which nothing at all (not even a
	// pong) arrived for that long: a dead peer. rcodesign answers pings
	// whenever it reads, so this must cover the longest time a client works
	// without reading.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a client; a client that does not
	// read is disconnected.
	WriteTimeout time.Duration
	// SendQueue bounds the messages waiting to be written to one client; a
	// client that falls that far behind is disconnected.
	SendQueue int
	// SweepInterval is how often expired sessions are closed (with a
	// session-closed to their members). Expiry is enforced on every
	// request regardless.
	SweepInterval time.Duration
	// MaxConnections bounds concurrent websocket connections; more get
	// HTTP 503.
	MaxConnections int

	// ConnID mints the id of each new connection (default: 16 random
	// URL-safe characters). Several processes sharing one Store must mint
	// ids that say which process holds the connection: relay/cluster's
	// Node.NewConnID.
	ConnID func() string
	// Poster, if set, wraps the server's own Poster, which reaches only this
	// process's websockets, into the one the core uses: relay/cluster's
	// Node.Poster routes other processes' connections to them.
	Poster func(local relay.Poster) relay.Poster
}

// Server is a standalone relay.
type Server struct {
	cfg     Config
	core    *relay.Handler
	log     *slog.Logger
	metrics *metrics.Registry
	up      websocket.Upgrader
	mux     *http.ServeMux
	http    *http.Server

	mu       sync.Mutex
	conns    map[string]*conn
	draining bool
	nconns   atomic.Int64
	handlers sync.WaitGroup // one per websocket handler

	stopSweep context.CancelFunc
	sweepDone chan struct{}
}

// poster is the Server's relay.Poster.
type poster struct{ s *Server }

var _ relay.Poster = poster{}

// New returns a Server. It starts the expiry sweeper; call Shutdown (or Close)
// to stop it.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	setDefault(&cfg.PingInterval, DefaultPingInterval)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDefault(&cfg.SweepInterval, DefaultSweepInterval)
	if cfg.SendQueue == 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.PingInterval <= 0 || cfg.IdleTimeout <= cfg.PingInterval || cfg.WriteTimeout <= 0 ||
		cfg.SendQueue < 1 || cfg.MaxConnections < 1 || cfg.SweepInterval <= 0 {
		return nil, errors.New("standalone: bad config: timeouts and sizes must be positive, and IdleTimeout longer than PingInterval")
	}
	if cfg.ConnID == nil {
		cfg.ConnID = newConnID
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, conns: make(map[string]*conn)}

	rc := cfg.Relay
	rc.Poster = poster{s}
	if cfg.Poster != nil {
		rc.Poster = cfg.Poster(poster{s})
	}
	if rc.Store == nil {
		rc.Store = memstore.New()
	}
	if rc.Metrics == nil {
		rc.Metrics = cfg.Metrics
	}
	if rc.Logger == nil {
		rc.Logger = cfg.Logger
	}
	core, err := relay.New(rc)
	if err != nil {
		return nil, err
	}
	s.core = core

	s.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// ReadBufferSize 0 reuses net/http's 4 KiB reader; writes borrow a
		// pooled buffer only while writing. Idle connections stay small.
		WriteBufferPool: &sync.Pool{},
		// The relay has no cookies or credentials for a web page to abuse,
		// and anyone may connect anyway; rcodesign sends no Origin.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	s.metrics.Gauge("relay_connections_open", "Open websocket connections.", func() float64 { return float64(s.nconns.Load()) })
	if ms, ok := rc.Store.(*memstore.Store); ok {
		s.metrics.Gauge("relay_sessions_stored", "Sessions held in memory, expired ones not yet swept included.", func() float64 { return float64(ms.Len()) })
	}

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", s.serveWS)
	s.mux.HandleFunc("/healthz", s.serveHealth)
	s.mux.Handle("/metrics", s.metrics)
	s.http = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.stopSweep = cancel
	s.sweepDone = make(chan struct{})
	go s.sweep(ctx)
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

// Handler returns the HTTP handler ("/", "/healthz", "/metrics"), for
// embedding in another server. Serve uses it.
func (s *Server) Handler() http.Handler { return s.mux }

// LocalPoster returns the Poster that reaches this server's own websockets
// only (the core may use a wider one, see Config.Poster). relay/cluster
// serves it to the other processes of a cluster.
func (s *Server) LocalPoster() relay.Poster { return poster{s} }

// Core returns the relay core the server drives.
func (s *Server) Core() *relay.Handler { return s.core }

// Serve accepts connections on l until Shutdown or Close. It returns
// http.ErrServerClosed after a Shutdown, like http.Server.Serve.
func (s *Server) Serve(l net.Listener) error { return s.http.Serve(l) }

// Sweep closes expired sessions now (the sweeper does it every
// SweepInterval), telling their members. For tests with an injected clock.
func (s *Server) Sweep(ctx context.Context) error { return s.core.Sweep(ctx) }

func (s *Server) sweep(ctx context.Context) {
	defer close(s.sweepDone)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.core.Sweep(ctx); err != nil {
				s.log.Warn("sweep failed", "err", err)
			}
		}
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if draining {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this is a farsign remote-signing relay: connect with a websocket client (rcodesign, agent or signer)", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		http.Error(w, "relay shutting down", http.StatusServiceUnavailable)
		return
	}
	if s.nconns.Load() >= int64(s.cfg.MaxConnections) {
		s.mu.Unlock()
		s.log.Warn("connection refused: too many connections", "max", s.cfg.MaxConnections)
		http.Error(w, "relay at capacity; try again later", http.StatusServiceUnavailable)
		return
	}
	s.nconns.Add(1)
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	defer s.nconns.Add(-1)

	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client.
	}
	c := &conn{srv: s, id: s.cfg.ConnID(), ws: ws}
	s.mu.Lock()
	s.conns[c.id] = c
	s.mu.Unlock()
	s.log.Debug("websocket open", "conn", c.id, "remote", r.RemoteAddr)

	ctx := context.Background()
	if err := s.core.Connect(ctx, c.id); err != nil {
		s.log.Warn("connect refused", "conn", c.id, "err", err)
	} else {
		c.read(ctx)
	}

	// Forget the connection before telling the core, so that notifications
	// to it fail fast with ErrGone instead of queueing for nobody.
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	c.kill()
	if err := s.core.Disconnect(ctx, c.id); err != nil {
		s.log.Warn("disconnect", "conn", c.id, "err", err)
	}
	s.log.Debug("websocket closed", "conn", c.id)
}

func newConnID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) lookup(id string) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// Post implements relay.Poster: it queues msg on the connection's ordered
// writer. It fails with relay.ErrGone for an unknown or closed connection
// and for one whose queue is full (which it disconnects).
func (p poster) Post(ctx context.Context, id string, msg []byte) error {
	c := p.s.lookup(id)
	if c == nil {
		return fmt.Errorf("standalone: connection %s: %w", id, relay.ErrGone)
	}
	return c.enqueue(ctx, msg)
}

// Close implements relay.Poster: it closes the connection with a policy
// violation status; the core then sees its Disconnect.
func (p poster) Close(_ context.Context, id string) error {
	if c := p.s.lookup(id); c != nil {
		c.closeWith(websocket.ClosePolicyViolation, "closed by relay")
	}
	return nil
}

// Shutdown stops the server gracefully: it refuses new connections, tells
// every peer with an open session session-closed ("relay shutting down"),
// sends those messages and a close frame (1001 going away) to every client,
// and waits for the connections to end or ctx to expire, when it closes them
// outright.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.drain()

	s.stopSweep()
	<-s.sweepDone
	// Stop listening; hijacked websockets are not touched by this.
	herr := s.http.Shutdown(ctx)

	// Each connection's sessions are one Store query (a DynamoDB round trip
	// with --store dynamodb), so with many connections the deadline can come
	// first. The rest are then left to expire; their clients still get the
	// 1001 close below. One summary line, not one per connection.
	var failed int
	var firstErr error
	for i, c := range conns {
		if ctx.Err() != nil {
			failed += len(conns) - i
			if firstErr == nil {
				firstErr = ctx.Err()
			}
			break
		}
		if err := s.core.CloseSessionsOf(ctx, c.id, relay.ReasonShutdown); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		s.log.Warn("shutdown: could not close the sessions of every connection; they expire by themselves",
			"connections", failed, "of", len(conns), "first_err", firstErr)
	}
	for _, c := range conns {
		c.drainAndClose(websocket.CloseGoingAway, relay.ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.kill()
		}
		<-done
		return ctx.Err()
	}
	if errors.Is(herr, http.ErrServerClosed) {
		herr = nil
	}
	return herr
}

// drain stops the server taking new connections and returns those it holds.
func (s *Server) drain() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Close stops the server at once, without telling peers.
func (s *Server) Close() error {
	conns := s.drain()
	s.stopSweep()
	<-s.sweepDone
	err := s.http.Close()
	for _, c := range conns {
		c.kill()
	}
	s.handlers.Wait()
	return err
}
