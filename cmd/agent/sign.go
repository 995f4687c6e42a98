package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/entitlements"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/remote"
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
)

const signHelp = `Sign a Mach-O binary, thin or universal (every architecture is signed).

Without a key the signature is ad hoc: page hashes only, enough to run on
Apple silicon but not to pass Gatekeeper. With --p12-file or --pem-source the
CodeDirectory is signed with CMS, the way Apple's codesign does, and by default
time-stamped by Apple's server (--timestamp-url none turns that off).

The certificate decides the team ID and the designated requirement: Developer
ID and Apple Development/Distribution certificates get Apple's own rules, any
other certificate is pinned by its hash. farsign knows the Developer ID CA and
Apple Root CA; for certificates from Apple's other CAs (WWDR, Developer ID G2),
include the CA certificate in the key file or give it with --chain-certificate.

With --remote-public-key(-pem-file) or --remote-shared-secret(-env) the key
stays with a person (or a YubiKey) elsewhere, who runs "signer remote-sign".
The agent opens a session on a relay, prints the join string for them (and
adds it to the GitHub Actions step summary), waits for them to join and
learns their certificate. It then does all the signing work here and asks
the signer for one signature per architecture, verifying each before use;
the time-stamp is requested here, over the returned signature. One session
serves the whole command; it ends with a goodbye on success, failure or
Ctrl-C. Only end-to-end encrypted messages pass through the relay.

--remote-expect-certificate pins the signer's certificate. Without it, in
sharedsecret0 anyone who knows the secret can join and have their own
certificate embedded. With it, a signer presenting any other certificate is
told goodbye before anything is signed, the command fails naming both
fingerprints, and nothing is written. Give the certificate file (PEM or DER)
or its fingerprint, sha256:HEX, as "signer analyze-certificate" prints it
(colons and upper case, as openssl prints it, are fine too); repeat the flag
to accept any of several, e.g. across a renewal. In publickey0 it is an extra
check on top of the key's, and a pinned certificate file must be for that
key. The agent prints the fingerprint of every certificate it receives, so a
first run tells you what to pin.

Re-signing keeps what the existing signature says unless told otherwise: the
identifier, code signature flags, hardened runtime version and entitlements.
The output replaces OUTPUT (or INPUT when OUTPUT is omitted) atomically: it is
written to a temporary file next to it and renamed only when complete, so a
failure never leaves a half-written binary.

Examples:

  # Ad-hoc sign in place.
  agent sign ./mytool

  # Developer ID with hardened runtime and entitlements, ready for notarization.
  agent sign --p12-file developer-id.p12 --p12-password-file pw.txt \
      --code-signature-flags runtime --entitlements-xml-path app.entitlements \
      ./mytool ./mytool.signed

  # Key and certificate in PEM files; a reproducible signature without a TSA.
  agent sign --pem-source key.pem --pem-source cert.pem \
      --timestamp-url none --signing-time 2024-01-01T00:00:00Z mytool

  # Remote signing, publickey0: the join string is encrypted to the signer's
  # RSA key (a certificate or PUBLIC KEY PEM), so only that key can join.
  agent sign --remote-public-key-pem-file signer.crt ./mytool ./mytool.signed

  # Remote signing, sharedsecret0, on your own relay; the join string is also
  # written to a file for a script to pass on.
  export SIGNING_SECRET='correct horse battery staple'
  agent sign --remote-shared-secret-env SIGNING_SECRET \
      --remote-signing-url wss://relay.example.com/ --join-string-file join.txt ./mytool

  # sharedsecret0 accepting only the key holder's certificate (a file, or
  # sha256: and the fingerprint signer analyze-certificate prints).
  agent sign --remote-shared-secret-env SIGNING_SECRET \
      --remote-expect-certificate signer.crt ./mytool

  # State the designated requirement instead of deriving it.
  agent sign --pem-source id.pem \
      --designated-requirement 'identifier "com.example.tool" and anchor apple generic' mytool`

// signFlags are the sign command's options. identity() is where a signing
// identity comes from; the remote-signing flags plug in there as another source.
type signFlags struct {
	p12File         string
	p12Password     secretFlag
	p12PasswordFile string
	p12PasswordEnv  string
	pemSources      cli.StringList
	chainFiles      cli.StringList

	digests           cli.StringList
	identifier        string
	flags             cli.StringList
	entitlementsPath  string
	runtimeVersion    string
	timestampURL      string
	signingTime       string
	requirementsPath  string
	designatedReq     string
	infoPlistPath     string
	codeResourcesPath string
	quiet             bool

	remote remoteFlags
}

// secretFlag is a string flag that remembers whether it was given (an empty
// password is a valid password).
type secretFlag struct {
	value string
	set   bool
}

