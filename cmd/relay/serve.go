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
	"github.com/farsign/farsign/relay/standalone"
)

const serveHelp = `Runs a standalone relay: a websocket server that pairs an initiator (agent,
or rcodesign sign) with a signer (signer, or rcodesign remote-sign) in a session
and forwards their end-to-end encrypted messages. The relay never sees keys or
plaintext; sessions live in memory and end when the relay stops.

Clients connect to ws://HOST:PORT/ (wss:// with --tls-cert/--tls-key). Point
rcodesign at it with --remote-signing-url. Also served: /healthz (200 "ok")
and /metrics (Prometheus text).

On SIGINT or SIGTERM the relay stops accepting connections, tells every peer
in a session "session-closed: relay shutting down", and exits.

Logs go to stderr; message contents, contexts and session ids are never
logged.

Examples:

  # On your machine, for a quick try:
  relay serve

  # On a server, behind nothing, with TLS and a greeting:
  relay serve --listen :443 --tls-cert cert.pem --tls-key key.pem \
      --motd "ACME signing relay - ops@acme.example"

  # In a test: any free port, and learn it from a file:
  relay serve --listen 127.0.0.1:0 --addr-file relay.url`

type serveFlags struct {
	listen, tlsCert, tlsKey, motd, addrFile, logLevel, logFormat string
	maxTTL, pingInterval, idleTimeout                            time.Duration
	maxMessage, maxSessions, burst, maxConns                     int
	rate                                                         float64
}

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
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return cli.Usagef("unexpected argument %q", args[0])
				}
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
	var tlsConf *tls.Config
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	srv, err := standalone.New(standalone.Config{
		Relay: relay.Config{
			MOTD:               f.motd,
			MaxTTL:             f.maxTTL,
			MaxMessageSize:     f.maxMessage,
			MaxSessionsPerConn: f.maxSessions,
			MessageRate:        f.rate,
			MessageBurst:       f.burst,
		},
		Logger:         logger,
		PingInterval:   f.pingInterval,
		IdleTimeout:    f.idleTimeout,
		MaxConnections: f.maxConns,
	})
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

	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(os.Stderr, "relay listening on %s\n", url)
	logger.Info("relay started", "url", url, "max_ttl", f.maxTTL, "max_message_size", f.maxMessage)

	select {
	case err := <-served:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(os.Stderr, "relay stopped")
	return nil
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
