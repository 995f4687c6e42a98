package smartcard

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"github.com/farsign/farsign/signer/certinfo"
	"os"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/signer/piv"
)

const csrHelp = `Creates a certificate signing request (CSR) for a key, signed by that key, to
upload to Apple's developer portal (Certificates, Identifiers & Profiles, "+")
in exchange for a code-signing certificate.

The key is in a smart card slot (--smartcard-slot; the PIN may be asked for) or
in a file (--p12-file or --pem-source). The CSR is printed and, with
--csr-pem-path, also written to that file. Apple's portal expects an RSA-2048
key.

Examples:
  signer generate-certificate-signing-request --smartcard-slot 9c --csr-pem-path csr.pem
  signer generate-certificate-signing-request --pem-source key.pem --csr-pem-path csr.pem

Then import what Apple issues for the card's key:
  signer smartcard-import --smartcard-slot 9c --existing-key --der-source developerID_application.cer`

func csrCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate-certificate-signing-request",
		Summary:   "create a CSR for a smart card or file key, to get an Apple certificate",
		UsageLine: "(--smartcard-slot SLOT | --p12-file FILE | --pem-source FILE...) [--csr-pem-path FILE]",
		Help:      csrHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var (
				card       cardFlags
				files      fileFlags
				out        string
				commonName string
			)
			card.register(fs, "use the key in this PIV `slot` of a smart card: 9a, 9c, 9d or 9e")
			files.register(fs, false)
			fs.StringVar(&out, "csr-pem-path", "", "also write the PEM CSR to this `file`")
			fs.StringVar(&out, "csr-pem-file", "", "same as --csr-pem-path (rcodesign's name)")
			fs.StringVar(&commonName, "common-name", "Apple Code Signing CSR", "subject common `name` of the request (Apple ignores it)")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := files.check(); err != nil {
					return err
				}
				if (card.slot != "") == files.any() {
					return cli.Usagef("give one key: --smartcard-slot, --p12-file or --pem-source")
				}
				var signer crypto.Signer
				if card.slot != "" {
					slot, serial, err := card.parse()
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
					var pub crypto.PublicKey
					switch {
					case info.Certificate != nil:
						pub = info.Certificate.PublicKey
					case info.Key != nil && info.Key.Public != nil:
						pub = info.Key.Public
					default:
						return fmt.Errorf("slot %s of smart card %d holds no key: create one with smartcard-generate-key --smartcard-slot %s", slot, dev.Serial(), slot)
					}
					if signer, err = dev.Signer(ctx, slot, pub, card.options()); err != nil {
						return err
					}
				} else {
					id, err := files.identity(ctx)
					if err != nil {
						return err
					}
					signer = id.Signer
				}
				if k, ok := signer.Public().(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
					fmt.Fprintf(os.Stderr, "warning: the key is %s; Apple's portal only accepts RSA-2048 CSRs\n", certinfo.KeyDescription(signer.Public()))
				}
				der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}, signer)
				if err != nil {
					return fmt.Errorf("creating the CSR: %w", err)
				}
				// Belt and braces: a CSR whose signature does not verify would be
				// rejected by the portal after the upload.
				if csr, err := x509.ParseCertificateRequest(der); err != nil || csr.CheckSignature() != nil {
					return errors.New("the key produced a CSR whose signature does not verify")
				}
				pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
				if out != "" {
					if err := writeAtomic(out, pemBytes, 0o644); err != nil {
						return fmt.Errorf("writing --csr-pem-path: %w", err)
					}
					fmt.Fprintf(os.Stderr, "wrote the CSR to %s\n", out)
				}
				os.Stdout.Write(pemBytes)
				return nil
			}
		},
	}
}
