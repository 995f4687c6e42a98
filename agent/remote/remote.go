// Package remote is the initiator side of a remote-signing session: the CI job
// that holds the artifact but not the key. It connects to a relay, creates a
// session, prints the join instructions a person carries to the key holder, waits
// for the signer, and then exposes the signer as a *Signer: a crypto.Signer and
// crypto.MessageSigner with a certificate chain, ready to hand to any signing code
// that signs through crypto.SignMessage (agent/cms.Sign does).
//
//	s, err := remote.Dial(ctx, remote.Config{SharedSecret: secret, Log: os.Stderr})
//	if err != nil { ... }
//	defer s.Close()                       // goodbye: the signer exits cleanly
//	cms.Sign(ctx, attrs, s, s.Certificate(), s.Chain(), nil)
//
// It speaks rcodesign's protocol in rcodesign's order (ping, pong, certificate
// request, then one sign request per signature), so it drives an rcodesign signer
// as well as farsign's. Unlike rcodesign it trusts nothing it is given: every
// signature is verified against the signer's certificate, with the algorithm the
// signer reports checked against the certificate's key and the requested hash,
// before it is returned; in a publickey0 session the certificate's key must be the
// key the join string was encrypted to; with Config.ExpectCertificates the
// certificate itself must be one of those pinned, in either scheme; and every
// wait is bounded.
//
// The context given to Start (or Dial) is the session's lifetime: cancelling it,
// on Ctrl-C for example, says goodbye to the relay (so the signer learns why the
// session ended) and disconnects.
package remote

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/wire"
)

// EnvRelayURL names the environment variable that overrides the default relay.
const EnvRelayURL = relayclient.EnvURL

// Defaults for the zero values of Config.
const (
	// DefaultSessionTTL is the session lifetime requested from the relay:
	// rcodesign's fixed 600 seconds.
	DefaultSessionTTL = 600 * time.Second
	// DefaultResponseTimeout bounds the wait for each answer from the signer.
	// It covers a person confirming the request, typing a PIN and touching a
	// YubiKey, so it is generous.
	DefaultResponseTimeout = 5 * time.Minute
	// DefaultSignerCommand is the program named in the join instructions.
	DefaultSignerCommand = "signer"
	// goodbyeTimeout bounds saying goodbye, which must never hold up an exit.
	goodbyeTimeout = 5 * time.Second
)

// Goodbye reasons sent to the signer.
const (
	ReasonCompleted   = "signing operations completed"
	ReasonInterrupted = "the initiator was interrupted"
	ReasonJoinTimeout = "no signer joined in time"
	ReasonFailed      = "the initiator aborted the session"
	// ReasonCertificateRejected tells the signer its certificate is not one
	// of Config.ExpectCertificates. It names no fingerprint: the reason
	// crosses the relay in clear.
	ReasonCertificateRejected = "the initiator does not accept the signer's certificate"
)

// Config configures a session. Exactly one of SignerPublicKey and SharedSecret
// must be set.
type Config struct {
	// RelayURL is the relay to use; "" means $FARSIGN_REMOTE_SIGNING_URL, or
	// else rcodesign's public relay (see ResolveRelayURL).
	RelayURL string
	// SignerPublicKey is the DER SubjectPublicKeyInfo of the signer's RSA key:
	// the publickey0 scheme (rcodesign's --remote-public-key).
	SignerPublicKey []byte
	// SharedSecret is the password both sides know: the sharedsecret0 scheme.
	SharedSecret []byte
	// ExpectCertificates, when not empty, are the only signing certificates
	// accepted: a signer presenting any other leaf certificate is told
	// goodbye (ReasonCertificateRejected) before anything is signed, and
	// Wait fails naming both sides' fingerprints. It works with both
	// schemes; in publickey0 every pinned certificate read from a file must
	// be for SignerPublicKey (see CheckExpectedKey). Only the leaf is
	// pinned; the chain the signer sends is not.
	ExpectCertificates []ExpectedCertificate

	// SessionTTL is the session lifetime requested from the relay (default
	// DefaultSessionTTL); the relay may grant less.
	SessionTTL time.Duration
	// JoinTimeout bounds the wait for the signer to join (default: the
	// session lifetime the relay granted).
	JoinTimeout time.Duration
	// ResponseTimeout bounds each wait for an answer from the signer (default
	// DefaultResponseTimeout).
	ResponseTimeout time.Duration

	// Log receives progress lines and the join instructions (nil: discarded).
	// Commands pass os.Stderr, as rcodesign prints there.
	Log io.Writer
	// StepSummary is a file the join instructions are appended to as
	// Markdown; "" means $GITHUB_STEP_SUMMARY, so GitHub Actions shows them
	// on the job's summary page. "-" disables it.
	StepSummary string
	// SignerCommand is the command named in the join instructions (default
	// "signer").
	SignerCommand string
	// Dial configures the relay connection.
	Dial *relayclient.Options
}

