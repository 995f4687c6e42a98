package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"github.com/farsign/farsign/signer/certinfo"
	"os"
	"strings"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/ttyprompt"
)

const generateHelp = `Generates a key pair and a self-signed certificate that looks like an Apple-issued
code-signing certificate of the chosen profile (extended key usage and Apple's
marker extensions), like rcodesign generate-self-signed-certificate.

macOS will not trust code signed with it: it is for tests, CI rehearsals and
private distribution. RSA keys (the default) can also join publickey0 sessions;
ECDSA keys only sharedsecret0 ones.

Without --pem-filename or --p12-file the certificate and then the private key are
printed to standard output as PEM. With --pem-filename PREFIX they are written to
PREFIX.crt (the certificate) and PREFIX.key (the private key, followed by the
certificate, so that file alone is a complete --pem-source), readable only by
you. Existing files are never overwritten.

Examples:
  signer generate-self-signed-certificate --person-name "Jane Doe" --team-id ABCDE12345 --pem-filename jane
  signer generate-self-signed-certificate --person-name "CI test" --algorithm ecdsa \
      --profile developer-id-application --p12-file test.p12 --p12-password-file pw.txt`

func generateSelfSignedCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate-self-signed-certificate",
		Summary:   "make a key and a self-signed code-signing certificate (for tests)",
		UsageLine: "--person-name NAME [flags]",
		Help:      generateHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var (
				algorithm, profile, teamID, person, country, email string
				pemPrefix, p12File, p12Password, p12PasswordFile   string
				validityDays                                       int
				p12Legacy                                          bool
			)
			var profiles []string
			for _, p := range applecert.Profiles() {
				profiles = append(profiles, p.String())
			}
			fs.StringVar(&algorithm, "algorithm", "rsa", "key `type`: rsa (RSA-2048) or ecdsa (P-256)")
			fs.StringVar(&profile, "profile", applecert.ProfileAppleDevelopment.String(), "certificate `profile`: "+strings.Join(profiles, ", "))
			fs.StringVar(&teamID, "team-id", "unset", "Apple team `ID` put in the subject (OU and UID)")
			fs.StringVar(&person, "person-name", "", "`name` of the person or organisation the certificate is for (required)")
			fs.StringVar(&country, "country-name", "XX", "two-letter `country` code of the subject")
			fs.StringVar(&email, "email-address", "", "e-mail `address` added to the subject")
			fs.IntVar(&validityDays, "validity-days", 365, "how many `days` the certificate is valid")
			fs.StringVar(&pemPrefix, "pem-filename", "", "write PREFIX.crt and PREFIX.key instead of printing them (`PREFIX`)")
			fs.StringVar(&p12File, "p12-file", "", "write the key and certificate to this PKCS #12 `file`")
			fs.StringVar(&p12Password, "p12-password", "", "`password` for --p12-file (visible in the process list; prefer --p12-password-file)")
			fs.StringVar(&p12PasswordFile, "p12-password-file", "", "read the --p12-file password from the first line of this `file`")
			fs.BoolVar(&p12Legacy, "p12-legacy", false, "encrypt --p12-file with 3DES for old macOS Keychains and rcodesign (weaker)")
			return func(ctx context.Context, args []string) error {
				if len(args) != 0 {
					return cli.Usagef("unexpected argument %q", args[0])
				}
				if strings.TrimSpace(person) == "" {
					return cli.Usagef("--person-name is required")
				}
				alg, err := applecert.ParseKeyAlgorithm(algorithm)
				if err != nil {
					return cli.Usagef("--algorithm: %v", err)
				}
				prof, err := applecert.ParseProfile(profile)
				if err != nil {
					return cli.Usagef("--profile: %v", err)
				}
				if validityDays < 1 || validityDays > 100*365 {
					return cli.Usagef("--validity-days must be between 1 and 36500")
				}
				if p12Password != "" && p12PasswordFile != "" {
					return cli.Usagef("give --p12-password or --p12-password-file, not both")
				}
				if (p12Password != "" || p12PasswordFile != "" || p12Legacy) && p12File == "" {
					return cli.Usagef("--p12-password, --p12-password-file and --p12-legacy need --p12-file")
				}
				var password []byte
				if p12File != "" {
					switch {
					case p12Password != "":
						password = []byte(p12Password)
					case p12PasswordFile != "":
						if password, err = ttyprompt.ReadSecretFile(p12PasswordFile); err != nil {
							return fmt.Errorf("reading --p12-password-file: %w", err)
						}
					default:
						if password, err = promptNewPassword(ctx, p12File); err != nil {
							return err
						}
					}
					if _, err := os.Lstat(p12File); err == nil {
						return fmt.Errorf("%s already exists; refusing to overwrite it", p12File)
					}
				}
				if pemPrefix != "" {
					for _, p := range []string{pemPrefix + ".crt", pemPrefix + ".key"} {
						if _, err := os.Lstat(p); err == nil {
							return fmt.Errorf("%s already exists; refusing to overwrite it", p)
						}
					}
				}
				key, cert, err := applecert.GenerateSelfSigned(applecert.Options{
					Profile:      prof,
					Algorithm:    alg,
					TeamID:       teamID,
					PersonName:   person,
					Country:      country,
					EmailAddress: email,
					Validity:     time.Duration(validityDays) * 24 * time.Hour,
				})
				if err != nil {
					return err
				}
				id := keyfile.Identity{Signer: key, Certificate: cert}
				wrote := false
				if pemPrefix != "" {
					if err := keyfile.WritePEM(pemPrefix+".key", id); err != nil {
						return err
					}
					if err := keyfile.WriteCertificatesPEM(pemPrefix+".crt", cert); err != nil {
						os.Remove(pemPrefix + ".key")
						return err
					}
					fmt.Fprintf(os.Stderr, "wrote %s.crt and %s.key\n", pemPrefix, pemPrefix)
					wrote = true
				}
				if p12File != "" {
					enc := keyfile.P12Modern
					if p12Legacy {
						enc = keyfile.P12Legacy
					}
					if err := keyfile.WriteP12(p12File, id, password, enc); err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "wrote %s\n", p12File)
					wrote = true
				}
				if !wrote {
					keyDER, err := x509.MarshalPKCS8PrivateKey(key)
					if err != nil {
						return err
					}
					pem.Encode(os.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
					pem.Encode(os.Stdout, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
				}
				return nil
			}
		},
	}
}

