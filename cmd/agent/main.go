// Command agent is farsign's initiator: it does all of Apple code signing's work
// on the machine that has the binary (typically CI) — parsing and rewriting
// Mach-O, hashing pages, building CodeDirectories and requirements — and only
// needs a key for the one CMS signature per slice. The key can be local (p12 or
// PEM) or, with the remote-signing flags, held by a person elsewhere.
//
// Commands: sign, verify, print-signature-info, diff-signatures, extract.
package main

import (
	"io"
	"os"

	"github.com/farsign/farsign/internal/cli"
)

func main() { newApp(os.Stdout, os.Stderr).Main() }

// newApp builds the agent's command set writing to the given streams, so tests
// can run it in-process.
func newApp(stdout, stderr io.Writer) *cli.App {
	std := &streams{out: stdout, err: stderr}
	return &cli.App{
		Name:    "agent",
		Summary: "sign and inspect Apple code signatures (the initiator side of farsign)",
		Stdout:  stdout,
		Stderr:  stderr,
		Commands: []*cli.Command{
			signCommand(std),
			verifyCommand(std),
			printInfoCommand(std),
			diffCommand(std),
			extractCommand(std),
		},
	}
}

// streams are where a command writes: results to out, progress and notes to err.
type streams struct {
	out, err io.Writer
}