// ResolveRelayURL returns explicit if set, else $FARSIGN_REMOTE_SIGNING_URL if
// set, else rcodesign's public relay.
func ResolveRelayURL(explicit string) string { return relayclient.ResolveURL(explicit) }

// Session is a signing session from creation until the signer joins (Wait).
type Session struct {
	cfg    Config
	log    io.Writer
	url    string
	client *relayclient.Client
	init   *handshake.Initiator
	spki   []byte // publickey0: the key the join string is encrypted to
	ttl    time.Duration

	ctx      context.Context // the session's lifetime
	stopHook func() bool

	mu        sync.Mutex // serialises exchanges with the signer
	peer      *relayclient.Peer
	broken    error // set when the session can no longer be used
	closeOnce sync.Once
	closeErr  error
}

// Dial runs Start and Wait: it returns once the signer has joined and sent its
// certificate.
func Dial(ctx context.Context, cfg Config) (*Signer, error) {
	s, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return s.Wait(ctx)
}

// Start connects to the relay, creates the session and prints the join
// instructions. ctx is the session's lifetime (see the package doc).
func Start(ctx context.Context, cfg Config) (*Session, error) {
	if (cfg.SignerPublicKey == nil) == (cfg.SharedSecret == nil) {
		return nil, errors.New("remote signing needs exactly one of the signer's public key (publickey0) or a shared secret (sharedsecret0)")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = DefaultResponseTimeout
	}
	if cfg.SignerCommand == "" {
		cfg.SignerCommand = DefaultSignerCommand
	}
	cfg.ExpectCertificates = append([]ExpectedCertificate(nil), cfg.ExpectCertificates...)
	s := &Session{cfg: cfg, log: cfg.Log, url: ResolveRelayURL(cfg.RelayURL), ctx: ctx}
	if s.log == nil {
		s.log = io.Discard
	}
	if _, err := relayclient.ParseURL(s.url); err != nil {
		return nil, err
	}
	var err error
	if cfg.SignerPublicKey != nil {
		s.spki = append([]byte(nil), cfg.SignerPublicKey...)
		s.init, err = handshake.NewPublicKey0(s.spki, s.url)
	} else {
		s.init, err = handshake.NewSharedSecret0(cfg.SharedSecret)
	}
	if err != nil {
		return nil, err
	}
	if s.spki != nil {
		if err := CheckExpectedKey(cfg.ExpectCertificates, s.spki); err != nil {
			return nil, err
		}
	}

	fmt.Fprintf(s.log, "connecting to %s\n", s.url)
	s.client, err = relayclient.Dial(ctx, s.url, cfg.Dial)
	if err != nil {
		return nil, s.interrupted(err)
	}
	motd, err := s.client.Hello(ctx)
	if err != nil {
		s.client.Close()
		return nil, s.interrupted(err)
	}
	if motd != "" {
		fmt.Fprintf(s.log, "message from remote server: %s\n", motd)
	}
	granted, err := s.client.CreateSession(ctx, s.init.SessionID(), cfg.SessionTTL)
	if err != nil {
		s.client.Close()
		return nil, s.interrupted(fmt.Errorf("creating the signing session: %w", err))
	}
	s.ttl = cfg.SessionTTL
	if granted > 0 && granted < s.ttl {
		s.ttl = granted
	}
	fmt.Fprintln(s.log, "session successfully created on server")
	s.printInstructions()
	s.stopHook = context.AfterFunc(ctx, func() { s.abort(ReasonInterrupted, errInterrupted) })
	return s, nil
}

var errInterrupted = errors.New("remote signing session interrupted")

// interrupted reports err as an interruption when ctx was cancelled.
func (s *Session) interrupted(err error) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("%w: %v", errInterrupted, context.Cause(s.ctx))
	}
	return err
}

// SessionID returns the relay session's id.
func (s *Session) SessionID() string { return s.init.SessionID() }

// Scheme returns "publickey0" or "sharedsecret0".
func (s *Session) Scheme() string { return s.init.Scheme() }

// JoinLine returns the one-line join string (what follows "remote-sign").
func (s *Session) JoinLine() string { return s.init.Line() }

// JoinPEM returns the PEM join string.
func (s *Session) JoinPEM() string { return s.init.PEM() }

// RelayURL returns the relay the session lives on.
func (s *Session) RelayURL() string { return s.url }

// TTL returns the session lifetime the relay granted (or the requested one).
func (s *Session) TTL() time.Duration { return s.ttl }

// Wait waits for the signer to join, runs the handshake and fetches the signing
// certificate. On failure the session is closed.
func (s *Session) Wait(ctx context.Context) (*Signer, error) {
	signer, err := s.wait(ctx)
	if err != nil {
		err = s.interrupted(err)
		reason := ReasonFailed
		if errors.Is(err, errJoinTimeout) {
			reason = ReasonJoinTimeout
		}
		s.abort(reason, err)
		return nil, err
	}
	return signer, nil
}

