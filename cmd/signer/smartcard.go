package main

import (
	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/signer/smartcard"
)

// smartcardCommands returns the smart-card commands (smartcard-scan,
// smartcard-generate-key, smartcard-import, generate-certificate-signing-request)
// from signer/smartcard. In builds without PC/SC support (no cgo) they are
// still listed and explain that smart-card support is not built.
func smartcardCommands() []*cli.Command { return smartcard.Commands() }