// promptNewPassword asks twice for a new p12 password.
func promptNewPassword(ctx context.Context, path string) ([]byte, error) {
	pw, err := ttyprompt.ReadSecret(ctx, fmt.Sprintf("New password for %s: ", path))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ttyprompt.ErrNoTerminal) {
			return nil, errors.New("a p12 file needs a password and there is no terminal to ask for one on: use --p12-password-file FILE")
		}
		return nil, fmt.Errorf("reading the new password: %w", err)
	}
	again, err := ttyprompt.ReadSecret(ctx, "Repeat the password: ")
	if err != nil {
		return nil, err
	}
	if string(pw) != string(again) {
		return nil, errors.New("the two passwords differ")
	}
	return pw, nil
}

const analyzeHelp = `Prints what matters about code-signing certificates: subject and issuer, validity,
key type, fingerprints, Apple team ID and certificate profile, and whether the
certificate chains to Apple.

It also prints the certificate's public key as a PUBLIC KEY PEM block. Give that
block to the initiator (agent --remote-public-key-pem-file FILE) to start
publickey0 sessions that only the holder of this key can join; the "SPKI SHA-256"
line is the fingerprint signer and agent quote when a join string was made for
another key.

Certificates are read from PEM files (--pem-source; private keys in them are
ignored), DER files (--der-source) or a p12 file (--p12-file).

Examples:
  signer analyze-certificate --pem-source jane.crt
  signer analyze-certificate --p12-file developer-id.p12 --p12-password-file pw.txt
  signer analyze-certificate --der-source developerID_application.cer`

func analyzeCertificateCommand() *cli.Command {
	return &cli.Command{
		Name:      "analyze-certificate",
		Summary:   "describe a certificate and print its public key for publickey0 sessions",
		UsageLine: "(--pem-source FILE | --der-source FILE | --p12-file FILE) [flags]",
		Help:      analyzeHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var pemSources, derSources cli.StringList
			var p12File, p12Password, p12PasswordFile string
			fs.Var(&pemSources, "pem-source", "PEM `file` with certificates (repeatable)")
			fs.Var(&pemSources, "pem-file", "PEM `file` with certificates (the same as --pem-source)")
			fs.Var(&derSources, "der-source", "DER certificate `file` (repeatable)")
			fs.StringVar(&p12File, "p12-file", "", "PKCS #12 `file`")
			fs.StringVar(&p12Password, "p12-password", "", "`password` of --p12-file (visible in the process list)")
			fs.StringVar(&p12PasswordFile, "p12-password-file", "", "read the --p12-file password from this `file`")
			return func(ctx context.Context, args []string) error {
				if len(args) != 0 {
					return cli.Usagef("unexpected argument %q", args[0])
				}
				if len(pemSources) == 0 && len(derSources) == 0 && p12File == "" {
					return cli.Usagef("give a certificate with --pem-source, --der-source or --p12-file")
				}
				var certs []*x509.Certificate
				for _, p := range append(append([]string{}, pemSources...), derSources...) {
					c, err := keyfile.ReadCertificates(p)
					if err != nil {
						return err
					}
					certs = append(certs, c...)
				}
				if p12File != "" {
					id, err := keyfile.OpenP12(ctx, p12File, keyfile.P12Password{Value: p12Password, File: p12PasswordFile})
					if err != nil {
						return err
					}
					certs = append(certs, id.Certificate)
					certs = append(certs, id.Chain...)
				}
				for i, c := range certs {
					if i > 0 {
						fmt.Fprintln(os.Stdout)
					}
					fmt.Printf("# certificate %d of %d\n", i+1, len(certs))
					certinfo.Describe(os.Stdout, "", c, certs)
				}
				return nil
			}
		},
	}
}
