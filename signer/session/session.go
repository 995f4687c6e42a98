// Package session is the signer side of a remote-signing session: the key holder's
// machine. Given a join string and a key, it joins the session on the relay,
// proves to the initiator that both derived the same keys (ping, pong), hands out
// the signing certificate, and signs what the initiator asks for, until the
// initiator says goodbye.
//
// A signer is a signing oracle for whoever holds the join string, so this package
// is careful about what it signs. Before each signature it describes the request
// (for code signing: the CodeDirectory hashes and the signing time, which the key
// holder can compare with the CI job's log). By default it refuses anything that
// is not a DER SET of CMS signed attributes, which is all code signing ever asks
// for, so the key cannot be used to sign, say, a TLS handshake or another
// protocol's challenge. It can ask a person to confirm each signature, and cap how
// many it makes. A request it refuses ends the session: the protocol has no way to
// say no and carry on, and an initiator asking for something unexpected is not
// one to keep serving.
//
// It signs with the algorithm the certificate implies (ChooseAlgorithm) and checks
// each signature against the certificate before sending it, so a faulty card or a
// key that does not match its certificate fails here, loudly, rather than in a
// binary shipped to users.
package session

import (
	"context"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/handshake"
	"github.com/farsign/farsign/protocol/peer"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/signer/keysource"
)

// DefaultJoinTimeout bounds joining: connecting to the relay, joining the
// session and verifying the channel with the initiator.
const DefaultJoinTimeout = 2 * time.Minute

// goodbyeTimeout bounds the goodbye sent when the signer stops early.
const goodbyeTimeout = 3 * time.Second

// Confirmer asks whether to sign request number n (from 1), described by d.
// It returns false to decline.
type Confirmer func(ctx context.Context, n int, d Description) (bool, error)

// Config configures a signer session.
type Config struct {
	// Key signs, and (RSA keys) decrypts publickey0 join strings. Required.
	Key keysource.Key
	// SharedSecret is the sharedsecret0 password; nil if none was given.
	SharedSecret []byte
	// RelayURL is used when the join string names no relay (always for
	// sharedsecret0); "" means rcodesign's public relay. A publickey0 join
	// string's relay takes precedence, as in rcodesign.
	RelayURL string

	// AllowArbitraryMessages turns off the policy that refuses anything but
	// CMS signed attributes.
	AllowArbitraryMessages bool
	// Confirm, if set, is asked before each signature.
	Confirm Confirmer
	// MaxSignatures, if positive, ends the session with an error when the
	// initiator asks for more signatures.
	MaxSignatures int
	// JoinTimeout bounds joining (default DefaultJoinTimeout). After that the
	// signer waits for requests for as long as the session lasts.
	JoinTimeout time.Duration

	// Log receives progress lines and request descriptions (nil: discarded).
	Log io.Writer
	// Dial configures the relay connection.
	Dial *relayclient.Options
}

// Result summarises a session that ended normally.
type Result struct {
	// Signatures is how many signatures were sent.
	Signatures int
	// Reason is why the session closed, as the initiator or relay said.
	Reason string
}

// ReasonCertificateRejected is the goodbye reason farsign's initiator gives
// when the signer's certificate is not one it pins (agent sign
// --remote-expect-certificate). The session then ends without a signature, and
// Run reports ErrCertificateRejected so the key holder learns that nothing was
// signed and why, instead of seeing a normal end.
const ReasonCertificateRejected = "the initiator does not accept the signer's certificate"

// ErrCertificateRejected is returned by Run when the initiator ended the
// session with ReasonCertificateRejected.
var ErrCertificateRejected = errors.New("the initiator refused this signer's certificate: the job pins another one (agent sign --remote-expect-certificate); nothing was signed. Check that you chose the key the release expects")

// RefusedError reports a request the signer would not sign; the session was
// ended because of it.
type RefusedError struct {
	// N is the request's number (from 1).
	N int
	// Why explains the refusal.
	Why string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused signing request #%d: %s; session ended", e.N, e.Why)
}

// Join turns a join string into a joiner with the credentials at hand, with
// errors that say what to do.
func Join(js sjs.JoinString, key keysource.Key, secret []byte) (*handshake.Joiner, error) {
	var creds handshake.Credentials
	switch js.Scheme() {
	case sjs.SchemePublicKey0:
		if key == nil {
			return nil, errors.New("this join string is encrypted to a public key (publickey0): give the matching key with --p12-file, --pem-source or --smartcard-slot")
		}
		d, err := keysource.Decrypter(key)
		if err != nil {
			return nil, err
		}
		creds.Key = d
	case sjs.SchemeSharedSecret0:
		if secret == nil {
			return nil, errors.New("this join string uses a shared secret (sharedsecret0): give it with --remote-shared-secret-env VAR (or --remote-shared-secret)")
		}
		creds.Password = secret
	}
	j, err := handshake.Join(js, creds)
	var km *handshake.KeyMismatchError
	if errors.As(err, &km) {
		return nil, fmt.Errorf("this join string was encrypted to a different key: SPKI sha256 %s, your key is %s", km.JoinStringKey, km.SignerKey)
	}
	return j, err
}

