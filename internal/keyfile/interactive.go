package keyfile

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/farsign/farsign/internal/ttyprompt"
)

// P12Password says where a p12 file's password comes from, as the commands' flags
// offer it: the value itself (--p12-password, visible in the process list, so
// discouraged), a file (--p12-password-file), or an environment variable the user
// names (--p12-password-env). At most one may be set. When none is, the empty
// password is tried and then a no-echo prompt on the terminal.
type P12Password struct {
	Value string
	File  string
	Env   string
}

// OpenP12 loads a p12 identity, obtaining its password as P12Password describes.
func OpenP12(ctx context.Context, path string, pw P12Password) (Identity, error) {
	n := 0
	for _, set := range []bool{pw.Value != "", pw.File != "", pw.Env != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return Identity{}, errors.New("give only one of --p12-password, --p12-password-file and --p12-password-env")
	}
	switch {
	case pw.Env != "":
		v, ok := os.LookupEnv(pw.Env)
		if !ok {
			return Identity{}, fmt.Errorf("--p12-password-env: environment variable %s is not set", pw.Env)
		}
		return LoadP12(path, []byte(v))
	case pw.Value != "":
		return LoadP12(path, []byte(pw.Value))
	case pw.File != "":
		b, err := ttyprompt.ReadSecretFile(pw.File)
		if err != nil {
			return Identity{}, fmt.Errorf("reading --p12-password-file: %w", err)
		}
		defer clear(b)
		return LoadP12(path, b)
	}
	// Exported test identities often have an empty password: try it before asking.
	id, err := LoadP12(path, nil)
	if !errors.Is(err, ErrWrongPassword) {
		return id, err
	}
	b, err := ttyprompt.ReadSecret(ctx, fmt.Sprintf("Password for %s: ", path))
	if err != nil {
		if ctx.Err() != nil {
			return Identity{}, ctx.Err()
		}
		if errors.Is(err, ttyprompt.ErrNoTerminal) {
			return Identity{}, fmt.Errorf("%s is password-protected and there is no terminal to ask for it on: use --p12-password-file FILE", path)
		}
		return Identity{}, fmt.Errorf("reading the password for %s: %w", path, err)
	}
	defer clear(b)
	return LoadP12(path, b)
}
