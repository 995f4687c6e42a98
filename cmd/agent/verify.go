package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/farsign/farsign/agent/codesign"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/keyfile"
)

const verifyHelp = `Verify the code signature of a Mach-O binary, every architecture of it.

Checks the signature's structure, every page hash and special-slot hash of every
CodeDirectory, the CMS signature over the CodeDirectory and its message digest
and cdhash attributes, the entitlements, and the designated requirement against
the signer's certificates. With --apple (or --roots) it also verifies the
RFC 3161 time-stamp token and the certificate chain, at the time-stamp's time
when there is one (so a signature made before the certificate expired stays
valid).

Each check is printed as ok, skip (with the reason) or FAIL (with what is
wrong). The exit status is 1 if any check fails.

Examples:

  agent verify ./mytool
  agent verify --apple ./node            # a genuine Apple-issued signature
  agent verify --roots my-ca.pem --timestamp-roots tsa-ca.pem ./mytool
  agent verify --info-plist-path MyApp.app/Contents/Info.plist ./binary`

func verifyCommand(std *streams) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Summary:   "verify a Mach-O signature: hashes, CMS, time-stamp and chain",
		UsageLine: "[flags] FILE",
		Help:      verifyHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			apple := fs.Bool("apple", false, "require a certificate chain and time-stamp that verify up to Apple's root CAs")
			var roots, tsRoots cli.StringList
			fs.Var(&roots, "roots", "trust the CA certificates in this PEM or DER `file` for the signer's chain (repeatable)")
			fs.Var(&tsRoots, "timestamp-roots", "trust the CA certificates in this `file` for the time-stamp authority (repeatable;\ndefault: the --roots / --apple roots)")
			at := fs.String("at", "", "verify the chain at this RFC 3339 `time` instead of the time-stamp's (or now)")
			infoPlist := fs.String("info-plist-path", "", "Info.plist `file` to check special slot 1 against")
			resources := fs.String("code-resources-path", "", "CodeResources `file` to check special slot 3 against")
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return cli.Usagef("want one FILE, got %d arguments", len(args))
				}
				var opts codesign.VerifyOptions
				var err error
				if *apple {
					opts.Roots = applecert.AppleRoots()
				}
				if len(roots) > 0 {
					if *apple {
						return cli.Usagef("give --apple or --roots, not both")
					}
					if opts.Roots, err = loadPool(roots); err != nil {
						return err
					}
				}
				if len(tsRoots) > 0 {
					if opts.TimestampRoots, err = loadPool(tsRoots); err != nil {
						return err
					}
				}
				if *at != "" {
					if opts.At, err = time.Parse(time.RFC3339, *at); err != nil {
						return cli.Usagef("--at: want RFC 3339 such as 2024-01-01T00:00:00Z: %v", err)
					}
				}
				if *infoPlist != "" {
					if opts.InfoPlist, err = readBounded(*infoPlist, 1<<20); err != nil {
						return err
					}
				}
				if *resources != "" {
					if opts.CodeResources, err = readBounded(*resources, 64<<20); err != nil {
						return err
					}
				}
				rep, err := codesign.VerifyFile(ctx, args[0], opts)
				if err != nil {
					return err
				}
				printReport(std, args[0], rep)
				if !rep.OK() {
					n := 0
					for _, s := range rep.Slices {
						for _, c := range s.Checks {
							if c.Err != nil {
								n++
							}
						}
					}
					return fmt.Errorf("%s: signature is NOT valid (%d failed check(s))", args[0], n)
				}
				return nil
			}
		},
	}
}

func loadPool(paths []string) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	for _, path := range paths {
		certs, err := keyfile.ReadCertificates(path)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			p.AddCert(c)
		}
	}
	return p, nil
}

func printReport(std *streams, path string, rep *codesign.Report) {
	for _, s := range rep.Slices {
		var facts []string
		if s.Identifier != "" {
			facts = append(facts, "identifier "+s.Identifier)
		}
		if s.TeamID != "" {
			facts = append(facts, "team "+s.TeamID)
		}
		if len(s.CDHash) > 0 {
			facts = append(facts, fmt.Sprintf("cdhash %x", s.CDHash))
		}
		if s.Signer != "" {
			facts = append(facts, fmt.Sprintf("signed by %q", s.Signer))
		} else if s.Identifier != "" {
			facts = append(facts, "ad hoc")
		}
		fmt.Fprintf(std.out, "%s (%s): %s\n", path, s.Arch, strings.Join(facts, ", "))
		for _, c := range s.Checks {
			switch {
			case c.Err != nil:
				fmt.Fprintf(std.out, "  FAIL %s: %s\n", c.Name, oneLine(c.Err))
			case c.Skipped != "":
				fmt.Fprintf(std.out, "  skip %s: %s\n", c.Name, c.Skipped)
			default:
				fmt.Fprintf(std.out, "  ok   %s: %s\n", c.Name, c.Detail)
			}
		}
	}
	if rep.OK() {
		fmt.Fprintf(std.out, "%s: signature is valid\n", path)
	}
}

// oneLine flattens joined errors for a one-line report entry.
func oneLine(err error) string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var parts []string
		for _, e := range j.Unwrap() {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ")
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
