package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// result is a worker's answer to one command: durations in nanoseconds (A
// and, for "light", B), or an error.
type result struct {
	A, B []time.Duration
	Err  string
}

// worker is a client process started by the coordinator.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

func startWorker(self, relayURL, echoURL string, sessions, id int) (*worker, error) {
	cmd := exec.Command(self, "-worker", "-relay-url", relayURL, "-echo-url", echoURL,
		"-sessions", strconv.Itoa(sessions), "-worker-id", strconv.Itoa(id),
		"-size", strconv.Itoa(*flagSize), "-dialers", strconv.Itoa(*flagDialers))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &worker{cmd: cmd, in: in, out: json.NewDecoder(bufio.NewReader(out))}, nil
}

func (w *worker) send(cmd string) error {
	_, err := fmt.Fprintln(w.in, cmd)
	return err
}

func (w *worker) await() (result, error) {
	var r result
	if err := w.out.Decode(&r); err != nil {
		return r, fmt.Errorf("worker: %w", err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("worker: %s", r.Err)
	}
	return r, nil
}

func (w *worker) call(cmd string) (result, error) {
	if err := w.send(cmd); err != nil {
		return result{}, err
	}
	return w.await()
}

func (w *worker) stop() {
	_ = w.send("quit")
	w.in.Close()
	_ = w.cmd.Wait()
}

// runWorker opens its share of sessions and echo connections, reports
// ready, then runs commands from stdin:
//
//	light R C       R round trips per server, alternating, on C clients
//	full-relay M    every session exchanges M messages each way, at once
//	full-echo M     every echo connection pair does the same
//	quit
func runWorker() error {
	out := json.NewEncoder(os.Stdout)
	reply := func(r result, err error) error {
		if err != nil {
			r = result{Err: err.Error()}
		}
		return out.Encode(r)
	}
	n := *flagSessions
	sessions, err := openSessions(*flagRelayURL, n, *flagWorkerID)
	if err == nil {
		var echoes []*websocket.Conn
		echoes, err = openEchoes(*flagEchoURL, 2*n)
		if err == nil {
			if err := reply(result{}, nil); err != nil {
				return err
			}
			return serveCommands(sessions, echoes, reply)
		}
	}
	return reply(result{}, err)
}

func serveCommands(sessions []*session, echoes []*websocket.Conn, reply func(result, error) error) error {
	msg := strings.Repeat("A", *flagSize)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		arg := func(i int) int {
			if i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
			return 0
		}
		var r result
		var err error
		switch f[0] {
		case "quit":
			return nil
		case "light":
			rounds, conc := arg(1), max(1, arg(2))
			conc = min(conc, len(sessions))
			const slices = 10
			for i := range slices {
				var e, rl []time.Duration
				if e, err = echoRounds(echoes[:conc], rounds/slices, msg); err != nil {
					break
				}
				if rl, err = relayRounds(sessions[(i*conc)%len(sessions):][:conc], rounds/slices); err != nil {
					break
				}
				r.B, r.A = append(r.B, e...), append(r.A, rl...)
			}
		case "full-relay":
			r.A, err = relayAll(sessions, arg(1))
		case "full-echo":
			r.A, err = echoAll(echoes, arg(1), msg)
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err := reply(r, err); err != nil {
			return err
		}
	}
	return sc.Err()
}