// Run joins the session the join string describes and serves it until the
// initiator ends it. It returns nil error when the session closed normally
// (goodbye, or the initiator leaving), a *RefusedError when the signer
// refused a request, and another error for anything that went wrong.
func Run(ctx context.Context, js sjs.JoinString, cfg Config) (*Result, error) {
	if cfg.Key == nil {
		return nil, errors.New("no signing key given")
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	alg, err := ChooseAlgorithm(cfg.Key.Certificate())
	if err != nil {
		return nil, err
	}
	if alg.Warning != "" {
		fmt.Fprintf(log, "warning: %s\n", alg.Warning)
	}
	oid, err := peer.AlgorithmOID(alg.Signature)
	if err != nil {
		return nil, err
	}
	certMsg, err := certificateMessage(cfg.Key)
	if err != nil {
		return nil, err
	}

	// Everything the join string needs is done before connecting, so a wrong
	// key or secret fails here without touching the relay.
	j, err := Join(js, cfg.Key, cfg.SharedSecret)
	if err != nil {
		return nil, err
	}
	url := j.ServerURL()
	if url == "" {
		url = cfg.RelayURL
	}
	if url == "" {
		url = relayclient.DefaultURL
	}

	s := &server{cfg: cfg, log: log, alg: alg, oid: oid, certMsg: certMsg}
	joinTimeout := cfg.JoinTimeout
	if joinTimeout <= 0 {
		joinTimeout = DefaultJoinTimeout
	}
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	err = s.join(jctx, url, j)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("could not join the signing session within %v (%v)", joinTimeout, err)
		}
		s.end(ctx, goodbyeReason(ctx, err, "the signer failed to join"))
		return nil, err
	}
	res, err := s.serve(ctx)
	if err != nil {
		s.end(ctx, goodbyeReason(ctx, err, "the signer stopped"))
		return res, err
	}
	fmt.Fprintln(log, "disconnecting from relay server")
	s.client.Close()
	return res, nil
}

// goodbyeReason is what the initiator is told when the signer ends a session
// because of err. It goes through the relay in clear, so it names the kind of
// problem, never data.
func goodbyeReason(ctx context.Context, err error, fallback string) string {
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		return "the signer refused a request: " + refused.Why
	case ctx.Err() != nil:
		return "the signer was interrupted"
	case errors.Is(err, relayclient.ErrTampered):
		return "the signer detected tampering in transit"
	case errors.Is(err, errKeyMismatch):
		return "the signer could not decrypt the initiator's messages: wrong shared secret or wrong key"
	}
	return fallback
}

// certificateMessage builds the signing-certificate answer: the leaf and its
// issuers. When the certificate chains to Apple, the chain is the path to
// Apple's root (as rcodesign sends), so the initiator can embed it even when
// the key file held only the leaf.
func certificateMessage(k keysource.Key) (*peer.SigningCertificate, error) {
	cert := k.Certificate()
	if cert == nil {
		return nil, errors.New("the key source has no certificate")
	}
	chain := k.Chain()
	if apple, ok := applecert.AppleChain(cert, chain); ok {
		chain = apple
	}
	info := peer.CertificateInfo{Certificate: cert.Raw, Chain: [][]byte{}}
	for _, c := range chain {
		info.Chain = append(info.Chain, c.Raw)
	}
	return &peer.SigningCertificate{Certificates: []peer.CertificateInfo{info}}, nil
}

// server is one joined session.
type server struct {
	cfg     Config
	log     io.Writer
	alg     Algorithm
	oid     asn1.ObjectIdentifier
	certMsg *peer.SigningCertificate

	client *relayclient.Client
	peer   *relayclient.Peer
	n      int // sign requests received
	signed int
}

func (s *server) join(ctx context.Context, url string, j *handshake.Joiner) error {
	fmt.Fprintf(s.log, "connecting to %s\n", url)
	c, err := relayclient.Dial(ctx, url, s.cfg.Dial)
	if err != nil {
		return err
	}
	s.client = c
	motd, err := c.Hello(ctx)
	if err != nil {
		return err
	}
	if motd != "" {
		fmt.Fprintf(s.log, "message from remote server: %s\n", motd)
	}
	fmt.Fprintln(s.log, "joining session...")
	if _, err := c.JoinSession(ctx, j.SessionID(), j.JoinContext()); err != nil {
		var re *relayclient.RelayError
		if errors.As(err, &re) {
			return fmt.Errorf("could not join the signing session: the relay does not know it, it expired, or another signer joined first (%s: %s); ask for a new join string", re.Code, re.Message)
		}
		return err
	}
	fmt.Fprintf(s.log, "successfully joined signing session %s\n", j.SessionID())
	ch, err := j.Finish()
	if err != nil {
		return err
	}
	s.peer = relayclient.NewPeer(c, j.SessionID(), ch)

	fmt.Fprintln(s.log, "verifying encrypted communications with peer")
	if err := s.peer.Send(ctx, &peer.Ping{}); err != nil {
		return err
	}
	if err := s.expect(ctx, peer.TypePing); err != nil {
		return err
	}
	if err := s.peer.Send(ctx, &peer.Pong{}); err != nil {
		return err
	}
	return s.expect(ctx, peer.TypePong)
}

