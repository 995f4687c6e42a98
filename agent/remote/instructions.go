package remote

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/farsign/farsign/internal/relayclient"
	"github.com/farsign/farsign/protocol/sjs"
)

// Instructions returns what a person needs to join the session, line by line,
// in rcodesign's wording (spec §2.3) with the signer command substituted:
// the one-line command, the PEM block, and the --editor and --sjs-path
// alternatives. For a sharedsecret0 session on a relay other than the
// default, a last line says which flags the signer also needs, since such a
// join string does not carry the relay's URL.
func (s *Session) Instructions() []string {
	cmd := s.cfg.SignerCommand
	lines := []string{
		"",
		"Run the following command to join this signing session:",
		"",
		"    " + cmd + " remote-sign " + s.JoinLine(),
		"",
		"Or if this output is too long, paste the following output:",
		"",
	}
	lines = append(lines, pemLines(s.JoinPEM())...)
	lines = append(lines,
		"",
		"Into an interactive editor using:",
		"",
		"    "+cmd+" remote-sign --editor",
		"",
		"Or into a new file whose path you define with:",
		"",
		"    "+cmd+" remote-sign --sjs-path /path/to/file/you/just/saved",
		"",
	)
	if note := s.sharedSecretNote(); note != "" {
		lines = append(lines, note, "")
	}
	return lines
}

// sharedSecretNote tells a sharedsecret0 signer what its command line also
// needs; "" for publickey0.
func (s *Session) sharedSecretNote() string {
	if s.Scheme() != sjs.SchemeSharedSecret0 {
		return ""
	}
	note := "(The signer also needs the shared secret: --remote-shared-secret-env VAR"
	if s.url != relayclient.DefaultURL {
		note += ", and this relay: --remote-signing-url " + s.url
	}
	return note + ")"
}

func pemLines(pem string) []string {
	return strings.Split(strings.TrimRight(strings.ReplaceAll(pem, "\r\n", "\n"), "\n"), "\n")
}

func (s *Session) printInstructions() {
	for _, l := range s.Instructions() {
		fmt.Fprintln(s.log, l)
	}
	fmt.Fprintln(s.log, "(waiting for remote signer to join)")
	if err := s.writeStepSummary(); err != nil {
		fmt.Fprintf(s.log, "warning: could not write the join instructions to the GitHub step summary: %v\n", err)
	}
}

// StepSummary returns the join instructions as the Markdown appended to
// $GITHUB_STEP_SUMMARY.
func (s *Session) StepSummary() string {
	cmd := s.cfg.SignerCommand
	var b strings.Builder
	fmt.Fprintf(&b, "### Remote signing session waiting for a signer\n\n")
	fmt.Fprintf(&b, "On the machine that holds the signing key, run:\n\n")
	fmt.Fprintf(&b, "```\n%s remote-sign %s\n```\n\n", cmd, s.JoinLine())
	fmt.Fprintf(&b, "Or paste this block into `%s remote-sign --editor` (or save it to a file for `%s remote-sign --sjs-path FILE`):\n\n", cmd, cmd)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.Join(pemLines(s.JoinPEM()), "\n"))
	if note := s.sharedSecretNote(); note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	fmt.Fprintf(&b, "The session expires in %v.\n\n", s.ttl)
	return b.String()
}

// writeStepSummary appends StepSummary to the configured file, if any.
func (s *Session) writeStepSummary() error {
	path := s.cfg.StepSummary
	if path == "" {
		path = os.Getenv("GITHUB_STEP_SUMMARY")
	}
	if path == "" || path == "-" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, s.StepSummary()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
