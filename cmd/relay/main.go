// Command relay runs the farsign remote-signing relay.
//
//	relay serve [flags]
//
// See `relay serve --help`.
package main

import (
	"os"

	"github.com/farsign/farsign/internal/cli"
)

func main() { app().Main() }

func app() *cli.App {
	return &cli.App{
		Name:     "relay",
		Summary:  "the farsign remote-signing relay (compatible with rcodesign)",
		Commands: []*cli.Command{serveCommand()},
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
	}
}