func (s *server) expect(ctx context.Context, typ string) error {
	m, err := s.peer.Receive(ctx)
	if err != nil {
		return explain(err)
	}
	if m.Type() != typ {
		return fmt.Errorf("the initiator sent %s while %s was expected", m.Type(), typ)
	}
	return nil
}

var errKeyMismatch = errors.New("could not decrypt the peer's first message: wrong shared secret or wrong key")

// explain rewords peer errors for the signer's user.
func explain(err error) error {
	var closed *relayclient.SessionClosedError
	switch {
	case errors.Is(err, relayclient.ErrKeyMismatch):
		return errKeyMismatch
	case errors.As(err, &closed):
		reason := closed.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Errorf("the initiator left the session (%s)", reason)
	}
	return err
}

// serve answers the initiator until the session closes.
func (s *server) serve(ctx context.Context) (*Result, error) {
	res := &Result{}
	for {
		fmt.Fprintln(s.log, "waiting for server to send us a message...")
		m, err := s.peer.Receive(ctx)
		var closed *relayclient.SessionClosedError
		if errors.As(err, &closed) {
			reason := closed.Reason
			if reason == "" {
				reason = "(none given)"
			}
			fmt.Fprintf(s.log, "signing session closed; reason: %s\n", reason)
			res.Signatures, res.Reason = s.signed, closed.Reason
			if closed.Reason == ReasonCertificateRejected {
				return res, ErrCertificateRejected
			}
			return res, nil
		}
		if err != nil {
			res.Signatures = s.signed
			return res, explain(err)
		}
		switch m := m.(type) {
		case *peer.Ping:
			err = s.peer.Send(ctx, &peer.Pong{})
		case *peer.Pong:
		case *peer.RequestSigningCertificate:
			err = s.peer.Send(ctx, s.certMsg)
		case *peer.SignRequest:
			err = s.sign(ctx, m.Message)
		default:
			fmt.Fprintf(s.log, "unprocessed message: %s\n", m.Type())
		}
		if err != nil {
			res.Signatures = s.signed
			return res, err
		}
	}
}

// sign describes, vets, signs and answers one request.
func (s *server) sign(ctx context.Context, msg []byte) error {
	s.n++
	n := s.n
	d := Describe(msg)
	fmt.Fprintf(s.log, "signing request #%d:\n", n)
	for _, l := range d.Lines {
		fmt.Fprintf(s.log, "    %s\n", l)
	}
	if d.NotAttributes != nil && !s.cfg.AllowArbitraryMessages {
		return &RefusedError{N: n, Why: "it is not a DER SET of CMS signed attributes, which is all code signing asks for (use --allow-arbitrary-messages to sign anything)"}
	}
	if s.cfg.MaxSignatures > 0 && s.signed >= s.cfg.MaxSignatures {
		return &RefusedError{N: n, Why: fmt.Sprintf("the limit of %d signatures for this session is reached", s.cfg.MaxSignatures)}
	}
	if s.cfg.Confirm != nil {
		ok, err := s.cfg.Confirm(ctx, n, d)
		if err != nil {
			return fmt.Errorf("asking for confirmation: %w", err)
		}
		if !ok {
			return &RefusedError{N: n, Why: "declined by the user"}
		}
	}
	h := s.alg.Hash.New()
	h.Write(msg)
	sig, err := s.cfg.Key.Sign(rand.Reader, h.Sum(nil), s.alg.Hash)
	if err != nil {
		return fmt.Errorf("signing request #%d: %w", n, err)
	}
	if err := s.cfg.Key.Certificate().CheckSignature(s.alg.Signature, msg, sig); err != nil {
		return fmt.Errorf("signing request #%d: the key produced a signature that does not verify against its certificate (%v); does the key match the certificate?", n, err)
	}
	fmt.Fprintln(s.log, "sending signature to peer")
	if err := s.peer.Send(ctx, &peer.Signature{Message: msg, Signature: sig, AlgorithmOID: s.oid}); err != nil {
		return err
	}
	s.signed++
	fmt.Fprintln(s.log, "relay acknowledged signature message received")
	return nil
}

// end says goodbye with reason (so the initiator learns why) and disconnects.
func (s *server) end(ctx context.Context, reason string) {
	if s.client == nil {
		return
	}
	if s.peer != nil {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), goodbyeTimeout)
		_ = s.client.Goodbye(gctx, s.peer.SessionID(), reason)
		cancel()
	}
	fmt.Fprintln(s.log, "disconnecting from relay server")
	s.client.Close()
}
