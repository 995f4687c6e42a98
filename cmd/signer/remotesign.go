package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/sjs"
	"github.com/farsign/farsign/signer/session"
)

const remoteSignHelp = `Joins a remote signing session that ` + "`agent sign`" + ` (or ` + "`rcodesign sign`" + `) started in
CI, and signs the code-signing requests it sends with your key. The key never
leaves this machine: only signatures go back through the relay, end-to-end
encrypted.

The initiator prints a join string. Give it in one of these ways:
  - as the argument (the long single line after "remote-sign"),
  - with --sjs-path FILE (the PEM block, saved to a file),
  - with --editor (paste the PEM block into $VISUAL or $EDITOR),
  - on standard input (pipe it in, or pass "-" as the argument).

Give exactly one key: --p12-file, --pem-source (repeatable) or --smartcard-slot.
A join string made with your public key (publickey0) needs an RSA key; one made
with a shared secret (sharedsecret0) needs --remote-shared-secret-env as well,
and, since it names no relay, --remote-signing-url when the initiator uses
another relay than rcodesign's default (the initiator's instructions say so).

Each request is described before it is signed (for code signing: the message
digest, the signing time and the CodeDirectory hashes, which ` + "`codesign -dvvv`" + ` prints
as CDHash). Anything that is not CMS signed attributes is refused unless you pass
--allow-arbitrary-messages. --confirm asks before every signature. The command
exits 0 when the initiator ends the session.

Examples:
  # publickey0: the initiator encrypted the join string to your public key
  signer remote-sign --p12-file developer-id.p12 --p12-password-file pw.txt gmpwdWJsaWNr...

  # sharedsecret0 with a YubiKey, join string pasted into an editor
  export SIGNING_SECRET='correct horse battery staple'
  signer remote-sign --smartcard-slot 9c --remote-shared-secret-env SIGNING_SECRET --editor

  # key and certificate in PEM files, confirm each signature, join string in a file
  signer remote-sign --pem-source key.pem --pem-source cert.pem --confirm --sjs-path join.txt`

type remoteSignFlags struct {
	keys          keyFlags
	sjsPath       string
	editor        bool
	secret        string
	secretEnv     string
	relayURL      string
	confirm       bool
	allowAny      bool
	maxSignatures int
	joinTimeout   time.Duration
}

func remoteSignCommand() *cli.Command {
	return &cli.Command{
		Name:      "remote-sign",
		Summary:   "join a remote signing session and sign what it asks for",
		UsageLine: "[flags] [SESSION_JOIN_STRING | -]",
		Help:      remoteSignHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var f remoteSignFlags
			f.keys.register(fs, true)
			fs.StringVar(&f.sjsPath, "sjs-path", "", "read the join string from this `file`")
			fs.StringVar(&f.sjsPath, "sjs-file", "", "read the join string from this `file` (the same as --sjs-path)")
			fs.BoolVar(&f.editor, "editor", false, "paste the join string into $VISUAL or $EDITOR")
			fs.StringVar(&f.secret, "remote-shared-secret", "", "the sharedsecret0 `secret`; visible to other users in the process list, prefer --remote-shared-secret-env")
			fs.StringVar(&f.secretEnv, "remote-shared-secret-env", "", "read the sharedsecret0 secret from this environment `variable`")
			fs.StringVar(&f.relayURL, "remote-signing-url", "", "relay `URL` when the join string names none, as sharedsecret0 ones never do (default $"+relayclient.EnvURL+" or "+relayclient.DefaultURL+")")
			fs.BoolVar(&f.confirm, "confirm", false, "ask on the terminal before each signature")
			fs.BoolVar(&f.allowAny, "allow-arbitrary-messages", false, "sign requests that are not CMS signed attributes (turns off the code-signing-only policy)")
			fs.IntVar(&f.maxSignatures, "max-signatures", 0, "end the session if more than `n` signatures are requested (0: no limit)")
			fs.DurationVar(&f.joinTimeout, "join-timeout", session.DefaultJoinTimeout, "give up if joining the session takes longer than this `duration`")
			return func(ctx context.Context, args []string) error {
				return remoteSign(ctx, &f, args)
			}
		},
	}
}