func (s *secretFlag) String() string     { return "" }
func (s *secretFlag) Set(v string) error { s.value, s.set = v, true; return nil }

func signCommand(std *streams) *cli.Command {
	return &cli.Command{
		Name:      "sign",
		Summary:   "sign a Mach-O binary (ad hoc, with a p12/PEM key, or through a remote signer)",
		UsageLine: "[flags] INPUT [OUTPUT]",
		Help:      signHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			f := &signFlags{}
			fs.StringVar(&f.p12File, "p12-file", "", "sign with the key and certificate in this PKCS #12 (.p12/.pfx) `file`")
			fs.Var(&f.p12Password, "p12-password", "`password` of --p12-file (visible to other users in the process list;\nprefer --p12-password-file or --p12-password-env)")
			fs.StringVar(&f.p12PasswordFile, "p12-password-file", "", "read the --p12-file password from this `file` (first line)")
			fs.StringVar(&f.p12PasswordEnv, "p12-password-env", "", "read the --p12-file password from this environment `variable`")
			fs.Var(&f.pemSources, "pem-source", "sign with the key and certificates in this PEM `file` (repeatable;\nwith --p12-file, extra chain certificates)")
			fs.Var(&f.pemSources, "pem-file", "alias of --pem-source (`file`)")
			fs.Var(&f.chainFiles, "chain-certificate", "add the CA certificates in this PEM or DER `file` to the signature's chain (repeatable;\ne.g. Apple's WWDR or Developer ID G2 CA when the key file holds only the leaf)")
			fs.Var(&f.chainFiles, "certificate-der-file", "alias of --chain-certificate (`file`)")
			fs.Var(&f.digests, "digest", "CodeDirectory `digest`: sha1, sha256 or sha384 (repeatable; the first is primary;\ndefault sha256, plus sha1 first when the deployment target needs it)")
			fs.StringVar(&f.identifier, "binary-identifier", "", "signing `identifier` (default: the existing one, else the file name)")
			fs.Var(&f.flags, "code-signature-flags", "code signature `flag`: host, hard, kill, expires, library, runtime, linker-signed\n(repeatable or comma-separated; replaces the existing flags; runtime = hardened runtime)")
			fs.StringVar(&f.entitlementsPath, "entitlements-xml-path", "", "entitlements plist `file` (replaces the existing entitlements)")
			fs.StringVar(&f.entitlementsPath, "entitlements-xml-file", "", "alias of --entitlements-xml-path (`file`)")
			fs.StringVar(&f.runtimeVersion, "runtime-version", "", "hardened runtime `version` X.Y.Z (default: the existing one, else the SDK version)")
			fs.StringVar(&f.timestampURL, "timestamp-url", cms.DefaultTimestampURL, "RFC 3161 time-stamp server `URL` for key signatures, or \"none\"")
			fs.StringVar(&f.signingTime, "signing-time", "", "CMS signing time as RFC 3339 `time`, e.g. 2024-01-01T00:00:00Z (default: now)")
			fs.StringVar(&f.requirementsPath, "code-requirements-path", "", "requirements `file`: a compiled requirement or requirement set (csreq -b),\nor text such as 'designated => identifier \"x\" and anchor apple generic'")
			fs.StringVar(&f.requirementsPath, "code-requirements-file", "", "alias of --code-requirements-path (`file`)")
			fs.StringVar(&f.designatedReq, "designated-requirement", "", "designated requirement `expression` in Apple's requirement language")
			fs.StringVar(&f.infoPlistPath, "info-plist-path", "", "Info.plist `file` whose hash to bind in special slot 1")
			fs.StringVar(&f.infoPlistPath, "info-plist-file", "", "alias of --info-plist-path (`file`)")
			fs.StringVar(&f.codeResourcesPath, "code-resources-path", "", "_CodeSignature/CodeResources `file` whose hash to bind in special slot 3")
			fs.StringVar(&f.codeResourcesPath, "code-resources-file", "", "alias of --code-resources-path (`file`)")
			fs.BoolVar(&f.quiet, "quiet", false, "print only errors (and, when signing remotely, what the signer needs to join)")
			f.remote.register(fs)
			return func(ctx context.Context, args []string) error {
				if len(args) < 1 || len(args) > 2 {
					return cli.Usagef("want INPUT and an optional OUTPUT, got %d arguments", len(args))
				}
				return f.run(ctx, std, args)
			}
		},
	}
}

