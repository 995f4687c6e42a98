package ttyprompt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content, want, err string
	}{
		{"hunter2\n", "hunter2", ""},
		{"hunter2\r\nsecond line\n", "hunter2", ""},
		{"no newline", "no newline", ""},
		{" spaced \n", " spaced ", ""},
		{"\nsecret", "", "first line is empty"},
		{"", "", "first line is empty"},
		{strings.Repeat("x", MaxSecretFile+1), "", "larger than"},
	} {
		p := filepath.Join(dir, "s")
		if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSecretFile(p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.content, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.content, got, err, c.want)
		}
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// With stdin and stderr not terminals, ReadSecret must fail at once rather than wait
// on /dev/tty, even when the test runs from a developer's shell.
func TestReadSecretNoTerminal(t *testing.T) {
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	saved, savedErr := os.Stdin, os.Stderr
	os.Stdin, os.Stderr = stdin, stdin
	defer func() { os.Stdin, os.Stderr = saved, savedErr }()
	if _, err := ReadSecret(context.Background(), "PIN: "); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("ReadSecret without a terminal: %v, want ErrNoTerminal", err)
	}
}
