// Package smartcard holds the signer's smart-card commands: smartcard-scan,
// smartcard-generate-key, smartcard-import and generate-certificate-signing-request.
// They prepare a YubiKey (or another PIV card) for `signer remote-sign
// --smartcard-slot`, with rcodesign's command and flag names.
//
// The commands are internal/cli Commands so cmd/signer can list them; all card
// access goes through signer/piv. Secrets (PIN, management key, p12 password) are
// never taken from the command line itself: they come from a prompt, a file, or
// an environment variable the user names.
package smartcard

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/signer/piv"
)

// Commands returns the smart-card commands in the order the signer lists them.
func Commands() []*cli.Command {
	return []*cli.Command{
		scanCommand(),
		generateKeyCommand(),
		importCommand(),
		csrCommand(),
	}
}

// cardFlags selects a card and slot and says where the PIN comes from.
type cardFlags struct {
	slot   string
	serial uint
	pinEnv string
}

func (f *cardFlags) register(fs *flag.FlagSet, slotHelp string) {
	fs.StringVar(&f.slot, "smartcard-slot", "", slotHelp)
	fs.UintVar(&f.serial, "smartcard-serial", 0, "choose the smart card with this `serial` when several are connected (see smartcard-scan)")
	fs.StringVar(&f.pinEnv, "smartcard-pin-env", "", "read the smart card PIN from this environment `variable` instead of asking on the terminal")
}

func (f *cardFlags) parse() (piv.Slot, uint32, error) {
	if f.slot == "" {
		return 0, 0, cli.Usagef("--smartcard-slot is required (9c is the usual signing slot)")
	}
	slot, err := piv.ParseSlot(f.slot)
	if err != nil {
		return 0, 0, cli.Usagef("--smartcard-slot: %v", err)
	}
	if f.serial > 0xffffffff {
		return 0, 0, cli.Usagef("--smartcard-serial %d is out of range", f.serial)
	}
	return slot, uint32(f.serial), nil
}

func (f *cardFlags) options() piv.Options {
	return piv.Options{Slot: f.slot, Serial: uint32(f.serial), PINEnv: f.pinEnv, Notice: os.Stderr}
}

// policyFlags are --pin-policy and --touch-policy, as rcodesign spells them.
type policyFlags struct{ pin, touch string }

func (f *policyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.pin, "pin-policy", "default", "when the card asks for the PIN: default, never, once (per session) or always (per signature); default is always for 9c, never for 9e, once otherwise")
	fs.StringVar(&f.touch, "touch-policy", "default", "when the card wants a touch: default (never), never, always, or cached (one touch is good for 15 seconds)")
}

func (f *policyFlags) parse() (piv.PINPolicy, piv.TouchPolicy, error) {
	pp, err := piv.ParsePINPolicy(f.pin)
	if err != nil {
		return "", "", cli.Usagef("--pin-policy: %v", err)
	}
	tp, err := piv.ParseTouchPolicy(f.touch)
	if err != nil {
		return "", "", cli.Usagef("--touch-policy: %v", err)
	}
	return pp, tp, nil
}

// managementKey reads the hex management key from the environment variable the
// user named, or returns nil for the factory default.
func managementKey(envName string) ([]byte, error) {
	if envName == "" {
		return nil, nil
	}
	v := os.Getenv(envName)
	if v == "" {
		return nil, fmt.Errorf("--management-key-env %s: the environment variable is not set or empty", envName)
	}
	k, err := piv.ParseManagementKey(v)
	if err != nil {
		return nil, fmt.Errorf("--management-key-env %s: %w", envName, err)
	}
	return k, nil
}

const managementKeyHelp = "read the card's management key (hex) from this environment `variable`; without it the factory default key is used"

// fileFlags are the p12/PEM/DER sources shared by smartcard-import and
// generate-certificate-signing-request.
type fileFlags struct {
	p12File, p12Password, p12PasswordFile string
	pemSources, derSources                cli.StringList
}

func (f *fileFlags) register(fs *flag.FlagSet, der bool) {
	fs.StringVar(&f.p12File, "p12-file", "", "PKCS #12 `file` with the key and certificate (what Keychain Access exports)")
	fs.StringVar(&f.p12Password, "p12-password", "", "`password` of --p12-file (visible in the process list; prefer --p12-password-file or the prompt)")
	fs.StringVar(&f.p12PasswordFile, "p12-password-file", "", "read the --p12-file password from the first line of this `file`")
	fs.Var(&f.pemSources, "pem-source", "PEM `file` with a certificate and/or private key; repeat it for files holding one each")
	fs.Var(&f.pemSources, "pem-file", "same as --pem-source (rcodesign's name)")
	if der {
		fs.Var(&f.derSources, "der-source", "DER certificate `file`, such as the .cer Apple's portal issues")
		fs.Var(&f.derSources, "certificate-der-file", "same as --der-source (rcodesign's name)")
	}
}

func (f *fileFlags) any() bool {
	return f.p12File != "" || len(f.pemSources) > 0 || len(f.derSources) > 0
}

func (f *fileFlags) check() error {
	n := 0
	for _, set := range []bool{f.p12File != "", len(f.pemSources) > 0, len(f.derSources) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return cli.Usagef("give only one of --p12-file, --pem-source and --der-source")
	}
	if f.p12Password != "" && f.p12PasswordFile != "" {
		return cli.Usagef("give --p12-password or --p12-password-file, not both")
	}
	if (f.p12Password != "" || f.p12PasswordFile != "") && f.p12File == "" {
		return cli.Usagef("--p12-password and --p12-password-file need --p12-file")
	}
	return nil
}

// identity loads a key with its certificate from --p12-file or --pem-source.
func (f *fileFlags) identity(ctx context.Context) (keyfile.Identity, error) {
	if f.p12File != "" {
		return keyfile.OpenP12(ctx, f.p12File, keyfile.P12Password{Value: f.p12Password, File: f.p12PasswordFile})
	}
	return keyfile.LoadPEM(f.pemSources...)
}

// certificates loads only certificates (for a key already on the card): the
// first one is the leaf.
func (f *fileFlags) certificates(ctx context.Context) ([]*x509.Certificate, error) {
	if f.p12File != "" {
		id, err := f.identity(ctx)
		if err != nil {
			return nil, err
		}
		return append([]*x509.Certificate{id.Certificate}, id.Chain...), nil
	}
	var out []*x509.Certificate
	for _, p := range append(append([]string(nil), f.pemSources...), f.derSources...) {
		certs, err := keyfile.ReadCertificates(p)
		if err != nil {
			return nil, err
		}
		out = append(out, certs...)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate found")
	}
	return out, nil
}

// writeAtomic writes data to path through a temporary file in the same folder
// and a rename, so an interrupted run never leaves a truncated file.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func noArgs(args []string) error {
	if len(args) != 0 {
		return cli.Usagef("unexpected argument %q", args[0])
	}
	return nil
}
