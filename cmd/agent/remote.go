package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/relayclient"
)

// remoteFlags are the remote-signing options of `agent sign`, spelled as
// rcodesign ≥ 0.26 spells them: giving the signer's public key or a shared
// secret is what turns remote signing on. --remote-signer is accepted for the
// older spelling and for readability in scripts, but a scheme is still needed.
type remoteFlags struct {
	enabled          bool
	publicKey        string
	publicKeyPEMFile string
	sharedSecret     secretFlag
	sharedSecretEnv  string
	url              string
	sessionTTL       time.Duration
	joinTimeout      time.Duration
	responseTimeout  time.Duration
	joinStringFile   string
	expectCerts      cli.StringList
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.enabled, "remote-signer", false, "sign through a remote signer; implied by --remote-public-key(-pem-file) and\n--remote-shared-secret(-env), one of which is needed to secure the session")
	fs.StringVar(&r.publicKey, "remote-public-key", "", "publickey0: the signer's RSA public `key` in base64 (the body of the PUBLIC KEY block\nthat signer analyze-certificate prints)")
	fs.StringVar(&r.publicKeyPEMFile, "remote-public-key-pem-file", "", "publickey0: the signer's public key or certificate in this PEM `file`")
	fs.Var(&r.sharedSecret, "remote-shared-secret", "sharedsecret0: the `secret` both sides know (visible to other users in the\nprocess list; prefer --remote-shared-secret-env)")
	fs.StringVar(&r.sharedSecretEnv, "remote-shared-secret-env", "", "sharedsecret0: read the secret from this environment `variable`")
	fs.StringVar(&r.url, "remote-signing-url", "", "relay `URL` (default $"+remote.EnvRelayURL+", else "+relayclient.DefaultURL+")")
	fs.DurationVar(&r.sessionTTL, "remote-session-ttl", remote.DefaultSessionTTL, "session lifetime to ask the relay for (`duration`; the relay may grant less)")
	fs.Var((*optDuration)(&r.joinTimeout), "remote-join-timeout", "give up if no signer joins within this `duration` (default: the session lifetime)")
	fs.DurationVar(&r.responseTimeout, "remote-response-timeout", remote.DefaultResponseTimeout, "give up if the signer takes longer than this `duration` to answer one request\n(it covers a person confirming, typing a PIN and touching a YubiKey)")
	fs.Var(&r.expectCerts, "remote-expect-certificate", "accept only this signer `certificate`: a PEM or DER file, or sha256:HEX, its SHA-256\nfingerprint as signer analyze-certificate prints it (repeatable: any one is accepted)")
	fs.StringVar(&r.joinStringFile, "join-string-file", "", "also write the join string (PEM form) to this `file` as soon as the session exists,\nfor scripts that hand it to signer remote-sign --sjs-path")
}

// schemes counts the scheme flags given.
func (r *remoteFlags) schemes() int {
	n := 0
	for _, set := range []bool{r.publicKey != "", r.publicKeyPEMFile != "", r.sharedSecret.set, r.sharedSecretEnv != ""} {
		if set {
			n++
		}
	}
	return n
}

// active reports whether any remote-signing flag was given.
func (r *remoteFlags) active() bool {
	return r.enabled || r.schemes() > 0 || r.url != "" || r.joinStringFile != "" || len(r.expectCerts) > 0 ||
		r.joinTimeout != 0 || r.sessionTTL != remote.DefaultSessionTTL || r.responseTimeout != remote.DefaultResponseTimeout
}

// config validates the remote flags and builds the session configuration,
// reading the key file or the secret now so a typo fails before a session
// is created and a person is asked to join it. It returns nil when remote
// signing is off.
func (r *remoteFlags) config(log io.Writer) (*remote.Config, error) {
	if !r.active() {
		return nil, nil
	}
	switch n := r.schemes(); {
	case n == 0:
		return nil, cli.Usagef("remote signing needs the signer's public key (--remote-public-key or --remote-public-key-pem-file, publickey0) or a shared secret (--remote-shared-secret-env, sharedsecret0)")
	case n > 1:
		return nil, cli.Usagef("give only one of --remote-public-key, --remote-public-key-pem-file, --remote-shared-secret and --remote-shared-secret-env")
	}
	if r.sessionTTL <= 0 || r.joinTimeout < 0 || r.responseTimeout <= 0 {
		return nil, cli.Usagef("--remote-session-ttl, --remote-join-timeout and --remote-response-timeout must be positive")
	}
	url := remote.ResolveRelayURL(r.url)
	if _, err := relayclient.ParseURL(url); err != nil {
		return nil, cli.Usagef("--remote-signing-url: %v", err)
	}
	cfg := &remote.Config{
		RelayURL:        url,
		SessionTTL:      r.sessionTTL,
		JoinTimeout:     r.joinTimeout,
		ResponseTimeout: r.responseTimeout,
		Log:             log,
	}
	var err error
	switch {
	case r.publicKey != "":
		if cfg.SignerPublicKey, err = remote.ParsePublicKey(r.publicKey); err != nil {
			return nil, cli.Usagef("%v", err)
		}
	case r.publicKeyPEMFile != "":
		if cfg.SignerPublicKey, err = remote.ReadPublicKeyPEM(r.publicKeyPEMFile); err != nil {
			return nil, fmt.Errorf("--remote-public-key-pem-file: %w", err)
		}
	case r.sharedSecret.set:
		if r.sharedSecret.value == "" {
			return nil, cli.Usagef("--remote-shared-secret is empty")
		}
		cfg.SharedSecret = []byte(r.sharedSecret.value)
	case r.sharedSecretEnv != "":
		v, ok := os.LookupEnv(r.sharedSecretEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("--remote-shared-secret-env: environment variable %s is not set or empty", r.sharedSecretEnv)
		}
		cfg.SharedSecret = []byte(v)
	}
	for _, v := range r.expectCerts {
		e, err := remote.ParseExpectedCertificate(v)
		if err != nil {
			return nil, cli.Usagef("--remote-expect-certificate: %v", err)
		}
		cfg.ExpectCertificates = append(cfg.ExpectCertificates, e)
	}
	if cfg.SignerPublicKey != nil {
		if err := remote.CheckExpectedKey(cfg.ExpectCertificates, cfg.SignerPublicKey); err != nil {
			return nil, cli.Usagef("--remote-expect-certificate: %v", err)
		}
	}
	if r.joinStringFile != "" {
		if st, err := os.Stat(filepath.Dir(r.joinStringFile)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--join-string-file: folder %s does not exist", filepath.Dir(r.joinStringFile))
		}
	}
	return cfg, nil
}

