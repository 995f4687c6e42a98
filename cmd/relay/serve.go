package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/cluster"
	"github.com/farsign/farsign/relay/dynamostore"
	"github.com/farsign/farsign/relay/memstore"
	"github.com/farsign/farsign/relay/metrics"
	"github.com/farsign/farsign/relay/standalone"
)

const serveHelp = `Runs a standalone relay: a websocket server that pairs an initiator (agent,
or rcodesign sign) with a signer (signer, or rcodesign remote-sign) in a session
and forwards their end-to-end encrypted messages. The relay never sees keys or
plaintext. By default sessions live in memory and end when the relay stops.

Clients connect to ws://HOST:PORT/ (wss:// with --tls-cert/--tls-key). Point
rcodesign at it with --remote-signing-url. Also served: /healthz (200 "ok")
and /metrics (Prometheus text).

On SIGINT or SIGTERM the relay stops accepting connections, tells every peer
in a session "session-closed: relay shutting down", and exits.

Logs go to stderr; message contents, contexts and session ids are never
logged.

Several relays behind one load balancer (--store dynamodb --cluster-listen):
the processes keep sessions in one DynamoDB table (the one the terraform/
module creates, or any table with its schema), so a session created through
one process can be joined through another. Each process can only write to
the websockets it holds, so they also deliver to each other: a process names
itself in the id of every connection it accepts (its --cluster-advertise-url,
authenticated with the cluster secret) and serves API Gateway's management
API on --cluster-listen (POST /@connections/ID delivers a message, DELETE
closes, 410 means gone). Requests between processes are signed (AWS SigV4)
with a key derived from the shared secret, read from --cluster-secret-file or
the environment variable named by --cluster-secret-env, never from the
command line. Keep --cluster-listen on a private network: it is not
encrypted (what crosses it is end-to-end encrypted anyway). Without
--cluster-listen, --store dynamodb suits exactly one process.

AWS credentials and region come from the usual places (environment,
~/.aws, instance role); --region and --dynamodb-endpoint override them.

Examples:

  # On your machine, for a quick try:
  relay serve

  # On a server, behind nothing, with TLS and a greeting:
  relay serve --listen :443 --tls-cert cert.pem --tls-key key.pem \
      --motd "ACME signing relay - ops@acme.example"

  # In a test: any free port, and learn it from a file:
  relay serve --listen 127.0.0.1:0 --addr-file relay.url

  # Two processes sharing DynamoDB Local (create the table once), on one host:
  export RELAY_CLUSTER_SECRET=$(openssl rand -base64 32)
  relay serve --listen :8080 --store dynamodb --dynamodb-endpoint http://localhost:8000 \
      --region us-east-1 --dynamodb-create-table --cluster-listen 127.0.0.1:9080 &
  relay serve --listen :8081 --store dynamodb --dynamodb-endpoint http://localhost:8000 \
      --region us-east-1 --cluster-listen 127.0.0.1:9081 &

  # One of several hosts behind a load balancer, table made by terraform/:
  relay serve --listen :8080 --store dynamodb --dynamodb-table farsign-relay-sessions \
      --cluster-listen 10.0.1.7:9080 --cluster-secret-file /run/secrets/relay-cluster`

type serveFlags struct {
	listen, tlsCert, tlsKey, motd, addrFile, logLevel, logFormat string
	maxTTL, pingInterval, idleTimeout                            time.Duration
	maxMessage, maxSessions, burst, maxConns                     int
	rate                                                         float64

	store, table, endpoint, region      string
	createTable                         bool
	clusterListen, clusterAdvertise     string
	clusterSecretFile, clusterSecretEnv string
	set                                 map[string]bool // flags given on the command line
}

// DefaultTable is the table terraform/ creates with its default name
// (var.name "farsign-relay" + "-sessions").
const DefaultTable = "farsign-relay-sessions"

