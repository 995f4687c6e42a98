package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/farsign/farsign/protocol/sjs"
)

// editorTemplate is what rcodesign prefills the editor with (sic: four dashes).
const editorTemplate = "# Please enter the -----BEGIN SESSION JOIN STRING---- content below.\n# Remember to save the file!\n"

// readLimited reads at most max bytes from r, failing beyond that.
func readLimited(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes; that is not a join string", what, max)
	}
	return b, nil
}

// readFileLimited reads a small file.
func readFileLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, max, path)
}

// joinStringFromEditor opens $VISUAL or $EDITOR on a private temporary file
// prefilled with rcodesign's two comment lines and returns what was saved,
// comment lines included (sjs.Parse ignores them).
func joinStringFromEditor(ctx context.Context) (string, error) {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	dir, err := os.MkdirTemp("", "signer-sjs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "session-join-string.txt")
	if err := os.WriteFile(path, []byte(editorTemplate), 0o600); err != nil {
		return "", err
	}
	// The editor setting may carry arguments ("code --wait").
	argv := strings.Fields(editor)
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], path)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		cmd.Stdin, cmd.Stdout = tty, tty
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("editor %q failed: %v", editor, err)
	}
	b, err := readFileLimited(path, sjs.MaxTextSize)
	if err != nil {
		return "", err
	}
	if bytes.Equal(b, []byte(editorTemplate)) || strings.TrimSpace(stripComments(string(b))) == "" {
		return "", errors.New("no join string was entered in the editor (did you save the file?)")
	}
	return string(b), nil
}

func stripComments(s string) string {
	var kept []string
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// stdinIsTerminal reports whether standard input is a terminal.
func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// openTTY opens the controlling terminal for questions, so that standard input
// stays free for a piped join string. It refuses when neither standard input
// nor standard error is a terminal: then no person is watching (a script, a
// test, a service), and a question would hang instead of failing clearly.
func openTTY() (*os.File, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) && !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil, errors.New("no terminal is available")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("no terminal is available")
	}
	return tty, nil
}