var errJoinTimeout = errors.New("join timeout")

func (s *Session) wait(ctx context.Context) (*Signer, error) {
	timeout := s.cfg.JoinTimeout
	if timeout <= 0 {
		timeout = s.ttl
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	ev, err := s.client.Next(wctx)
	cancel()
	switch {
	case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: no signer joined the session within %v; start a new session and give the signer its join string", errJoinTimeout, timeout)
	case err != nil:
		return nil, fmt.Errorf("waiting for the signer to join: %w", err)
	case ev.Type == wire.TypeSessionClosed:
		reason := "no reason given"
		if ev.Reason != nil {
			reason = relayclient.Printable(*ev.Reason, 200)
		}
		return nil, fmt.Errorf("the relay closed the session before a signer joined: %s", reason)
	case ev.Type != wire.TypeSessionJoined:
		return nil, fmt.Errorf("relay sent %s while the session was waiting for a signer", ev.Type)
	case ev.Context == nil:
		return nil, errors.New("the relay announced the signer without its join context (is this a remote-signing relay?)")
	}
	fmt.Fprintln(s.log, "signer joined session; deriving shared encryption key")
	ch, err := s.init.Finish(*ev.Context)
	if err != nil {
		return nil, fmt.Errorf("the signer's join message is unusable: %w", err)
	}
	p := relayclient.NewPeer(s.client, s.init.SessionID(), ch)
	s.mu.Lock()
	s.peer = p
	s.mu.Unlock()
	if err := s.handshake(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintln(s.log, "requesting signing certificate info from signer")
	cert, chain, err := s.requestCertificate(ctx)
	if err != nil {
		return nil, err
	}
	if cn := cert.Subject.CommonName; cn != "" {
		fmt.Fprintf(s.log, "remote signer will sign with certificate: %s\n", relayclient.Printable(cn, 200))
	}
	sum := sha256.Sum256(cert.Raw)
	if len(s.cfg.ExpectCertificates) > 0 {
		fmt.Fprintf(s.log, "remote signer's certificate %s is an expected one\n", fingerprint(sum[:]))
	} else {
		fmt.Fprintf(s.log, "remote signer's certificate fingerprint: %s\n", fingerprint(sum[:]))
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		fmt.Fprintf(s.log, "warning: the remote signer's certificate is not valid now (valid %s to %s)\n",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return &Signer{s: s, cert: cert, chain: chain}, nil
}

// handshake runs rcodesign's order: our ping, the signer's ping, our pong
// (sent only once both the relay's ack and the signer's ping are in), the
// signer's pong.
func (s *Session) handshake(ctx context.Context) error {
	if err := s.send(ctx, &pingMsg); err != nil {
		return err
	}
	if _, err := s.expect(ctx, "ping"); err != nil {
		return err
	}
	if err := s.send(ctx, &pongMsg); err != nil {
		return err
	}
	_, err := s.expect(ctx, "pong")
	return err
}

// abort says goodbye with reason (best effort, bounded) and disconnects; the
// session is unusable afterwards and reports cause.
func (s *Session) abort(reason string, cause error) {
	s.closeOnce.Do(func() {
		s.closeErr = cause
		if s.stopHook != nil {
			s.stopHook()
		}
		gctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), goodbyeTimeout)
		defer cancel()
		_ = s.client.Goodbye(gctx, s.init.SessionID(), reason)
		s.client.Close()
	})
	s.setBroken(cause)
}

func (s *Session) setBroken(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken == nil {
		s.broken = err
	}
}

// close ends the session after success, printing rcodesign's lines.
func (s *Session) close() error {
	done := false
	var err error
	s.closeOnce.Do(func() {
		done = true
		if s.stopHook != nil {
			s.stopHook()
		}
		fmt.Fprintln(s.log, "terminating signing session on relay")
		gctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), goodbyeTimeout)
		defer cancel()
		if gerr := s.client.Goodbye(gctx, s.init.SessionID(), ReasonCompleted); gerr != nil {
			var closed *relayclient.SessionClosedError
			if !errors.As(gerr, &closed) {
				err = fmt.Errorf("saying goodbye to the relay: %w", gerr)
			}
		} else {
			fmt.Fprintln(s.log, "relay server confirmed session termination")
		}
		fmt.Fprintln(s.log, "disconnecting from relay server")
		s.client.Close()
	})
	if !done {
		return nil
	}
	s.setBroken(errors.New("the remote signing session is closed"))
	return err
}

// certificates parses the signer's certificate message.
func parseCertificates(leafDER []byte, chainDER [][]byte) (*x509.Certificate, []*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, nil, fmt.Errorf("the signer's certificate does not parse: %v", err)
	}
	chain := make([]*x509.Certificate, 0, len(chainDER))
	for i, der := range chainDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d of the signer's chain does not parse: %v", i+1, err)
		}
		chain = append(chain, c)
	}
	return cert, chain, nil
}