// DefaultSecretEnv is where the cluster secret is read from by default.
const DefaultSecretEnv = "RELAY_CLUSTER_SECRET"

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Summary:   "run a standalone relay server",
		UsageLine: "[flags]",
		Help:      serveHelp,
		Setup: func(fs *flag.FlagSet) func(ctx context.Context, args []string) error {
			var f serveFlags
			fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` to listen on (host:port; port 0 picks a free one)")
			fs.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS (wss://) with this PEM certificate chain `file` (needs --tls-key)")
			fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` for --tls-cert")
			fs.StringVar(&f.motd, "motd", "", "message of the day sent to every client (rcodesign prints it)")
			fs.StringVar(&f.addrFile, "addr-file", "", "once listening, write the relay's URL to this `file`")
			fs.DurationVar(&f.maxTTL, "max-ttl", relay.DefaultMaxTTL, "longest session lifetime a client may ask for")
			fs.IntVar(&f.maxMessage, "max-message-size", relay.DefaultMaxMessageSize, "largest client message in `bytes` (128 KiB is API Gateway's limit)")
			fs.IntVar(&f.maxSessions, "max-sessions-per-conn", relay.DefaultMaxSessionsPerConn, "live sessions one connection may create or join")
			fs.Float64Var(&f.rate, "rate", relay.DefaultMessageRate, "requests per second allowed per connection; negative for no limit")
			fs.IntVar(&f.burst, "burst", relay.DefaultMessageBurst, "requests a connection may send at once before --rate applies")
			fs.IntVar(&f.maxConns, "max-connections", standalone.DefaultMaxConnections, "concurrent websocket connections accepted")
			fs.DurationVar(&f.pingInterval, "ping-interval", standalone.DefaultPingInterval, "how often to ping each client")
			fs.DurationVar(&f.idleTimeout, "idle-timeout", standalone.DefaultIdleTimeout, "drop a client silent (not even answering pings) this long")
			fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
			fs.StringVar(&f.logFormat, "log-format", "text", "log `format`: text or json")
			fs.StringVar(&f.store, "store", "memory", "`store` for sessions: memory (this process only) or dynamodb (shared by several processes)")
			fs.StringVar(&f.table, "dynamodb-table", DefaultTable, "DynamoDB `table` for --store dynamodb (terraform/ names it NAME-sessions)")
			fs.StringVar(&f.endpoint, "dynamodb-endpoint", "", "DynamoDB endpoint `URL`, e.g. http://localhost:8000 for DynamoDB Local or dynalite")
			fs.StringVar(&f.region, "region", "", "AWS `region` of the table (default: AWS_REGION or ~/.aws/config)")
			fs.BoolVar(&f.createTable, "dynamodb-create-table", false, "create the table if it does not exist (local setups; in AWS terraform/ owns it)")
			fs.StringVar(&f.clusterListen, "cluster-listen", "", "serve other relay processes on this `address` (host:port, private network); enables cluster delivery")
			fs.StringVar(&f.clusterAdvertise, "cluster-advertise-url", "", "`URL` other processes reach --cluster-listen at (default: http://<cluster-listen>)")
			fs.StringVar(&f.clusterSecretFile, "cluster-secret-file", "", "read the shared cluster secret from this `file`")
			fs.StringVar(&f.clusterSecretEnv, "cluster-secret-env", DefaultSecretEnv, "read the shared cluster secret from this environment `variable`")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return cli.Usagef("unexpected argument %q", args[0])
				}
				f.set = map[string]bool{}
				fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
				return serve(ctx, f)
			}
		},
	}
}

