// Command relayload is the relay's load test. It is not part of `go test`:
// run it by hand (see docs/benchmarks.md for the command and the figures).
//
// It starts `relay serve`, a bare gorilla/websocket echo server and a
// forwarder floor (a bare server writing the same two frames per message as
// the relay, and nothing else) as separate processes, so each one's memory
// and CPU can be read from /proc, then:
//
//  1. holds N relay sessions (2N websocket connections, each session created
//     and joined) and 2N idle echo connections, and records each server's RSS;
//     the clients run in several worker processes (-workers), because each
//     process must fit its sockets under RLIMIT_NOFILE;
//  2. measures round trips at light load on the three servers in turn
//     (-batch round trips each; 1 by default, so that each server is idle
//     between messages), each cycling through the same number of
//     connections: a relay round trip is a send-message from one peer until
//     the other peer has the peer-message (one pass client -> server ->
//     client, like one echo); the sender's ack is then read too;
//  3. drives every session (and every echo connection) at once for a few
//     exchanges and reports messages/s and round trips under that load;
//  4. reports each server's peak RSS (VmHWM).
//
// Clients and servers share the machine's cores, as they would in any
// single-box test, so absolute figures are pessimistic; ratios to the
// baselines measured in the same run are the meaningful numbers
// (docs/benchmarks.md explains them).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/protocol/wire"
)

var (
	flagSessions    = flag.Int("sessions", 10000, "relay sessions to hold (2 connections each); the echo server gets as many connections")
	flagRounds      = flag.Int("rounds", 3000, "round trips measured at light load, per server")
	flagConcurrency = flag.Int("concurrency", 1, "concurrent clients during the light-load measurement")
	flagBatch       = flag.Int("batch", 1, "light load: round trips each client makes on one server before the next server's turn (1: servers idle between messages, as at light load; large: back-to-back, caches and threads warm)")
	flagMessages    = flag.Int("messages", 10, "exchanges per session (and per echo connection pair) in the full-load phase")
	flagSize        = flag.Int("size", 512, "bytes of the opaque message string in each send-message")
	flagRelay       = flag.String("relay", "", "relay binary (default: go build ./cmd/relay into a temp dir)")
	flagDialers     = flag.Int("dialers", 32, "connections each worker opens concurrently while setting up")
	flagWorkers     = flag.Int("workers", 4, "client processes (each must fit its connections under RLIMIT_NOFILE)")
	flagEcho        = flag.String("echo-server", "", "internal: run the echo server, writing its URL to this file")
	flagForwarder   = flag.String("forward-server", "", "internal: run the forwarder baseline, writing its URL to this file")
	flagFloorURL    = flag.String("floor-url", "", "internal: worker's forwarder URL")
	flagFloorPairs  = flag.Int("floor-pairs", 500, "forwarder connection pairs; the light-load phase cycles through this many relay sessions, forwarder pairs and echo connections")
	flagWorker      = flag.Bool("worker", false, "internal: run a client worker (commands on stdin, JSON on stdout)")
	flagRelayURL    = flag.String("relay-url", "", "internal: worker's relay URL")
	flagEchoURL     = flag.String("echo-url", "", "internal: worker's echo server URL")
	flagWorkerID    = flag.Int("worker-id", 0, "internal: worker number")
)

func main() {
	flag.Parse()
	if *flagEcho != "" {
		runEcho(*flagEcho)
		return
	}
	if *flagForwarder != "" {
		runForwarder(*flagForwarder, *flagSize)
		return
	}
	if *flagWorker {
		if err := runWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "relayload worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "relayload:", err)
		os.Exit(1)
	}
}

