package main

import (
	"context"
	"flag"
	"os"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/signer/keysource"
	"github.com/farsign/farsign/signer/piv"
)

// keyFlags are the key-source flags, spelled as rcodesign spells them.
type keyFlags struct {
	p12File         string
	p12Password     string
	p12PasswordFile string
	pemSources      cli.StringList
	smartcardSlot   string
	smartcardSerial uint
	smartcardPINEnv string
}

func (f *keyFlags) register(fs *flag.FlagSet, smartcard bool) {
	fs.StringVar(&f.p12File, "p12-file", "", "PKCS #12 `file` holding the signing key and certificate (what Keychain Access exports)")
	fs.StringVar(&f.p12Password, "p12-password", "", "`password` of --p12-file; visible to other users in the process list, prefer --p12-password-file or the prompt")
	fs.StringVar(&f.p12PasswordFile, "p12-password-file", "", "read the --p12-file password from the first line of this `file`")
	fs.Var(&f.pemSources, "pem-source", "PEM `file` with the private key and/or certificates; repeat it for a key and a certificate in separate files")
	fs.Var(&f.pemSources, "pem-file", "PEM `file`, the same as --pem-source (rcodesign's other name for it)")
	if smartcard {
		fs.StringVar(&f.smartcardSlot, "smartcard-slot", "", "use the key in this PIV `slot` of a YubiKey or other smart card: 9a, 9c, 9d or 9e (9c is the usual signing slot)")
		fs.UintVar(&f.smartcardSerial, "smartcard-serial", 0, "choose the smart card with this `serial` when several are connected")
		fs.StringVar(&f.smartcardPINEnv, "smartcard-pin-env", "", "read the smart card PIN from this environment `variable` instead of asking")
	}
}

func (f *keyFlags) count() int {
	n := 0
	for _, set := range []bool{f.p12File != "", len(f.pemSources) > 0, f.smartcardSlot != ""} {
		if set {
			n++
		}
	}
	return n
}

// check validates the combination before anything is loaded.
func (f *keyFlags) check() error {
	switch n := f.count(); {
	case n == 0:
		return cli.Usagef("no signing key: give one of --p12-file, --pem-source or --smartcard-slot")
	case n > 1:
		return cli.Usagef("give only one key source: --p12-file, --pem-source or --smartcard-slot")
	}
	if f.p12Password != "" && f.p12PasswordFile != "" {
		return cli.Usagef("give --p12-password or --p12-password-file, not both")
	}
	if (f.p12Password != "" || f.p12PasswordFile != "") && f.p12File == "" {
		return cli.Usagef("--p12-password and --p12-password-file need --p12-file")
	}
	if (f.smartcardSerial != 0 || f.smartcardPINEnv != "") && f.smartcardSlot == "" {
		return cli.Usagef("--smartcard-serial and --smartcard-pin-env need --smartcard-slot")
	}
	return nil
}

// load opens the key source.
func (f *keyFlags) load(ctx context.Context) (keysource.Key, error) {
	switch {
	case f.p12File != "":
		id, err := keyfile.OpenP12(ctx, f.p12File, keyfile.P12Password{Value: f.p12Password, File: f.p12PasswordFile})
		if err != nil {
			return nil, err
		}
		return keysource.FromIdentity(id)
	case len(f.pemSources) > 0:
		return keysource.LoadPEM(f.pemSources...)
	case f.smartcardSlot != "":
		if f.smartcardSerial > 0xffffffff {
			return nil, cli.Usagef("--smartcard-serial %d is out of range", f.smartcardSerial)
		}
		return piv.Open(ctx, piv.Options{
			Slot:   f.smartcardSlot,
			Serial: uint32(f.smartcardSerial),
			PINEnv: f.smartcardPINEnv,
			Notice: os.Stderr,
		})
	}
	return nil, cli.Usagef("no signing key given")
}