func serve(ctx context.Context, f serveFlags) error {
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if err := checkFlags(f); err != nil {
		return err
	}
	var tlsConf *tls.Config
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var cl *clusterListener
	if f.clusterListen != "" {
		secret, err := clusterSecret(f, logger)
		if err != nil {
			return err
		}
		if cl, err = listenCluster(f, secret, logger); err != nil {
			return err
		}
		defer cl.l.Close()
	}
	store, err := openStore(ctx, f)
	if err != nil {
		return err
	}

	cfg := standalone.Config{
		Relay: relay.Config{
			Store:              store,
			MOTD:               f.motd,
			MaxTTL:             f.maxTTL,
			MaxMessageSize:     f.maxMessage,
			MaxSessionsPerConn: f.maxSessions,
			MessageRate:        f.rate,
			MessageBurst:       f.burst,
		},
		Logger:         logger,
		Metrics:        metrics.New(),
		PingInterval:   f.pingInterval,
		IdleTimeout:    f.idleTimeout,
		MaxConnections: f.maxConns,
	}
	if cl != nil {
		cl.register(cfg.Metrics)
		cfg.ConnID, cfg.Poster = cl.node.NewConnID, cl.node.Poster
	}
	srv, err := standalone.New(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		srv.Close()
		return err
	}
	scheme := "ws"
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
		scheme = "wss"
	}
	url := fmt.Sprintf("%s://%s/", scheme, l.Addr())
	if f.addrFile != "" {
		if err := writeFileAtomic(f.addrFile, url+"\n"); err != nil {
			l.Close()
			srv.Close()
			return err
		}
	}

	served := make(chan error, 2)
	servers := 1
	go func() { served <- srv.Serve(l) }()
	if cl != nil {
		servers++
		cl.srv.Handler = cl.node.Handler(srv.LocalPoster())
		go func() { served <- cl.srv.Serve(cl.l) }()
		fmt.Fprintf(os.Stderr, "relay cluster endpoint on http://%s/ (advertised as %s)\n", cl.l.Addr(), cl.node.AdvertiseURL())
	}
	fmt.Fprintf(os.Stderr, "relay listening on %s\n", url)
	logger.Info("relay started", "url", url, "store", f.store, "max_ttl", f.maxTTL, "max_message_size", f.maxMessage)

	select {
	case err := <-served:
		srv.Close()
		if cl != nil {
			cl.srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The cluster endpoint stays up while the websockets drain: other
	// processes may still deliver session-closed to them.
	err = srv.Shutdown(sctx)
	if cl != nil {
		err = errors.Join(err, cl.srv.Shutdown(sctx))
	}
	for range servers {
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(os.Stderr, "relay stopped")
	return nil
}

// checkFlags refuses inconsistent flags before anything starts.
func checkFlags(f serveFlags) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return cli.Usagef("--tls-cert and --tls-key go together")
	}
	if f.maxTTL < time.Second {
		return cli.Usagef("--max-ttl must be at least 1s")
	}
	if f.maxMessage < 1024 || f.maxMessage > 1<<20 {
		return cli.Usagef("--max-message-size must be between 1024 and 1048576")
	}
	if f.maxSessions < 1 || f.maxConns < 1 || f.burst < 1 || f.rate == 0 {
		return cli.Usagef("--max-sessions-per-conn, --max-connections, --burst and --rate must be positive (--rate may be negative for no limit)")
	}
	if f.pingInterval <= 0 || f.idleTimeout <= f.pingInterval {
		return cli.Usagef("--idle-timeout must be longer than --ping-interval, and both positive")
	}
	switch f.store {
	case "memory":
		for _, name := range []string{"dynamodb-table", "dynamodb-endpoint", "region", "dynamodb-create-table"} {
			if f.set[name] {
				return cli.Usagef("--%s needs --store dynamodb", name)
			}
		}
		if f.clusterListen != "" {
			return cli.Usagef("--cluster-listen needs --store dynamodb: the processes of a cluster share their sessions through it")
		}
	case "dynamodb":
		if f.table == "" {
			return cli.Usagef("--store dynamodb needs a table name (--dynamodb-table)")
		}
		if f.endpoint != "" && !strings.HasPrefix(f.endpoint, "http://") && !strings.HasPrefix(f.endpoint, "https://") {
			return cli.Usagef("--dynamodb-endpoint %q: want an http:// or https:// URL", f.endpoint)
		}
	default:
		return cli.Usagef("--store %q: want memory or dynamodb", f.store)
	}
	if f.clusterListen == "" {
		for _, name := range []string{"cluster-advertise-url", "cluster-secret-file", "cluster-secret-env"} {
			if f.set[name] {
				return cli.Usagef("--%s needs --cluster-listen", name)
			}
		}
	}
	return nil
}