func (f *signFlags) run(ctx context.Context, std *streams, args []string) error {
	in, out := args[0], args[0]
	if len(args) == 2 {
		out = args[1]
	}
	rcfg, err := f.remote.config(std.err)
	if err != nil {
		return err
	}
	if rcfg != nil && (f.p12File != "" || len(f.pemSources) > 0) {
		return cli.Usagef("sign with a local key (--p12-file, --pem-source) or a remote signer (--remote-...), not both")
	}
	opts, err := f.options(ctx, std, rcfg != nil)
	if err != nil {
		return err
	}
	logf := func(string, ...any) {}
	if !f.quiet {
		logf = func(format string, a ...any) { fmt.Fprintf(std.err, format+"\n", a...) }
		opts.Log = func(format string, a ...any) { logf("  "+format, a...) }
	}

	var rs *remoteSession
	if rcfg != nil {
		// Check the input before a person is asked to join a session for it.
		slices, err := sliceNames(in)
		if err != nil {
			return err
		}
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			return fmt.Errorf("output %s is a directory", out)
		}
		// The session's own lines (the join instructions above all) are
		// printed even with --quiet: without them nobody can join.
		progress := io.Writer(std.err)
		if f.quiet {
			progress = io.Discard
		}
		rs, err = startRemote(ctx, rcfg, f.remote.joinStringFile, filepath.Base(in), slices, progress)
		if err != nil {
			return err
		}
		if opts.Identity, err = rs.identity(f.chainFiles); err != nil {
			rs.signer.Abort(remote.ReasonFailed)
			return err
		}
		logf("remote signer ready after %.3fs; %d signature(s) to make", rs.ready.Seconds(), len(slices))
	}

	mode := "ad hoc"
	if opts.Identity != nil {
		mode = fmt.Sprintf("with %q", opts.Identity.Certificate.Subject.CommonName)
		if rs != nil {
			mode += " (remote signer)"
		}
	}
	logf("signing %s %s", in, mode)
	start := time.Now()
	res, err := codesign.SignFile(ctx, in, out, opts)
	if err != nil {
		if rs != nil {
			// After an interrupt the session already said goodbye with
			// that reason; this is then a no-op.
			rs.signer.Abort(remote.ReasonFailed)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted; %s was not written (%v)", out, err)
		}
		return err
	}
	if rs != nil {
		if err := rs.signer.Close(); err != nil {
			// The output is complete and valid; only the goodbye failed.
			fmt.Fprintf(std.err, "warning: %v\n", err)
		}
	}
	for _, s := range res.Slices {
		if s.Skipped {
			logf("  %s: not a Mach-O, copied unsigned", s.Arch)
			continue
		}
		team := ""
		if s.TeamID != "" {
			team = ", team " + s.TeamID
		}
		logf("  %s: identifier %s%s, flags [%s], cdhash %x, signature %d of %d bytes",
			s.Arch, s.Identifier, team, strings.Join(blob.FlagNames(s.Flags), ","), s.CDHash(), s.SignatureSize, s.Reserved)
	}
	took := time.Since(start)
	if rs != nil {
		n, waited := rs.prog.stats()
		logf("wrote %s (%d bytes) in %.3fs, %.3fs of it waiting for the remote signer's %d signature(s)",
			out, res.Size, took.Seconds(), waited.Seconds(), n)
		return nil
	}
	logf("wrote %s (%d bytes) in %.2fs", out, res.Size, took.Seconds())
	return nil
}