// remoteSession is a joined remote signer wired into the engine: the identity
// to sign with, plus the bookkeeping for progress lines and the summary.
type remoteSession struct {
	signer *remote.Signer
	ready  time.Duration // from session creation until the certificate arrived
	prog   *progressSigner
}

// startRemote creates the session, publishes the join string, waits for the
// signer and returns it wrapped for progress reporting. slices names the
// Mach-O slices in the order the engine asks for their signatures.
func startRemote(ctx context.Context, cfg *remote.Config, joinFile, file string, slices []string, log io.Writer) (*remoteSession, error) {
	sess, err := remote.Start(ctx, *cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if joinFile != "" {
		if err := writeAtomicMode(joinFile, []byte(sess.JoinPEM()), 0o600); err != nil {
			sess.Close()
			return nil, fmt.Errorf("--join-string-file: %w", err)
		}
		fmt.Fprintf(log, "join string written to %s\n", joinFile)
	}
	rs, err := sess.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return &remoteSession{
		signer: rs,
		ready:  time.Since(start),
		prog:   &progressSigner{Signer: rs, file: file, slices: slices, log: log},
	}, nil
}

// identity is the engine's identity for the remote signer: its certificate
// and chain (plus any --chain-certificate), signing through the progress
// wrapper.
func (rs *remoteSession) identity(extraChain []string) (*codesign.Identity, error) {
	chain := rs.signer.Chain()
	for _, p := range extraChain {
		certs, err := keyfile.ReadCertificates(p)
		if err != nil {
			return nil, err
		}
		chain = append(chain, certs...)
	}
	return &codesign.Identity{Signer: rs.prog, Certificate: rs.signer.Certificate(), Chain: chain}, nil
}

// progressSigner is the remote signer as the engine sees it. It adds what a
// person watching the CI log wants to know: which file and slice a signature
// is for, and how long the signer took to answer. The engine asks for one
// signature per Mach-O slice, in slice order, so the n-th request is for the
// n-th slice.
type progressSigner struct {
	*remote.Signer
	file   string
	slices []string
	log    io.Writer

	mu      sync.Mutex
	n       int
	waiting time.Duration
}

var _ crypto.MessageSigner = (*progressSigner)(nil)

// SignMessage asks the remote signer, reporting the request and the answer.
func (p *progressSigner) SignMessage(rand io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	slice := fmt.Sprintf("signature %d", p.n)
	if p.n <= len(p.slices) {
		slice = p.slices[p.n-1]
	}
	// The signer shows the message digest before it signs; printing it here
	// too lets the key holder check the request is this job's.
	digest := ""
	if attrs, err := cms.ParseSignedAttributes(msg); err == nil {
		digest = fmt.Sprintf(" (message digest %x)", attrs.MessageDigest)
	}
	fmt.Fprintf(p.log, "  %s (%s): asking the remote signer for signature %d of %d%s\n", p.file, slice, p.n, len(p.slices), digest)
	start := time.Now()
	sig, err := p.Signer.SignMessage(rand, msg, opts)
	d := time.Since(start)
	p.waiting += d
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(p.log, "  %s (%s): the remote signer answered in %.3fs; signature verified\n", p.file, slice, d.Seconds())
	return sig, nil
}

// stats returns the number of signatures and the time spent waiting for them.
func (p *progressSigner) stats() (int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.waiting
}

// sliceNames parses the input's headers (not its body) and returns the names
// of the slices that will be signed, in order. It runs before a session is
// created, so a file that cannot be signed fails before a person is asked to
// join: the engine checks the same things again when it signs.
func sliceNames(path string) ([]string, error) {
	bin, f, err := openMachO(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	for i, sl := range bin.Slices {
		if sl.File == nil {
			continue
		}
		if err := sl.File.CheckSignable(sl.Reader); err != nil {
			if bin.Fat {
				return nil, fmt.Errorf("%s: slice %d (%s): %w", path, i, sl.File.CPUName(), err)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		names = append(names, sl.File.CPUName())
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: the universal file contains no Mach-O slice to sign", path)
	}
	return names, nil
}

// openMachO opens and parses the Mach-O (thin or universal) at path. The
// Binary reads from the returned file, which the caller closes.
func openMachO(path string) (*macho.Binary, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	var bin *macho.Binary
	if err == nil {
		if bin, err = macho.Open(f, st.Size()); err != nil {
			err = fmt.Errorf("%s: %w", path, err)
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return bin, f, nil
}

// writeAtomicMode writes data to path with the given permissions through a
// temporary file in the same folder and a rename, so a script waiting for
// the file never reads half of it.
func writeAtomicMode(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// optDuration is a duration flag whose zero value means "not given", so
// --help shows no misleading default of 0s.
type optDuration time.Duration

func (d *optDuration) String() string {
	if d == nil || *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}

func (d *optDuration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return errors.New("must be positive")
	}
	*d = optDuration(v)
	return nil
}