// raiseNoFile lifts RLIMIT_NOFILE (children inherit it): each side of 2N
// relay and 2N echo connections needs a descriptor.
func raiseNoFile(need uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= need {
		return nil
	}
	want := syscall.Rlimit{Cur: need, Max: max(need, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not privileged: go as high as the hard limit allows.
		want = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err2 != nil || l.Max < need {
			return fmt.Errorf("need %d file descriptors, hard limit is %d (%v); raise `ulimit -n` or run as root", need, l.Max, err)
		}
	}
	return nil
}

func run() error {
	n := *flagSessions
	workers := *flagWorkers
	if workers < 1 || n < workers {
		return errors.New("need at least one session per worker")
	}
	tmp, err := os.MkdirTemp("", "relayload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	relayBin := *flagRelay
	if relayBin == "" {
		relayBin = filepath.Join(tmp, "relay")
		logf("building relay")
		cmd := exec.Command("go", "build", "-o", relayBin, "github.com/farsign/farsign/cmd/relay")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building relay: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Each server holds 2N connections; each worker 2N/W relay and 2N/W echo
	// connections. Every process must fit under RLIMIT_NOFILE.
	if err := raiseNoFile(uint64(2*n + 16)); err != nil {
		return err
	}

	// The relay runs with its defaults except: no per-connection rate limit
	// (the benchmark client is far faster than any signer), room for the
	// connections, and pings rare enough that idle benchmark connections,
	// which nobody reads while they are held, are not dropped as dead.
	relayProc, relayURL, err := startServer(filepath.Join(tmp, "relay.url"), relayBin, "serve",
		"--listen", "127.0.0.1:0", "--addr-file", filepath.Join(tmp, "relay.url"),
		"--rate", "-1", "--max-connections", strconv.Itoa(2*n+100),
		"--ping-interval", "30m", "--idle-timeout", "1h", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer stop(relayProc)
	echoProc, echoURL, err := startServer(filepath.Join(tmp, "echo.url"), self, "-echo-server", filepath.Join(tmp, "echo.url"))
	if err != nil {
		return err
	}
	defer stop(echoProc)
	floorProc, floorURL, err := startServer(filepath.Join(tmp, "floor.url"), self, "-forward-server", filepath.Join(tmp, "floor.url"), "-size", strconv.Itoa(*flagSize))
	if err != nil {
		return err
	}
	defer stop(floorProc)
	baseRelay, baseEcho := rssKiB(relayProc.Process.Pid, "VmRSS"), rssKiB(echoProc.Process.Pid, "VmRSS")

	// Interrupting the run still stops both servers.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; stop(relayProc); stop(echoProc); stop(floorProc); os.Exit(130) }()

	logf("opening %d relay sessions (%d connections) and %d echo connections from %d worker processes", n, 2*n, 2*n, workers)
	t0 := time.Now()
	ws := make([]*worker, workers)
	for i := range ws {
		k := n / workers
		if i < n%workers {
			k++
		}
		if ws[i], err = startWorker(self, relayURL, echoURL, floorURL, k, i); err != nil {
			return err
		}
		defer ws[i].stop()
	}
	for _, w := range ws {
		if _, err := w.await(); err != nil {
			return err
		}
	}
	setup := time.Since(t0)
	time.Sleep(time.Second) // let both servers settle before reading memory
	held := stats(relayURL)
	heldRelay, heldEcho := rssKiB(relayProc.Process.Pid, "VmRSS"), rssKiB(echoProc.Process.Pid, "VmRSS")
	logf("holding after %v: relay RSS %d MiB (%s), echo RSS %d MiB", setup.Round(time.Millisecond), heldRelay>>10, held, heldEcho>>10)

	logf("light load: %d round trips per server, %d at a time per server in turn, %d concurrent", *flagRounds, *flagBatch, *flagConcurrency)
	light, err := ws[0].call(fmt.Sprintf("light %d %d %d", *flagRounds, *flagConcurrency, *flagBatch))
	if err != nil {
		return err
	}

	full := func(cmd string, pid int) (lat []time.Duration, wall, cpu time.Duration, err error) {
		cpu0 := cpuTime(pid)
		t0 := time.Now()
		for _, w := range ws {
			if err := w.send(cmd); err != nil {
				return nil, 0, 0, err
			}
		}
		for _, w := range ws {
			r, err := w.await()
			if err != nil {
				return nil, 0, 0, err
			}
			lat = append(lat, r.A...)
		}
		return lat, time.Since(t0), cpuTime(pid) - cpu0, nil
	}
	logf("full load: every session (then every echo connection pair) exchanges %d messages each way at once", *flagMessages)
	fullRelay, relayWall, relayCPU, err := full(fmt.Sprintf("full-relay %d", *flagMessages), relayProc.Process.Pid)
	if err != nil {
		return err
	}
	fullEcho, echoWall, echoCPU, err := full(fmt.Sprintf("full-echo %d", *flagMessages), echoProc.Process.Pid)
	if err != nil {
		return err
	}
	relayMsgs, echoMsgs := len(fullRelay), len(fullEcho)
	after := stats(relayURL)
	peakRelay, peakEcho := rssKiB(relayProc.Process.Pid, "VmHWM"), rssKiB(echoProc.Process.Pid, "VmHWM")

	pe, pf, pw := pct(light.B), pct(light.A), pct(light.C)
	qe, qf := pct(fullEcho), pct(fullRelay)
	relayRate, echoRate := float64(relayMsgs)/relayWall.Seconds(), float64(echoMsgs)/echoWall.Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "relayload: %d sessions held (%d relay connections; the echo server holds %d), %d-byte messages, %d CPUs, %d client processes\n\n",
		n, 2*n, 2*n, *flagSize, numCPU(), workers)
	fmt.Fprintf(&b, "| measure | relay | echo baseline | relay / echo |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| RSS at start | %s | %s | |\n", mib(baseRelay), mib(baseEcho))
	fmt.Fprintf(&b, "| RSS holding %d sessions / %d echo connections | %s | %s | %.2f |\n", n, 2*n, mib(heldRelay), mib(heldEcho), float64(heldRelay)/float64(heldEcho))
	fmt.Fprintf(&b, "| peak RSS (VmHWM), whole run | %s | %s | %.2f |\n", mib(peakRelay), mib(peakEcho), float64(peakRelay)/float64(peakEcho))
	fmt.Fprintf(&b, "| light load (%d client, batch %d) round trip p50 | %s | %s | %.2f |\n", *flagConcurrency, *flagBatch, us(pf.p50), us(pe.p50), ratio(pf.p50, pe.p50))
	fmt.Fprintf(&b, "| light load round trip p99 | %s | %s | %.2f |\n", us(pf.p99), us(pe.p99), ratio(pf.p99, pe.p99))
	fmt.Fprintf(&b, "| light load p50, forwarder floor (same frames, no relay logic) | %s | %s | %.2f |\n", us(pw.p50), us(pe.p50), ratio(pw.p50, pe.p50))
	fmt.Fprintf(&b, "| light load p50, relay / forwarder floor | | | %.2f |\n", ratio(pf.p50, pw.p50))
	fmt.Fprintf(&b, "| full load (all at once) messages/s | %.0f | %.0f | %.2f |\n", relayRate, echoRate, relayRate/echoRate)
	fmt.Fprintf(&b, "| full load server CPU per message | %s | %s | %.2f |\n", us(relayCPU/time.Duration(relayMsgs)), us(echoCPU/time.Duration(echoMsgs)),
		ratio(relayCPU/time.Duration(relayMsgs), echoCPU/time.Duration(echoMsgs)))
	fmt.Fprintf(&b, "| full load round trip p50 / p99 | %s / %s | %s / %s | %.2f / %.2f |\n", us(qf.p50), us(qf.p99), us(qe.p50), us(qe.p99), ratio(qf.p50, qe.p50), ratio(qf.p99, qe.p99))
	fmt.Fprintf(&b, "\nset up in %v; relay while holding: %s; after: %s\n", setup.Round(time.Millisecond), held, after)
	fmt.Print(b.String())
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func startServer(urlFile, bin string, args ...string) (*exec.Cmd, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for range 400 {
		if b, err := os.ReadFile(urlFile); err == nil && len(b) > 0 {
			return cmd, strings.TrimSpace(string(b)), nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop(cmd)
	return nil, "", fmt.Errorf("%s did not start", bin)
}

func stop(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// dialer spreads client connections over 127.0.0.2-127.0.0.61 so that 40,000
// of them do not run out of ephemeral ports on one source address.
var (
	dialSeq atomic.Uint64
	dialer  = &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			ip := net.IPv4(127, 0, 0, byte(2+dialSeq.Add(1)%60))
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 30 * time.Second}
			return d.Dial(network, addr)
		},
	}
)

func dial(url string) (*websocket.Conn, error) {
	var err error
	for attempt := range 5 {
		var ws *websocket.Conn
		var resp *http.Response
		ws, resp, err = dialer.Dial(url, nil)
		if err == nil {
			resp.Body.Close()
			return ws, nil
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	return nil, err
}

// parallel runs fn(i) for i in [0,n) on `workers` goroutines, stopping at the
// first error.
func parallel(n, workers int, fn func(i int) error) error {
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error
		failed atomic.Bool
	)
	for range min(workers, n) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}

type session struct {
	id   string
	a, b *websocket.Conn
	send [2][]byte // pre-encoded send-message for a and b
}

func expectType(ws *websocket.Conn, typ string) error {
	_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if !bytes.Contains(msg, []byte(`"type":"`+typ+`"`)) {
		return fmt.Errorf("got %s, want %s", msg, typ)
	}
	return nil
}

func openSessions(url string, n, worker int) ([]*session, error) {
	out := make([]*session, n)
	err := parallel(n, *flagDialers, func(i int) error {
		s := &session{id: fmt.Sprintf("load-session-%02d-%08d-%s", worker, i, wire.NewRequestID()[:8])}
		var err error
		if s.a, err = dial(url); err != nil {
			return err
		}
		if s.b, err = dial(url); err != nil {
			return err
		}
		create, _ := wire.EncodeRequest("c", wire.APICreateSession, wire.CreateSession{SessionID: s.id})
		if err := s.a.WriteMessage(websocket.TextMessage, create); err != nil {
			return err
		}
		if err := expectType(s.a, wire.TypeSessionCreated); err != nil {
			return err
		}
		ctx := "WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="
		join, _ := wire.EncodeRequest("j", wire.APIJoinSession, wire.JoinSession{SessionID: s.id, Context: &ctx})
		if err := s.b.WriteMessage(websocket.TextMessage, join); err != nil {
			return err
		}
		if err := expectType(s.b, wire.TypeSessionJoined); err != nil {
			return err
		}
		if err := expectType(s.a, wire.TypeSessionJoined); err != nil {
			return err
		}
		msg := strings.Repeat("A", *flagSize)
		s.send[0], _ = wire.EncodeRequest("m", wire.APISendMessage, wire.SendMessage{SessionID: s.id, Message: msg})
		s.send[1] = s.send[0]
		out[i] = s
		return nil
	})
	return out, err
}

func openEchoes(url string, n int) ([]*websocket.Conn, error) {
	out := make([]*websocket.Conn, n)
	err := parallel(n, *flagDialers, func(i int) (err error) {
		out[i], err = dial(url)
		return err
	})
	return out, err
}

// exchange sends one message from one peer to the other through the relay
// and returns the time until the peer had it. The sender's ack is read
// afterwards (it is queued before the forward but written after it, so it
// is never on the forwarded message's path); its latency is not measured,
// since a client reading one socket cannot time both.
func exchange(from, to *websocket.Conn, msg []byte) (fwd time.Duration, err error) {
	t0 := time.Now()
	if err = from.WriteMessage(websocket.TextMessage, msg); err != nil {
		return
	}
	if err = expectType(to, wire.TypePeerMessage); err != nil {
		return
	}
	fwd = time.Since(t0)
	err = expectType(from, wire.TypeMessageSent)
	return
}

func echoOnce(ws *websocket.Conn, msg []byte) (time.Duration, error) {
	t0 := time.Now()
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return 0, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, got, err := ws.ReadMessage()
	if err != nil {
		return 0, err
	}
	if len(got) != len(msg) {
		return 0, errors.New("echo mismatch")
	}
	return time.Since(t0), nil
}

type collector struct {
	mu   sync.Mutex
	a, b []time.Duration
}

func (c *collector) add(a, b time.Duration) {
	c.mu.Lock()
	c.a = append(c.a, a)
	c.b = append(c.b, b)
	c.mu.Unlock()
}

func relayRounds(ss []*session, rounds int) ([]time.Duration, error) {
	var c collector
	err := parallel(len(ss), len(ss), func(i int) error {
		s := ss[i]
		for r := range rounds / len(ss) {
			from, to := s.a, s.b
			if r%2 == 1 {
				from, to = s.b, s.a
			}
			f, err := exchange(from, to, s.send[0])
			if err != nil {
				return err
			}
			c.add(f, 0)
		}
		return nil
	})
	return c.a, err
}

// openFloor opens n pairs of connections to the forwarder baseline.
func openFloor(url string, n int) ([][2]*websocket.Conn, error) {
	out := make([][2]*websocket.Conn, n)
	for i := range out {
		for j := range 2 {
			ws, err := dial(url)
			if err != nil {
				return nil, err
			}
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, "pair %d-%d", os.Getpid(), i)); err != nil {
				return nil, err
			}
			out[i][j] = ws
		}
	}
	return out, nil
}

// floorRounds measures the forwarder like relayRounds measures the relay.
func floorRounds(pairs [][2]*websocket.Conn, rounds int, msg []byte) ([]time.Duration, error) {
	var c collector
	err := parallel(len(pairs), len(pairs), func(i int) error {
		for r := range rounds / len(pairs) {
			from, to := pairs[i][0], pairs[i][1]
			if r%2 == 1 {
				from, to = to, from
			}
			f, err := exchange(from, to, msg)
			if err != nil {
				return err
			}
			c.add(f, 0)
		}
		return nil
	})
	return c.a, err
}

func echoRounds(ws []*websocket.Conn, rounds int, msg string) ([]time.Duration, error) {
	var c collector
	payload := echoPayload(msg)
	err := parallel(len(ws), len(ws), func(i int) error {
		for range rounds / len(ws) {
			d, err := echoOnce(ws[i], payload)
			if err != nil {
				return err
			}
			c.add(d, 0)
		}
		return nil
	})
	return c.a, err
}

// echoPayload is a message of the same size as the relay's send-message.
func echoPayload(msg string) []byte {
	b, _ := wire.EncodeRequest("m", wire.APISendMessage, wire.SendMessage{SessionID: fmt.Sprintf("load-session-%02d-%08d-%s", 0, 0, "abcdefgh"), Message: msg})
	return b
}

// relayAll drives every session at once: each does `messages` exchanges in
// each direction.
func relayAll(ss []*session, messages int) ([]time.Duration, error) {
	var c collector
	err := parallel(len(ss), len(ss), func(i int) error {
		s := ss[i]
		for range messages {
			for _, dir := range [2][2]*websocket.Conn{{s.a, s.b}, {s.b, s.a}} {
				f, err := exchange(dir[0], dir[1], s.send[0])
				if err != nil {
					return err
				}
				c.add(f, 0)
			}
		}
		return nil
	})
	return c.a, err
}

func echoAll(ws []*websocket.Conn, messages int, msg string) ([]time.Duration, error) {
	var c collector
	payload := echoPayload(msg)
	// Pairs of connections take turns, as the two peers of a session do.
	err := parallel(len(ws)/2, len(ws)/2, func(i int) error {
		for range messages {
			for _, w := range []*websocket.Conn{ws[2*i], ws[2*i+1]} {
				d, err := echoOnce(w, payload)
				if err != nil {
					return err
				}
				c.add(d, 0)
			}
		}
		return nil
	})
	return c.a, err
}

type percentiles struct{ p50, p99 time.Duration }

func pct(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return percentiles{s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]}
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
func mib(kib int64) string      { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

// rssKiB reads a VmRSS/VmHWM line of /proc/PID/status.
func rssKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

// cpuTime returns a process's user+system CPU time from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// stats returns a few relay counters from /metrics.
func stats(url string) string {
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws") + "metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var out []string
	for _, line := range strings.Split(buf.String(), "\n") {
		for _, k := range []string{"relay_connections_open ", "relay_sessions_stored ", "relay_messages_relayed_total ", "relay_errors_total{"} {
			if strings.HasPrefix(line, k) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, ", ")
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
