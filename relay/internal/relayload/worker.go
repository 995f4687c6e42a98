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
// for "light" also B, the echo server's, C, the forwarder's, and in cluster
// mode D, the single-process relay's), or an error.
type result struct {
	A, B, C, D []time.Duration
	// Lost counts the sessions that failed during a tolerant full-relay,
	// Why says how the first one did.
	Lost int
	Why  string
	Err  string
}

// worker is a client process started by the coordinator.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// startWorker starts a client process. relayURLs and echoURLs list one URL
// per relay (echo server) process; singleURL, in cluster mode, is the
// single-process relay measured alongside at light load.
func startWorker(self string, relayURLs, echoURLs []string, floorURL, singleURL string, sessions, id int) (*worker, error) {
	cmd := exec.Command(self, "-worker", "-relay-url", strings.Join(relayURLs, ","), "-echo-url", strings.Join(echoURLs, ","),
		"-floor-url", floorURL, "-single-url", singleURL,
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
//	light R C B       R round trips per server (echo, forwarder, relay, and in cluster
//	                  mode the one-process relay), B at a time per server, on C clients
//	full-relay M A T  every session exchanges M messages each way, A sessions at a time
//	                  (0: all at once); T=1: count failed sessions and carry on
//	full-echo M A     every echo connection pair does the same
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
	sessions, err := openSessions(strings.Split(*flagRelayURL, ","), n, *flagWorkerID)
	if err == nil {
		var echoes []*websocket.Conn
		echoes, err = openEchoes(strings.Split(*flagEchoURL, ","), 2*n)
		if err == nil {
			var floor [][2]*websocket.Conn
			var single []*session
			var pairs int
			if *flagWorkerID == 0 { // the only one measuring light load
				pairs = min(n, *flagFloorPairs)
			}
			floor, err = openFloor(*flagFloorURL, pairs)
			if err == nil && *flagSingleURL != "" && pairs > 0 {
				single, err = openSessions([]string{*flagSingleURL}, pairs, *flagWorkerID)
			}
			if err == nil {
				if err := reply(result{}, nil); err != nil {
					return err
				}
				return serveCommands(sessions, echoes, floor, single, reply)
			}
		}
	}
	return reply(result{}, err)
}

// serveCommands runs the coordinator's commands. single is empty unless the
// relays run as a cluster; then it holds sessions on a one-process relay,
// measured at light load next to the cluster.
func serveCommands(sessions []*session, echoes []*websocket.Conn, floor [][2]*websocket.Conn, single []*session, reply func(result, error) error) error {
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
			if len(single) > 0 {
				units = min(units, len(single))
			}
			conc = min(conc, units)
			// batch round trips per client on each server in turn, so that
			// all of them see the same moment of a machine shared with other
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
				if len(single) > 0 {
					var sl []time.Duration
					if sl, err = relayRounds(single[off:][:conc], conc*batch); err != nil {
						break
					}
					r.D = append(r.D, sl...)
				}
			}
		case "full-relay":
			r.A, r.Lost, r.Why, err = relayAll(sessions, arg(1), arg(2), arg(3) == 1)
		case "full-echo":
			r.A, err = echoAll(echoes, arg(1), msg, arg(2))
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err := reply(r, err); err != nil {
			return err
		}
	}
	return sc.Err()
}
