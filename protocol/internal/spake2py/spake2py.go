// Package spake2py runs Debian's python3-spake2 (Brian Warner's reference SPAKE2)
// as a live peer for interoperability tests. It is test infrastructure: every
// function takes a testing.TB and fails the test on error.
//
// The Python side speaks hex lines over stdin/stdout, so passwords never appear in
// process arguments. Under CI=true a missing python3-spake2 fails the test
// (testenv.Missing) instead of skipping it.
package spake2py

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/testenv"
)

const script = `
import sys, binascii
from spake2 import SPAKE2_A, SPAKE2_B
def rd():
    return binascii.unhexlify(sys.stdin.readline().strip())
role = sys.stdin.readline().strip()
pw, idA, idB = rd(), rd(), rd()
s = (SPAKE2_A if role == "A" else SPAKE2_B)(pw, idA=idA, idB=idB)
print(binascii.hexlify(s.start()).decode(), flush=True)
try:
    print(binascii.hexlify(s.finish(rd())).decode(), flush=True)
except Exception as e:
    print("error " + type(e).__name__, flush=True)
`

// Python returns /usr/bin/python3 after checking that it imports spake2.
func Python(t testing.TB) string {
	t.Helper()
	py := testenv.SystemPython(t)
	out, err := exec.Command(py, "-c", "import spake2").CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		testenv.Missing(t, fmt.Sprintf("python3-spake2 is not importable by %s (apt-get install python3-spake2): %v: %s",
			py, err, lines[len(lines)-1]))
	}
	return py
}

// Peer is one running python-spake2 side.
type Peer struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *bytes.Buffer
	done   bool
}

// Start launches python-spake2 as side role ('A' or 'B') and returns it with its
// outbound message. The process is stopped when the test ends.
func Start(t testing.TB, role byte, password, idA, idB []byte) (*Peer, []byte) {
	t.Helper()
	py := Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, py, "-c", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &Peer{t: t, cmd: cmd, cancel: cancel, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: new(bytes.Buffer)}
	cmd.Stderr = p.stderr
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	fmt.Fprintf(stdin, "%c\n%x\n%x\n%x\n", role, password, idA, idB)
	msg, err := hex.DecodeString(p.readLine())
	if err != nil {
		t.Fatalf("python-spake2 message: %v", err)
	}
	return p, msg
}

func (p *Peer) readLine() string {
	p.t.Helper()
	if !p.lines.Scan() {
		p.t.Fatalf("python-spake2 ended early: %v; stderr: %s", p.lines.Err(), p.stderr.String())
	}
	return strings.TrimSpace(p.lines.Text())
}

// Finish hands python the other side's message and returns what it printed: the
// key in hex, or "error <ExceptionName>".
func (p *Peer) Finish(peerMsg []byte) string {
	p.t.Helper()
	fmt.Fprintf(p.stdin, "%x\n", peerMsg)
	out := p.readLine()
	p.stop()
	return out
}

func (p *Peer) stop() {
	if p.done {
		return
	}
	p.done = true
	p.stdin.Close()
	p.cmd.Wait()
	p.cancel()
}
