package remote

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/peer"
)

var (
	pingMsg = peer.Ping{}
	pongMsg = peer.Pong{}
)

// ErrNeedsMessage is returned by Signer.Sign: a remote signer signs the whole
// message, never a bare digest, so that it can show and check what it signs.
var ErrNeedsMessage = errors.New("remote signer: Sign with a digest is not supported; sign through crypto.SignMessage so the signer sees the full message")

// Signer is the remote signer, once it has joined and sent its certificate.
// It implements crypto.Signer and crypto.MessageSigner. Signatures are made
// one at a time (the protocol matches answers to requests by order);
// concurrent calls wait their turn.
type Signer struct {
	s     *Session
	cert  *x509.Certificate
	chain []*x509.Certificate

	opMu  sync.Mutex // one request in flight
	count int
}

var (
	_ crypto.Signer        = (*Signer)(nil)
	_ crypto.MessageSigner = (*Signer)(nil)
)

// Public returns the signing certificate's public key.
func (r *Signer) Public() crypto.PublicKey { return r.cert.PublicKey }

// Certificate returns the signing (leaf) certificate the signer sent.
func (r *Signer) Certificate() *x509.Certificate { return r.cert }

// Chain returns the issuers the signer sent, leaf's issuer first. When it sent
// none and the certificate chains to Apple, it is Apple's intermediates and
// root, which is what a code signature embeds.
func (r *Signer) Chain() []*x509.Certificate { return append([]*x509.Certificate(nil), r.chain...) }

// Session returns the session the signer joined.
func (r *Signer) Session() *Session { return r.s }

// Signatures returns how many signatures the signer has made in this session.
func (r *Signer) Signatures() int {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	return r.count
}

// Sign always fails with ErrNeedsMessage (see crypto.SignMessage).
func (r *Signer) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, ErrNeedsMessage
}

// SignMessage asks the remote signer to sign msg, hashed with opts.HashFunc(),
// and returns the signature once it verifies against the certificate.
func (r *Signer) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	return r.SignMessageContext(r.s.ctx, msg, opts)
}

// SignMessageContext is SignMessage bounded by ctx as well as by the session's
// lifetime and Config.ResponseTimeout.
func (r *Signer) SignMessageContext(ctx context.Context, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("remote signer: no hash given")
	}
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, errors.New("remote signer: RSA-PSS cannot be requested over the remote-signing protocol (signers use PKCS #1 v1.5)")
	}
	want, err := expectedAlgorithm(r.cert.PublicKey, opts.HashFunc())
	if err != nil {
		return nil, fmt.Errorf("remote signer: %w", err)
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	s := r.s
	fmt.Fprintln(s.log, "sending signing request to remote signer")
	if err := s.send(ctx, &peer.SignRequest{Message: msg}); err != nil {
		return nil, err
	}
	m, err := s.expect(ctx, peer.TypeSignature)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(s.log, "received signature from remote signer")
	sig := m.(*peer.Signature)
	if err := checkSignature(r.cert, want, msg, sig); err != nil {
		err = fmt.Errorf("remote signer: %w; refusing to use it", err)
		s.abort(ReasonFailed, err)
		return nil, err
	}
	r.count++
	return sig.Signature, nil
}

// expectedAlgorithm is the signature algorithm a signature by pub over a
// message hashed with h must use.
func expectedAlgorithm(pub crypto.PublicKey, h crypto.Hash) (x509.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch h {
		case crypto.SHA256:
			return x509.SHA256WithRSA, nil
		case crypto.SHA384:
			return x509.SHA384WithRSA, nil
		case crypto.SHA512:
			return x509.SHA512WithRSA, nil
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return 0, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		switch h {
		case crypto.SHA256:
			return x509.ECDSAWithSHA256, nil
		case crypto.SHA384:
			return x509.ECDSAWithSHA384, nil
		case crypto.SHA512:
			return x509.ECDSAWithSHA512, nil
		}
	default:
		return 0, fmt.Errorf("unsupported certificate key type %T", pub)
	}
	return 0, fmt.Errorf("unsupported hash %v for a %T key", h, pub)
}

// checkSignature verifies what the signer returned: the echoed message, the
// reported algorithm against the certificate's key and the requested hash, and
// the signature itself.
func checkSignature(cert *x509.Certificate, want x509.SignatureAlgorithm, msg []byte, sig *peer.Signature) error {
	// rcodesign's signer echoes the message; ours too. A different echo means
	// the signer signed something else.
	if len(sig.Message) != 0 && !bytes.Equal(sig.Message, msg) {
		return errors.New("the signature answers a different message than the one sent")
	}
	got := peer.SignatureAlgorithm(sig.AlgorithmOID)
	if got == x509.UnknownSignatureAlgorithm {
		return fmt.Errorf("the signer reports an unknown signature algorithm %v", sig.AlgorithmOID)
	}
	if got != want {
		return fmt.Errorf("the signer signed with %v, but this request needs %v", got, want)
	}
	if err := cert.CheckSignature(got, msg, sig.Signature); err != nil {
		return fmt.Errorf("the signature does not verify against the signer's certificate (%v)", err)
	}
	return nil
}