// openStore returns the session store the flags ask for.
func openStore(ctx context.Context, f serveFlags) (relay.Store, error) {
	if f.store != "dynamodb" {
		return memstore.New(), nil
	}
	ds, err := dynamostore.New(ctx, dynamostore.Options{Table: f.table, Region: f.region, Endpoint: f.endpoint})
	if err != nil {
		return nil, err
	}
	if f.createTable {
		fmt.Fprintf(os.Stderr, "relay: creating DynamoDB table %s if it does not exist...\n", f.table)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		if err := ds.CreateTable(cctx); err != nil {
			return nil, err
		}
	}
	// Fail now, not on the first client, if the table cannot be read: one
	// read of a session id no client can use (too short to be valid).
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := ds.Get(cctx, "startup-check", time.Now()); !errors.Is(err, relay.ErrSessionNotFound) {
		return nil, fmt.Errorf("cannot use DynamoDB table %s: %w", f.table, err)
	}
	return ds, nil
}

// clusterListener is the cluster endpoint of this process.
type clusterListener struct {
	node *cluster.Node
	l    net.Listener
	srv  *http.Server
}

// listenCluster reads the cluster secret, opens --cluster-listen and makes
// the Node. The handler is attached once the websocket server exists.
func listenCluster(f serveFlags, secret []byte, logger *slog.Logger) (*clusterListener, error) {
	l, err := net.Listen("tcp", f.clusterListen)
	if err != nil {
		return nil, fmt.Errorf("--cluster-listen: %w", err)
	}
	advertise := f.clusterAdvertise
	if advertise == "" {
		host, _, _ := net.SplitHostPort(f.clusterListen)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			l.Close()
			return nil, cli.Usagef("--cluster-listen %s listens on every address: set --cluster-advertise-url to the one other relays should use", f.clusterListen)
		}
		advertise = "http://" + l.Addr().String()
	}
	node, err := cluster.New(cluster.Config{Secret: secret, AdvertiseURL: advertise, Logger: logger})
	if err != nil {
		l.Close()
		return nil, err
	}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return &clusterListener{node: node, l: l, srv: srv}, nil
}

// register exports the node's counters on reg.
func (cl *clusterListener) register(reg *metrics.Registry) {
	st := cl.node.Stats()
	reg.Gauge("relay_cluster_deliveries_sent", "Messages and closes delivered to other relay processes (monotonic).", func() float64 { return float64(st.Sent.Load()) })
	reg.Gauge("relay_cluster_deliveries_failed", "Deliveries to other relay processes that failed, gone connections included (monotonic).", func() float64 { return float64(st.Failed.Load()) })
	reg.Gauge("relay_cluster_requests_served", "Authenticated requests from other relay processes (monotonic).", func() float64 { return float64(st.Served.Load()) })
	reg.Gauge("relay_cluster_requests_refused", "Requests to the cluster endpoint refused for a bad or missing signature (monotonic).", func() float64 { return float64(st.Refused.Load()) })
}

// clusterSecret reads the shared secret from --cluster-secret-file or the
// environment, and removes it from the environment so that nothing this
// process starts inherits it.
func clusterSecret(f serveFlags, logger *slog.Logger) ([]byte, error) {
	var secret []byte
	if f.clusterSecretFile != "" {
		b, err := os.ReadFile(f.clusterSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file: %w", err)
		}
		if fi, err := os.Stat(f.clusterSecretFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			logger.Warn("the cluster secret file is readable by other users; chmod 600 it", "file", f.clusterSecretFile)
		}
		secret = []byte(strings.TrimRight(string(b), "\r\n"))
	} else {
		v, ok := os.LookupEnv(f.clusterSecretEnv)
		if !ok || v == "" {
			return nil, cli.Usagef("--cluster-listen needs the shared cluster secret: set %s (e.g. to the output of `openssl rand -base64 32`, the same on every relay) or use --cluster-secret-file", f.clusterSecretEnv)
		}
		os.Unsetenv(f.clusterSecretEnv)
		secret = []byte(v)
	}
	if len(secret) < cluster.MinSecretLen {
		return nil, fmt.Errorf("the cluster secret is %d bytes; it must be at least %d (generate one with: openssl rand -base64 32)", len(secret), cluster.MinSecretLen)
	}
	return secret, nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, cli.Usagef("--log-format %q: want text or json", format)
}

// writeFileAtomic writes via a temporary file in the same folder and a
// rename, so a reader waiting for the file never sees it half written.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".relay-addr-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