// options turns the flags into engine options, reading every file up front so
// that a typo fails before any work is done.
//
// remoteKey says the key is a remote signer's (the identity then comes later,
// once the signer has joined).
func (f *signFlags) options(ctx context.Context, std *streams, remoteKey bool) (codesign.Options, error) {
	var opts codesign.Options
	var id *codesign.Identity
	var err error
	if !remoteKey {
		if id, err = f.identity(ctx); err != nil {
			return opts, err
		}
		opts.Identity = id
	} else {
		if f.p12Password.set || f.p12PasswordFile != "" || f.p12PasswordEnv != "" {
			return opts, cli.Usagef("a p12 password was given without --p12-file")
		}
		// Read the chain now so that a typo fails before a session exists.
		for _, p := range f.chainFiles {
			if _, err := keyfile.ReadCertificates(p); err != nil {
				return opts, err
			}
		}
	}

	for _, d := range f.digests {
		h, err := blob.ParseHashType(d)
		if err != nil {
			return opts, cli.Usagef("--digest: %v", err)
		}
		opts.Digests = append(opts.Digests, h)
	}
	opts.Identifier = f.identifier
	if len(f.flags) > 0 {
		var v uint32
		for _, list := range f.flags {
			for _, name := range strings.Split(list, ",") {
				bit, err := blob.ParseFlag(strings.TrimSpace(name))
				if err != nil {
					return opts, cli.Usagef("--code-signature-flags: %v", err)
				}
				v |= bit
			}
		}
		opts.Flags = &v
	}
	if f.runtimeVersion != "" {
		v, err := macho.ParseVersion(f.runtimeVersion)
		if err != nil {
			return opts, cli.Usagef("--runtime-version: %v", err)
		}
		opts.RuntimeVersion = v
	}
	if f.entitlementsPath != "" {
		b, err := readBounded(f.entitlementsPath, entitlements.MaxXMLSize)
		if err != nil {
			return opts, err
		}
		v, err := entitlements.ParseXML(b)
		if err != nil {
			return opts, fmt.Errorf("%s: %w", f.entitlementsPath, err)
		}
		if _, err := v.DER(); err != nil {
			return opts, fmt.Errorf("%s: %w", f.entitlementsPath, err)
		}
		opts.Entitlements = v
	}
	if f.infoPlistPath != "" {
		if opts.InfoPlist, err = readBounded(f.infoPlistPath, 1<<20); err != nil {
			return opts, err
		}
	}
	if f.codeResourcesPath != "" {
		if opts.CodeResources, err = readBounded(f.codeResourcesPath, 64<<20); err != nil {
			return opts, err
		}
	}
	switch {
	case f.requirementsPath != "" && f.designatedReq != "":
		return opts, cli.Usagef("give --code-requirements-path or --designated-requirement, not both")
	case f.requirementsPath != "":
		b, err := readBounded(f.requirementsPath, 1<<20)
		if err != nil {
			return opts, err
		}
		if opts.Requirements, err = parseRequirementsFile(b); err != nil {
			return opts, fmt.Errorf("%s: %w", f.requirementsPath, err)
		}
	case f.designatedReq != "":
		e, err := requirement.Parse(f.designatedReq)
		if err != nil {
			return opts, cli.Usagef("--designated-requirement: %v", err)
		}
		opts.Requirements = requirement.DesignatedSet(e)
	}
	if f.signingTime != "" {
		t, err := time.Parse(time.RFC3339, f.signingTime)
		if err != nil {
			return opts, cli.Usagef("--signing-time: want RFC 3339 such as 2024-01-01T00:00:00Z: %v", err)
		}
		opts.SigningTime = t
	}
	if (id != nil || remoteKey) && f.timestampURL != "none" && f.timestampURL != "" {
		u, err := url.Parse(f.timestampURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return opts, cli.Usagef("--timestamp-url: %q is not an http(s) URL (or \"none\")", f.timestampURL)
		}
		opts.Timestamper = &cms.HTTPTimestamper{URL: f.timestampURL, Client: &http.Client{Timeout: time.Minute}}
	}
	return opts, nil
}

// parseRequirementsFile accepts a compiled Requirement blob (csreq -b), a
// RequirementSet blob, or requirements text.
func parseRequirementsFile(b []byte) (*requirement.Set, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xfa, 0xde, 0x0c, 0x00}):
		r, err := requirement.ParseRequirement(b)
		if err != nil {
			return nil, err
		}
		return &requirement.Set{Entries: []requirement.SetEntry{{Type: requirement.TypeDesignated, Requirement: r}}}, nil
	case bytes.HasPrefix(b, []byte{0xfa, 0xde, 0x0c, 0x01}):
		return requirement.ParseSet(b)
	}
	return requirement.ParseSetText(string(b))
}

// identity loads the signing identity, or returns nil for ad-hoc signing.
func (f *signFlags) identity(ctx context.Context) (*codesign.Identity, error) {
	if f.p12File == "" && len(f.pemSources) == 0 {
		if len(f.chainFiles) > 0 {
			return nil, cli.Usagef("--chain-certificate needs a signing key (--p12-file, --pem-source or a remote signer)")
		}
		if f.p12Password.set || f.p12PasswordFile != "" || f.p12PasswordEnv != "" {
			return nil, cli.Usagef("a p12 password was given without --p12-file")
		}
		return nil, nil
	}
	var id keyfile.Identity
	if f.p12File != "" {
		var err error
		id, err = keyfile.OpenP12(ctx, f.p12File, keyfile.P12Password{Value: f.p12Password.value, File: f.p12PasswordFile, Env: f.p12PasswordEnv})
		if err != nil {
			return nil, err
		}
		for _, p := range f.pemSources {
			certs, err := keyfile.ReadCertificates(p)
			if err != nil {
				return nil, err
			}
			id.Chain = append(id.Chain, certs...)
		}
	} else {
		var err error
		if id, err = keyfile.LoadPEM(f.pemSources...); err != nil {
			return nil, err
		}
	}
	for _, p := range f.chainFiles {
		certs, err := keyfile.ReadCertificates(p)
		if err != nil {
			return nil, err
		}
		id.Chain = append(id.Chain, certs...)
	}
	return &codesign.Identity{Signer: id.Signer, Certificate: id.Certificate, Chain: id.Chain}, nil
}

// readBounded reads a small input file, refusing anything larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes (limit %d)", path, st.Size(), max)
	}
	b := make([]byte, st.Size())
	if _, err := fh.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}
