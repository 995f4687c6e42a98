package keyfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenP12PasswordSources(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	id := Identity{Signer: p.leafKey, Certificate: p.leaf, Chain: nil}
	locked := filepath.Join(dir, "locked.p12")
	if err := WriteP12(locked, id, []byte("s3cret"), P12Modern); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.p12")
	if err := WriteP12(open, id, nil, P12Modern); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad")
	if err := os.WriteFile(badFile, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Stdin and stderr are not terminals in this test, so no prompt can hang it.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	savedIn, savedErr := os.Stdin, os.Stderr
	os.Stdin, os.Stderr = devnull, devnull
	defer func() { os.Stdin, os.Stderr = savedIn, savedErr }()

	t.Setenv("FARSIGN_TEST_P12_PW", "s3cret")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		path string
		pw   P12Password
		err  string
	}{
		{"value", locked, P12Password{Value: "s3cret"}, ""},
		{"file", locked, P12Password{File: pwFile}, ""},
		{"env", locked, P12Password{Env: "FARSIGN_TEST_P12_PW"}, ""},
		{"env unset", locked, P12Password{Env: "FARSIGN_TEST_UNSET"}, "FARSIGN_TEST_UNSET is not set"},
		{"two sources", locked, P12Password{Value: "s3cret", File: pwFile}, "give only one of"},
		{"empty password tried first", open, P12Password{}, ""},
		{"wrong value", locked, P12Password{Value: "nope"}, "wrong password"},
		{"wrong file", locked, P12Password{File: badFile}, "wrong password"},
		{"missing file", locked, P12Password{File: filepath.Join(dir, "missing")}, "--p12-password-file"},
		{"no terminal to ask on", locked, P12Password{}, "use --p12-password-file"},
	} {
		got, err := OpenP12(ctx, c.path, c.pw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !got.Certificate.Equal(p.leaf) {
			t.Errorf("%s: wrong certificate", c.name)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := OpenP12(cancelled, locked, P12Password{}); err == nil {
		t.Error("cancelled: no error")
	} else if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "--p12-password-file") {
		t.Errorf("cancelled: %v", err)
	}
}