func remoteSign(ctx context.Context, f *remoteSignFlags, args []string) error {
	if len(args) > 1 {
		return cli.Usagef("expected at most one join string argument, got %d", len(args))
	}
	if err := f.keys.check(); err != nil {
		return err
	}
	if f.secret != "" && f.secretEnv != "" {
		return cli.Usagef("give --remote-shared-secret or --remote-shared-secret-env, not both")
	}
	if f.maxSignatures < 0 {
		return cli.Usagef("--max-signatures must not be negative")
	}
	if f.joinTimeout <= 0 {
		return cli.Usagef("--join-timeout must be positive")
	}
	relayURL := relayclient.ResolveURL(f.relayURL)
	if _, err := relayclient.ParseURL(relayURL); err != nil {
		return cli.Usagef("--remote-signing-url: %v", err)
	}
	var secret []byte
	switch {
	case f.secret != "":
		secret = []byte(f.secret)
	case f.secretEnv != "":
		v, ok := os.LookupEnv(f.secretEnv)
		if !ok || v == "" {
			return fmt.Errorf("environment variable %s (named by --remote-shared-secret-env) is not set", f.secretEnv)
		}
		secret = []byte(v)
	}

	text, err := readJoinString(ctx, f, args)
	if err != nil {
		return err
	}
	js, err := sjs.Parse(text)
	if err != nil {
		return fmt.Errorf("cannot read the join string: %w", err)
	}

	var confirm session.Confirmer
	if f.confirm {
		c, closeTTY, err := terminalConfirmer()
		if err != nil {
			return err
		}
		defer closeTTY()
		confirm = c
	}

	key, err := f.keys.load(ctx)
	if err != nil {
		return err
	}
	defer key.Close()

	res, err := session.Run(ctx, js, session.Config{
		Key:                    key,
		SharedSecret:           secret,
		RelayURL:               relayURL,
		AllowArbitraryMessages: f.allowAny,
		Confirm:                confirm,
		MaxSignatures:          f.maxSignatures,
		JoinTimeout:            f.joinTimeout,
		Log:                    os.Stderr,
	})
	clear(secret)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "session ended after %d signature(s)\n", res.Signatures)
	return nil
}

// readJoinString gets the join string text from exactly one source.
func readJoinString(ctx context.Context, f *remoteSignFlags, args []string) (string, error) {
	sources := 0
	for _, set := range []bool{len(args) == 1, f.sjsPath != "", f.editor} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		return "", cli.Usagef("give the join string one way only: as the argument, with --sjs-path or with --editor")
	}
	switch {
	case len(args) == 1 && args[0] != "-":
		return args[0], nil
	case f.sjsPath != "":
		b, err := readFileLimited(f.sjsPath, sjs.MaxTextSize)
		if err != nil {
			return "", fmt.Errorf("reading the join string: %w", err)
		}
		return string(b), nil
	case f.editor:
		return joinStringFromEditor(ctx)
	case len(args) == 1 || !stdinIsTerminal():
		b, err := readLimited(os.Stdin, sjs.MaxTextSize, "standard input")
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return "", cli.Usagef("no join string: give it as the argument, with --sjs-path FILE, with --editor, or on standard input")
}

// terminalConfirmer asks y/N on the terminal before each signature.
func terminalConfirmer() (session.Confirmer, func(), error) {
	tty, err := openTTY()
	if err != nil {
		return nil, nil, errors.New("--confirm needs a terminal to ask on, and none is available")
	}
	r := bufio.NewReader(tty)
	confirm := func(ctx context.Context, n int, _ session.Description) (bool, error) {
		fmt.Fprintf(tty, "Sign request #%d? [y/N] ", n)
		ch := make(chan string, 1)
		go func() {
			line, _ := r.ReadString('\n')
			ch <- line
		}()
		select {
		case line := <-ch:
			a := strings.ToLower(strings.TrimSpace(line))
			return a == "y" || a == "yes", nil
		case <-ctx.Done():
			fmt.Fprintln(tty)
			return false, ctx.Err()
		}
	}
	return confirm, func() { tty.Close() }, nil
}
