package smartcard

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"github.com/farsign/farsign/signer/certinfo"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/signer/piv"
)

const generateKeyHelp = `Generates a new private key inside the smart card, in the given slot. The key
never exists anywhere else: it cannot be copied, only used through the card.

The card then signs a self-signed certificate for the new key, which is stored in
the slot so the slot is usable at once: by remote-sign (for self-signed testing)
and by generate-certificate-signing-request, whose CSR gets you an Apple-issued
certificate that then replaces it (smartcard-import --existing-key). Signing it
needs the PIN, which is checked before anything on the card changes.

Generating destroys the key already in the slot, so that needs --force.

The management key is the factory default unless --management-key-env names an
environment variable holding it in hex. The PIN is asked on the terminal unless
--smartcard-pin-env names a variable holding it.

Examples:
  signer smartcard-generate-key --smartcard-slot 9c
  signer smartcard-generate-key --smartcard-slot 9c --algorithm p256 --touch-policy always
  signer smartcard-generate-key --smartcard-slot 9a --pin-policy once \
      --management-key-env YUBIKEY_MGMT_KEY --person-name "Release signing" --force`

func generateKeyCommand() *cli.Command {
	return &cli.Command{
		Name:      "smartcard-generate-key",
		Summary:   "generate a key inside a smart card slot (with a self-signed certificate)",
		UsageLine: "--smartcard-slot SLOT [flags]",
		Help:      generateKeyHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var (
				card         cardFlags
				policy       policyFlags
				algorithm    string
				mgmEnv       string
				person       string
				validityDays int
				force        bool
			)
			card.register(fs, "PIV `slot` to generate the key in: 9a, 9c, 9d or 9e (9c is the usual signing slot)")
			policy.register(fs)
			fs.StringVar(&algorithm, "algorithm", "rsa2048", "key `type`: rsa2048 (what Apple's portal accepts in CSRs; can join publickey0 sessions) or p256")
			fs.StringVar(&mgmEnv, "management-key-env", "", managementKeyHelp)
			fs.StringVar(&person, "person-name", "farsign smart card key", "common `name` of the self-signed certificate")
			fs.IntVar(&validityDays, "validity-days", 365, "how many `days` the self-signed certificate is valid")
			fs.BoolVar(&force, "force", false, "replace a key already in the slot (it is destroyed)")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				slot, serial, err := card.parse()
				if err != nil {
					return err
				}
				pp, tp, err := policy.parse()
				if err != nil {
					return err
				}
				var alg piv.Algorithm
				switch strings.ToLower(algorithm) {
				case "rsa2048", "rsa":
					alg = piv.RSA2048
				case "p256", "ecdsa":
					alg = piv.P256
				default:
					return cli.Usagef("--algorithm %q: use rsa2048 or p256", algorithm)
				}
				if validityDays < 1 || validityDays > 100*365 {
					return cli.Usagef("--validity-days must be between 1 and 36500")
				}
				if strings.TrimSpace(person) == "" {
					return cli.Usagef("--person-name must not be empty")
				}
				mgm, err := managementKey(mgmEnv)
				if err != nil {
					return err
				}

				dev, err := piv.OpenDevice(serial)
				if err != nil {
					return err
				}
				defer dev.Close()
				info, err := dev.SlotInfo(slot)
				if err != nil {
					return err
				}
				if (info.Key != nil || info.Certificate != nil) && !force {
					return fmt.Errorf("slot %s of smart card %d already holds a key (%s); generating a new one destroys it: add --force if that is what you want", slot, dev.Serial(), slotSummary(info))
				}
				pin, err := obtainPIN(ctx, dev, card.pinEnv)
				if err != nil {
					return err
				}

				pp, tp = piv.ResolvePolicies(slot, pp, tp)
				fmt.Fprintf(os.Stderr, "Generating a %s key in slot %s of smart card %d (a YubiKey takes several seconds for RSA)...\n", alg, slot, dev.Serial())
				pub, err := dev.GenerateKey(mgm, slot, alg, pp, tp)
				if err != nil {
					return err
				}
				signer, err := dev.Signer(ctx, slot, pub, piv.Options{
					PINPrompt: func(context.Context, int) (string, error) { return pin, nil },
					Notice:    os.Stderr,
				})
				if err != nil {
					return err
				}
				cert, err := selfSigned(signer, pub, person, time.Duration(validityDays)*24*time.Hour)
				if err == nil {
					err = dev.SetCertificate(mgm, slot, cert)
				}
				if err != nil {
					return fmt.Errorf("the new key is in slot %s, but its certificate could not be stored (%w); run the command again with --force, or import a certificate for it with smartcard-import --existing-key", slot, err)
				}
				fmt.Printf("Generated a %s key in slot %s of smart card %d (PIN policy %s, touch policy %s) and stored a self-signed certificate for it:\n", alg, slot, dev.Serial(), pp, tp)
				certinfo.Describe(os.Stdout, "    ", cert, nil)
				fmt.Fprintf(os.Stderr, "Next: `signer generate-certificate-signing-request --smartcard-slot %s --csr-pem-path csr.pem` to request an Apple certificate for this key, or use the slot as it is with `signer remote-sign --smartcard-slot %s`.\n", slot, slot)
				return nil
			}
		},
	}
}

// obtainPIN gets the PIN from the variable the user named or from the terminal
// and verifies it before the command changes anything on the card.
func obtainPIN(ctx context.Context, dev *piv.Device, envName string) (string, error) {
	if envName != "" {
		pin := os.Getenv(envName)
		if pin == "" {
			return "", fmt.Errorf("--smartcard-pin-env %s: the environment variable is not set or empty", envName)
		}
		if err := dev.VerifyPIN(pin); err != nil {
			return "", fmt.Errorf("PIN from $%s: %w", envName, err)
		}
		return pin, nil
	}
	prompt := piv.TerminalPrompt()
	for {
		retries := dev.PINRetries()
		if retries == 0 {
			return "", fmt.Errorf("smart card %d: %w", dev.Serial(), piv.ErrPINBlocked)
		}
		pin, err := prompt(ctx, retries)
		if err != nil {
			return "", err
		}
		err = dev.VerifyPIN(pin)
		if err == nil {
			return pin, nil
		}
		var wrong *piv.WrongPINError
		if !errors.As(err, &wrong) {
			return "", err
		}
		fmt.Fprintln(os.Stderr, err)
	}
}

// selfSigned makes the slot's first certificate, signed by the card: a
// code-signing leaf for the key, good for self-signed use until an Apple-issued
// certificate replaces it.
func selfSigned(signer crypto.Signer, pub crypto.PublicKey, name string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(spki)
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now,
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:20],
	}
	// CreateCertificate checks the card's signature against pub before returning.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func marshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	return x509.MarshalPKIXPublicKey(pub)
}
