// Package ttyprompt reads secrets (p12 passwords, smart-card PINs, shared secrets) the
// way every farsign command must: from the controlling terminal without echo, or from
// a file the user named, never from process arguments by default.
//
// The terminal is /dev/tty, not stdin, so a join string can still be piped into
// `signer remote-sign` while the PIN is typed. A read is interruptible: on Ctrl-C the
// terminal's echo is restored before the program exits, which term.ReadPassword alone
// does not do.
package ttyprompt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// ErrNoTerminal reports that there is no terminal to ask on (CI, a pipe, a service).
// Callers wrap it with the non-interactive alternative: an environment variable or a
// file flag.
var ErrNoTerminal = errors.New("no terminal to ask on")

// MaxSecretFile bounds a secret file: a password is a line, not a document.
const MaxSecretFile = 64 << 10

// ReadSecret writes prompt to the terminal and reads one line without echo.
//
// It refuses (ErrNoTerminal) when neither stdin nor stderr is a terminal: then no
// person is watching (a script, a test, a service) and a question would hang instead
// of failing clearly, even if a controlling terminal happens to exist.
func ReadSecret(ctx context.Context, prompt string) ([]byte, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) && !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil, ErrNoTerminal
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return nil, ErrNoTerminal
		}
		return read(ctx, os.Stdin, os.Stderr, prompt)
	}
	defer tty.Close()
	return read(ctx, tty, tty, prompt)
}

func read(ctx context.Context, in *os.File, out io.Writer, prompt string) ([]byte, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return nil, ErrNoTerminal
	}
	saved, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTerminal, err)
	}
	fmt.Fprint(out, prompt)
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		fmt.Fprintln(out)
		return r.b, r.err
	case <-ctx.Done():
		// The reading goroutine stays blocked until the process exits; what matters
		// is that echo is back on before it does.
		term.Restore(fd, saved)
		fmt.Fprintln(out)
		return nil, ctx.Err()
	}
}

// ReadSecretFile reads a secret from a file: its first line without the line ending,
// as `echo secret > file` leaves it. An empty first line is an error, not an empty
// password.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSecretFile {
		clear(b)
		return nil, fmt.Errorf("%s: larger than %d bytes; a secret file holds one line", path, MaxSecretFile)
	}
	line := b
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		clear(b)
		return nil, fmt.Errorf("%s: the first line is empty", path)
	}
	out := bytes.Clone(line)
	clear(b)
	return out, nil
}
