package smartcard

import (
	"context"
	"crypto"
	"crypto/x509"
	"flag"
	"fmt"
	"github.com/farsign/farsign/signer/certinfo"
	"os"
	"strings"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/signer/piv"
)

const importHelp = `Stores a code-signing certificate in a smart card slot, with its private key
(from a p12 or PEM file) or for the key already in the slot (--existing-key, or a
DER/PEM certificate file without a key).

The usual path keeps the key on the card from the start: smartcard-generate-key,
then generate-certificate-signing-request, then import the certificate Apple
issues:

  signer smartcard-import --smartcard-slot 9c --existing-key --der-source developerID_application.cer

The certificate must match the key in the slot; the card is checked before
anything is written. Importing a private key from a file replaces the slot's key
and needs --force if there is one; note that such a key existed outside the card
and may still exist elsewhere. A PIV slot holds one certificate, the leaf: the
issuing chain is not stored.

--dry-run shows what would be imported and stops.

Examples:
  signer smartcard-import --smartcard-slot 9c --p12-file developer-id.p12 --p12-password-file pw.txt
  signer smartcard-import --smartcard-slot 9c --pem-source key.pem --pem-source cert.pem --pin-policy always
  signer smartcard-import --smartcard-slot 9c --existing-key --pem-source issued.pem --dry-run`

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "smartcard-import",
		Summary:   "store a certificate (and its key) in a smart card slot",
		UsageLine: "--smartcard-slot SLOT (--p12-file FILE | --pem-source FILE... | --der-source FILE) [flags]",
		Help:      importHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var (
				card     cardFlags
				policy   policyFlags
				files    fileFlags
				existing bool
				dryRun   bool
				force    bool
				mgmEnv   string
			)
			card.register(fs, "PIV `slot` to import into: 9a, 9c, 9d or 9e")
			policy.register(fs)
			files.register(fs, true)
			fs.BoolVar(&existing, "existing-key", false, "import only the certificate, for the key already in the slot")
			fs.BoolVar(&dryRun, "dry-run", false, "show what would be imported without changing the card")
			fs.BoolVar(&force, "force", false, "replace a key already in the slot with the imported one (it is destroyed)")
			fs.StringVar(&mgmEnv, "management-key-env", "", managementKeyHelp)
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
				if err := files.check(); err != nil {
					return err
				}
				if !files.any() {
					return cli.Usagef("give the certificate to import with --p12-file, --pem-source or --der-source")
				}
				if len(files.derSources) > 0 {
					existing = true // a DER file holds a certificate only
				}
				if existing && (pp != piv.PINDefault || tp != piv.TouchDefault) {
					return cli.Usagef("--pin-policy and --touch-policy belong to a key; with --existing-key the slot keeps its key's policies")
				}
				mgm, err := managementKey(mgmEnv)
				if err != nil {
					return err
				}

				var key crypto.Signer
				var leaf *x509.Certificate
				if existing {
					certs, err := files.certificates(ctx)
					if err != nil {
						return err
					}
					leaf = certs[0]
				} else {
					id, err := files.identity(ctx)
					if err != nil {
						if strings.Contains(err.Error(), "no private key found") {
							return fmt.Errorf("%w; to import only a certificate for the key already on the card, add --existing-key", err)
						}
						return err
					}
					key, leaf = id.Signer, id.Certificate
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
				if existing {
					if err := checkMatchesSlot(leaf, info, dev.Serial()); err != nil {
						return err
					}
				} else if (info.Key != nil || info.Certificate != nil) && !force {
					return fmt.Errorf("slot %s of smart card %d already holds a key (%s); importing replaces it: add --force, or --existing-key to import only a certificate for that key", slot, dev.Serial(), slotSummary(info))
				}

				what := "certificate"
				if key != nil {
					what = "private key and certificate"
				}
				fmt.Printf("Importing the %s into slot %s of smart card %d:\n", what, slot, dev.Serial())
				certinfo.Describe(os.Stdout, "    ", leaf, nil)
				if dryRun {
					fmt.Println("Dry run: the card was not changed.")
					return nil
				}
				if key != nil {
					pp, tp = piv.ResolvePolicies(slot, pp, tp)
					if err := dev.ImportKey(mgm, slot, key, pp, tp); err != nil {
						return err
					}
					fmt.Printf("Imported the private key (PIN policy %s, touch policy %s).\n", pp, tp)
				}
				if err := dev.SetCertificate(mgm, slot, leaf); err != nil {
					return err
				}
				fmt.Printf("Imported the certificate. Sign with: signer remote-sign --smartcard-slot %s\n", slot)
				return nil
			}
		},
	}
}

// checkMatchesSlot makes sure a certificate imported for the slot's existing key
// carries that key: otherwise every signature would fail verification.
func checkMatchesSlot(cert *x509.Certificate, info piv.SlotInfo, serial uint32) error {
	var pub crypto.PublicKey
	switch {
	case info.Key != nil && info.Key.Public != nil:
		pub = info.Key.Public
	case info.Certificate != nil:
		// Firmware without key metadata: the certificate already there is the
		// best evidence of the key.
		pub = info.Certificate.PublicKey
	default:
		return fmt.Errorf("slot %s of smart card %d holds no key: generate one with smartcard-generate-key, or import one with its certificate", info.Slot, serial)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := pub.(equaler); !ok || !e.Equal(cert.PublicKey) {
		return fmt.Errorf("the certificate's public key (%s) is not the key in slot %s of smart card %d (%s): was it issued for another key or slot?", certinfo.KeyDescription(cert.PublicKey), info.Slot, serial, certinfo.KeyDescription(pub))
	}
	return nil
}
