// Command signer is the key holder's side of farsign remote signing: it joins a
// signing session that an `agent` (or rcodesign) started in CI, and signs what the
// session asks for with a key that never leaves this machine (a p12 or PEM file,
// or a YubiKey). It also makes and inspects code-signing certificates.
//
// Flags follow rcodesign's, so `rcodesign remote-sign …` command lines work with
// `signer remote-sign …` unchanged.
package main

import (
	"github.com/farsign/farsign/internal/cli"
)

func app() *cli.App {
	cmds := []*cli.Command{
		remoteSignCommand(),
		generateSelfSignedCommand(),
		analyzeCertificateCommand(),
	}
	cmds = append(cmds, smartcardCommands()...)
	return &cli.App{
		Name:     "signer",
		Summary:  "sign Apple code for a remote CI job with a key that stays on this machine",
		Commands: cmds,
	}
}

func main() { app().Main() }
