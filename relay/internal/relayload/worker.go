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

// result is a worker's answer to one command: durations in nanoseconds (A;
// for "light" also B, the echo server's, and C, the forwarder's), or an
// error.
type result struct {
	A, B, C []time.Duration
	Err     string
}

// worker is a client process started by the coordinator.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

func startWorker(self, relayURL, echoURL, floorURL string, sessions, id int) (*worker, error) {
	cmd := exec.Command(self, "-worker", "-relay-url", relayURL, "-echo-url", echoURL, "-floor-url", floorURL,
		"-floor-pairs", strconv.Itoa(*flagFloorPairs),
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
//	light R C B     R round trips per server (echo, forwarder, relay), B at a time per server, on C clients
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
			var floor [][2]*websocket.Conn
			var pairs int
			if *flagWorkerID == 0 { // the only one measuring light load
				pairs = min(n, *flagFloorPairs)
			}
			floor, err = openFloor(*flagFloorURL, pairs)
			if err == nil {
				if err := reply(result{}, nil); err != nil {
					return err
				}
				return serveCommands(sessions, echoes, floor, reply)
			}
		}
	}
	return reply(result{}, err)
}

func serveCommands(sessions []*session, echoes []*websocket.Conn, floor [][2]*websocket.Conn, reply func(result, error) error) error {
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
			batch := max(1, arg(3))
			units := min(len(sessions), len(floor), len(echoes))
			conc = min(conc, units)
			// batch round trips per client on each server in turn, so that
			// all three see the same moment of a machine shared with other
			// work. Each moves through the same number of connections (relay
			// sessions, forwarder pairs, echo connections), so that each
			// finds them equally cold in the caches.
			for i := range max(1, rounds/conc/batch) {
				off := (i * conc) % (units - conc + 1)
				var e, fl, rl []time.Duration
				if e, err = echoRounds(echoes[off:][:conc], conc*batch, msg); err != nil {
					break
				}
				if fl, err = floorRounds(floor[off:][:conc], conc*batch, echoPayload(msg)); err != nil {
					break
				}
				if rl, err = relayRounds(sessions[off:][:conc], conc*batch); err != nil {
					break
				}
				r.B, r.C, r.A = append(r.B, e...), append(r.C, fl...), append(r.A, rl...)
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