// send seals and sends one message to the signer.
func (s *Session) send(ctx context.Context, m peer.Message) error {
	p, err := s.usable()
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.ResponseTimeout)
	defer cancel()
	if err := p.Send(sctx, m); err != nil {
		return s.fatal(ctx, err)
	}
	return nil
}

// expect waits for the signer's next message, which must be of type typ.
func (s *Session) expect(ctx context.Context, typ string) (peer.Message, error) {
	p, err := s.usable()
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ResponseTimeout)
	defer cancel()
	m, err := p.Receive(rctx)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("the remote signer did not answer within %v (waiting for %s)", s.cfg.ResponseTimeout, typ)
		}
		return nil, s.fatal(ctx, err)
	}
	if m.Type() != typ {
		return nil, s.fatal(ctx, fmt.Errorf("the remote signer sent %s while %s was expected", m.Type(), typ))
	}
	return m, nil
}

func (s *Session) usable() (*relayclient.Peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return nil, s.broken
	}
	if s.peer == nil {
		return nil, errors.New("the signer has not joined yet")
	}
	return s.peer, nil
}

// fatal explains err, ends the session (nothing can follow a lost or rejected
// message: nonces are counters) and returns the explanation.
func (s *Session) fatal(ctx context.Context, err error) error {
	var closed *relayclient.SessionClosedError
	switch {
	case s.ctx.Err() != nil || ctx.Err() != nil:
		err = fmt.Errorf("%w: %v", errInterrupted, err)
	case errors.As(err, &closed):
		reason := closed.Reason
		if reason == "" {
			reason = "no reason given"
		}
		err = fmt.Errorf("the remote signer left the session (%s)", reason)
	case errors.Is(err, relayclient.ErrKeyMismatch):
		err = fmt.Errorf("could not decrypt the signer's first message: wrong shared secret or wrong key")
	default:
		err = fmt.Errorf("remote signing session failed: %w", err)
	}
	s.abort(ReasonFailed, err)
	return err
}

// requestCertificate asks for the signing certificate and checks it.
func (s *Session) requestCertificate(ctx context.Context) (*x509.Certificate, []*x509.Certificate, error) {
	if err := s.send(ctx, &peer.RequestSigningCertificate{}); err != nil {
		return nil, nil, err
	}
	m, err := s.expect(ctx, peer.TypeSigningCertificate)
	if err != nil {
		return nil, nil, err
	}
	info := m.(*peer.SigningCertificate).Certificates[0]
	cert, chain, err := parseCertificates(info.Certificate, info.Chain)
	if err != nil {
		return nil, nil, s.fatal(ctx, err)
	}
	// The pin comes first: a certificate nobody vetted is refused as such,
	// whatever else might be wrong with it.
	if err := checkExpected(cert, s.cfg.ExpectCertificates); err != nil {
		s.abort(ReasonCertificateRejected, err)
		return nil, nil, err
	}
	if _, err := expectedAlgorithm(cert.PublicKey, crypto.SHA256); err != nil {
		return nil, nil, s.fatal(ctx, fmt.Errorf("the signer's certificate cannot be used for code signing: %w", err))
	}
	if s.spki != nil {
		if err := matchesSPKI(cert, s.spki); err != nil {
			return nil, nil, s.fatal(ctx, err)
		}
	}
	if len(chain) == 0 {
		if apple, ok := applecert.AppleChain(cert, nil); ok {
			chain = apple
		}
	}
	return cert, chain, nil
}

// matchesSPKI checks that a publickey0 signer's certificate is for the key the
// join string was encrypted to. Only that key's holder could have joined, so
// a different certificate means the signer is using a key it was not vetted
// for.
func matchesSPKI(cert *x509.Certificate, spki []byte) error {
	want, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return err
	}
	if sameKey(want, cert.PublicKey) {
		return nil
	}
	return fmt.Errorf("the signer's certificate is for a different key (SPKI sha256 %s) than the one the join string was encrypted to (SPKI sha256 %s)",
		spkiFingerprint(cert.PublicKey, nil), spkiFingerprint(want, spki))
}

// Close says goodbye ("signing operations completed"), so the signer exits
// successfully, and disconnects. Call it once signing succeeded; after a
// failure use Abort. Close and Abort are safe to call more than once.
func (r *Signer) Close() error { return r.s.close() }

// Abort ends the session telling the signer reason (sent in clear through the
// relay: keep secrets out of it).
func (r *Signer) Abort(reason string) {
	r.s.abort(reason, errors.New("the remote signing session was aborted: "+reason))
}

// Close abandons a session whose signer has not joined (Wait not called or
// failed).
func (s *Session) Close() error {
	s.abort(ReasonFailed, errors.New("the remote signing session is closed"))
	return nil
}
