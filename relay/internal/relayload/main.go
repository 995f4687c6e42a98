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
//
// With -relays R (R > 1) the relays run as a cluster, as several processes
// behind a load balancer would: R `relay serve --store dynamodb
// --cluster-listen` processes sharing one table in dynalite (started here,
// unless -dynamodb-endpoint names an endpoint), with a shared secret in
// their environment. This is how more sessions than one process has file
// descriptors for are held. Each session's initiator connects to one relay
// and its joiner to the next, so every message crosses from one process to
// another, the worst case. The echo baseline then runs as R servers too,
// each holding as many connections as a relay; a one-process relay (memory
// store) is measured alongside at light load; the report sums memory and
// CPU over the relays and gives dynalite's apart, since it stands in for
// DynamoDB, which runs elsewhere. After set-up the run checks that the
// sessions are really held: the relays' open connections add up to 2N, and
// the table has N joined sessions whose two peers are on different relays.
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
	flagFullActive  = flag.Int("full-active", 0, "sessions (and echo connection pairs) exchanging at a time in the full-load phase; 0: all at once")
	flagSize        = flag.Int("size", 512, "bytes of the opaque message string in each send-message")
	flagRelay       = flag.String("relay", "", "relay binary (default: go build ./cmd/relay into a temp dir)")
	flagDialers     = flag.Int("dialers", 32, "connections each worker opens concurrently while setting up")
	flagWorkers     = flag.Int("workers", 4, "client processes (each must fit its connections under RLIMIT_NOFILE)")
	flagRelays      = flag.Int("relays", 1, "relay processes; more than 1 runs them as a cluster (--store dynamodb --cluster-listen) sharing one table in dynalite, each session's peers on two different relays")
	flagDynamoEnd   = flag.String("dynamodb-endpoint", "", "with -relays 2 or more: use this DynamoDB endpoint (e.g. DynamoDB Local) instead of starting dynalite; a fresh table is created and deleted")
	flagDynalite    = flag.String("dynalite", "", "with -relays 2 or more: dynalite's cli.js (default: tools/node_modules/dynalite/cli.js in the module, installed by `make tools`)")
	flagEcho        = flag.String("echo-server", "", "internal: run the echo server, writing its URL to this file")
	flagForwarder   = flag.String("forward-server", "", "internal: run the forwarder baseline, writing its URL to this file")
	flagFloorURL    = flag.String("floor-url", "", "internal: worker's forwarder URL")
	flagFloorPairs  = flag.Int("floor-pairs", 500, "forwarder connection pairs; the light-load phase cycles through this many relay sessions, forwarder pairs and echo connections")
	flagWorker      = flag.Bool("worker", false, "internal: run a client worker (commands on stdin, JSON on stdout)")
	flagRelayURL    = flag.String("relay-url", "", "internal: worker's relay URLs, comma-separated")
	flagEchoURL     = flag.String("echo-url", "", "internal: worker's echo server URLs, comma-separated")
	flagSingleURL   = flag.String("single-url", "", "internal: worker's single-process relay URL (cluster mode)")
	flagWorkerID    = flag.Int("worker-id", 0, "internal: worker number")
)

// relayEnv holds the -relay-env settings.
var relayEnv []string

func init() {
	flag.Func("relay-env", "set `NAME=value` in the relays' environment only, e.g. GOMEMLIMIT=450MiB (repeatable)", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return errors.New("want NAME=value")
		}
		relayEnv = append(relayEnv, v)
		return nil
	})
}

// relayEnviron is the environment of a relay process: this one's, plus
// extra and -relay-env; nil (inherit) if there is nothing to add.
func relayEnviron(extra ...string) []string {
	if len(extra) == 0 && len(relayEnv) == 0 {
		return nil
	}
	return append(append(os.Environ(), extra...), relayEnv...)
}

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
	workers, relays := *flagWorkers, *flagRelays
	if workers < 1 || n < workers {
		return errors.New("need at least one session per worker")
	}
	if relays < 1 {
		return errors.New("-relays must be at least 1")
	}
	if relays == 1 && *flagDynamoEnd != "" {
		return errors.New("-dynamodb-endpoint needs -relays 2 or more (one relay keeps its sessions in memory)")
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
	// Each relay and each echo server holds 2N/R connections; each worker
	// 2N/W relay and 2N/W echo connections. Every process must fit under
	// RLIMIT_NOFILE. In a cluster a relay also holds connections to DynamoDB
	// and to the other relays, as many as it has requests in flight, so
	// every process gets the whole hard limit.
	need := uint64(2*n/relays + 16)
	if relays > 1 {
		need = max(need, hardNoFile())
	}
	if err := raiseNoFile(need); err != nil {
		return err
	}

	// Interrupting the run still stops every server.
	defer stopChildren()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; stopChildren(); os.Exit(130) }()

	// The relay runs with its defaults except: no per-connection rate limit
	// (the benchmark client is far faster than any signer), room for the
	// connections, and pings rare enough that idle benchmark connections,
	// which nobody reads while they are held, are not dropped as dead.
	relayArgs := []string{"--rate", "-1", "--max-connections", strconv.Itoa(2*n + 100),
		"--ping-interval", "30m", "--idle-timeout", "1h", "--log-level", "warn"}
	var (
		relayProcs []*child
		relayURLs  []string
		cl         *clusterRun
		singleURL  string // cluster mode: a one-process relay, for comparison
	)
	if relays == 1 {
		p, url, err := startServer(filepath.Join(tmp, "relay.url"), relayEnviron(), relayBin,
			append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", filepath.Join(tmp, "relay.url")}, relayArgs...)...)
		if err != nil {
			return err
		}
		relayProcs, relayURLs = []*child{p}, []string{url}
	} else {
		// Sessions through DynamoDB take longer to set up and measure than
		// the relay's default 10-minute maximum lifetime allows for.
		relayArgs = append(relayArgs, "--max-ttl", "2h")
		if cl, err = startCluster(tmp, relayBin, relays, relayArgs); err != nil {
			return err
		}
		defer cl.cleanup()
		relayProcs, relayURLs = cl.relays, cl.urls
		if _, singleURL, err = startServer(filepath.Join(tmp, "single.url"), relayEnviron(), relayBin,
			append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", filepath.Join(tmp, "single.url")}, relayArgs...)...); err != nil {
			return err
		}
	}
	var (
		echoProcs []*child
		echoURLs  []string
	)
	for i := range relays { // as many echo servers as relays, holding as many connections each
		f := filepath.Join(tmp, fmt.Sprintf("echo%d.url", i))
		p, url, err := startServer(f, nil, self, "-echo-server", f)
		if err != nil {
			return err
		}
		echoProcs, echoURLs = append(echoProcs, p), append(echoURLs, url)
	}
	_, floorURL, err := startServer(filepath.Join(tmp, "floor.url"), nil, self, "-forward-server", filepath.Join(tmp, "floor.url"), "-size", strconv.Itoa(*flagSize))
	if err != nil {
		return err
	}
	var r runResult
	r.baseRelay, r.baseEcho = rssAll(relayProcs, "VmRSS"), rssAll(echoProcs, "VmRSS")
	if cl != nil && cl.dynalite != nil {
		r.dynBase = rssKiB(cl.dynalite.pid(), "VmRSS")
	}

	if relays == 1 {
		logf("opening %d relay sessions (%d connections) and %d echo connections from %d worker processes", n, 2*n, 2*n, workers)
	} else {
		logf("opening %d relay sessions (%d connections; each session's peers on two different relays of %d) and %d echo connections (on %d echo servers) from %d worker processes",
			n, 2*n, relays, 2*n, relays, workers)
	}
	t0 := time.Now()
	var endProgress func()
	if cl != nil {
		endProgress = every(15*time.Second, func() {
			logf("setting up: %.0f of %d relay connections open after %v", sumMetric(relayURLs, "relay_connections_open"), 2*n, time.Since(t0).Round(time.Second))
		})
	}
	ws := make([]*worker, workers)
	for i := range ws {
		k := n / workers
		if i < n%workers {
			k++
		}
		if ws[i], err = startWorker(self, relayURLs, echoURLs, floorURL, singleURL, k, i); err != nil {
			return err
		}
		defer ws[i].stop()
	}
	for _, w := range ws {
		if _, err := w.await(); err != nil {
			return err
		}
	}
	r.setup = time.Since(t0)
	if endProgress != nil {
		endProgress()
	}
	time.Sleep(time.Second) // let the servers settle before reading memory
	r.held = statsAll(relayURLs)
	r.heldRelay, r.heldEcho = rssAll(relayProcs, "VmRSS"), rssAll(echoProcs, "VmRSS")
	if cl != nil {
		if cl.dynalite != nil {
			r.dynHeld = rssKiB(cl.dynalite.pid(), "VmRSS")
		}
		if r.check, err = cl.verify(n); err != nil {
			return err
		}
		logf("%s", r.check)
	}
	logf("holding after %v: relay RSS %s, echo RSS %s (%s)", r.setup.Round(time.Millisecond), mibList(r.heldRelay), mibList(r.heldEcho), r.held)

	logf("light load: %d round trips per server, %d at a time per server in turn, %d concurrent", *flagRounds, *flagBatch, *flagConcurrency)
	if r.light, err = ws[0].call(fmt.Sprintf("light %d %d %d", *flagRounds, *flagConcurrency, *flagBatch)); err != nil {
		return err
	}

	// full runs cmd(i) on every worker i at once and returns the round
	// trips, the sessions lost, the wall time and the CPU time each of pids
	// used meanwhile.
	full := func(cmd func(i int) string, pids ...int) (lat []time.Duration, lost int, why string, wall time.Duration, cpu []time.Duration, err error) {
		cpu0 := cpuTimes(pids)
		t0 := time.Now()
		for i, w := range ws {
			if err := w.send(cmd(i)); err != nil {
				return nil, 0, "", 0, nil, err
			}
		}
		for _, w := range ws {
			res, err := w.await()
			if err != nil {
				return nil, 0, "", 0, nil, err
			}
			lat, lost = append(lat, res.A...), lost+res.Lost
			if why == "" {
				why = res.Why
			}
		}
		wall = time.Since(t0)
		for i, c := range cpuTimes(pids) {
			cpu = append(cpu, c-cpu0[i])
		}
		return lat, lost, why, wall, cpu, nil
	}
	// active spreads -full-active over the workers (0: everything at once).
	active := func(i int) int {
		if *flagFullActive <= 0 {
			return 0
		}
		k := *flagFullActive / workers
		if i < *flagFullActive%workers {
			k++
		}
		return max(k, 1)
	}
	if *flagFullActive > 0 {
		logf("full load: every session (then every echo connection pair) exchanges %d messages each way, %d at a time", *flagMessages, *flagFullActive)
	} else {
		logf("full load: every session (then every echo connection pair) exchanges %d messages each way at once", *flagMessages)
	}
	relayPids := pids(relayProcs)
	if cl != nil && cl.dynalite != nil {
		relayPids = append(relayPids, cl.dynalite.pid())
	}
	// In a cluster a session the relays close under the load (a delivery
	// between them that times out ends it) is counted and reported; with
	// one relay any failure ends the run, as before.
	tolerant := 0
	var sent0 float64
	if cl != nil {
		tolerant = 1
		sent0 = sumMetric(relayURLs, "relay_cluster_deliveries_sent")
		t0 := time.Now()
		m0 := sumMetric(relayURLs, "relay_messages_relayed_total")
		endProgress = every(15*time.Second, func() {
			logf("full load: %.0f of %d messages relayed after %v", sumMetric(relayURLs, "relay_messages_relayed_total")-m0, 2*n**flagMessages, time.Since(t0).Round(time.Second))
		})
	}
	var relayCPU []time.Duration
	r.fullRelay, r.lost, r.lostWhy, r.relayWall, relayCPU, err = full(func(i int) string {
		return fmt.Sprintf("full-relay %d %d %d", *flagMessages, active(i), tolerant)
	}, relayPids...)
	if endProgress != nil {
		endProgress()
	}
	if err != nil {
		return err
	}
	if cl != nil {
		r.deliveries = sumMetric(relayURLs, "relay_cluster_deliveries_sent") - sent0
	}
	var echoCPU []time.Duration
	if r.fullEcho, _, _, r.echoWall, echoCPU, err = full(func(i int) string {
		return fmt.Sprintf("full-echo %d %d", *flagMessages, active(i))
	}, pids(echoProcs)...); err != nil {
		return err
	}
	r.relayCPU, r.echoCPU = sum(relayCPU[:relays]), sum(echoCPU)
	if len(relayCPU) > relays {
		r.dynCPU = relayCPU[relays]
	}
	r.after = statsAll(relayURLs)
	r.peakRelay, r.peakEcho = rssAll(relayProcs, "VmHWM"), rssAll(echoProcs, "VmHWM")
	if cl != nil && cl.dynalite != nil {
		r.dynPeak = rssKiB(cl.dynalite.pid(), "VmHWM")
	}
	if relays == 1 {
		fmt.Print(r.report(n, workers))
	} else {
		fmt.Print(r.reportCluster(n, workers, relays, cl.dynalite != nil))
	}
	return nil
}

// runResult is what run measured, for the report.
type runResult struct {
	setup                           time.Duration
	light                           result
	fullRelay, fullEcho             []time.Duration
	relayWall, echoWall             time.Duration
	relayCPU, echoCPU, dynCPU       time.Duration // summed over processes
	baseRelay, heldRelay, peakRelay []int64       // KiB, one per relay process
	baseEcho, heldEcho, peakEcho    []int64       // KiB, one per echo server
	dynBase, dynHeld, dynPeak       int64         // KiB, dynalite's (cluster mode)
	held, after                     string        // relay counters
	check                           string        // cluster mode: what verify found
	deliveries                      float64       // cluster mode: cross-process deliveries during the full load
	lost                            int           // cluster mode: sessions that failed during the full load
	lostWhy                         string        // how the first of them failed
}

// report is the one-relay report.
func (r *runResult) report(n, workers int) string {
	pe, pf, pw := pct(r.light.B), pct(r.light.A), pct(r.light.C)
	qe, qf := pct(r.fullEcho), pct(r.fullRelay)
	relayMsgs, echoMsgs := len(r.fullRelay), len(r.fullEcho)
	relayRate, echoRate := float64(relayMsgs)/r.relayWall.Seconds(), float64(echoMsgs)/r.echoWall.Seconds()
	baseRelay, baseEcho := r.baseRelay[0], r.baseEcho[0]
	heldRelay, heldEcho := r.heldRelay[0], r.heldEcho[0]
	peakRelay, peakEcho := r.peakRelay[0], r.peakEcho[0]
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
	fmt.Fprintf(&b, "| full load (%s) messages/s | %.0f | %.0f | %.2f |\n", fullLabel(), relayRate, echoRate, relayRate/echoRate)
	fmt.Fprintf(&b, "| full load server CPU per message | %s | %s | %.2f |\n", us(r.relayCPU/time.Duration(relayMsgs)), us(r.echoCPU/time.Duration(echoMsgs)),
		ratio(r.relayCPU/time.Duration(relayMsgs), r.echoCPU/time.Duration(echoMsgs)))
	fmt.Fprintf(&b, "| full load round trip p50 / p99 | %s / %s | %s / %s | %.2f / %.2f |\n", us(qf.p50), us(qf.p99), us(qe.p50), us(qe.p99), ratio(qf.p50, qe.p50), ratio(qf.p99, qe.p99))
	fmt.Fprintf(&b, "\nset up in %v; relay while holding: %s; after: %s\n", r.setup.Round(time.Millisecond), r.held, r.after)
	return b.String()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// child is a server process started by the coordinator.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	// backing is set on a server the others depend on (dynalite): it is
	// stopped after them, so that they can shut down cleanly.
	backing bool
}

// children are all the servers started, in order, so that an interrupted
// run can stop them.
var children struct {
	sync.Mutex
	list []*child
}

func startChild(cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	children.Lock()
	children.list = append(children.list, c)
	children.Unlock()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop interrupts the process and waits for it, killing it after 15 s.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// stopChildren stops every server started so far, all at once, then the
// backing ones.
func stopChildren() {
	children.Lock()
	list := children.list
	children.list = nil
	children.Unlock()
	for _, backing := range []bool{false, true} {
		var wg sync.WaitGroup
		for _, c := range list {
			if c.backing == backing {
				wg.Go(c.stop)
			}
		}
		wg.Wait()
	}
}

// startServer starts bin with args (and env, if not nil) and waits until it
// has written its URL to urlFile.
func startServer(urlFile string, env []string, bin string, args ...string) (*child, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	c, err := startChild(cmd)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(urlFile); err == nil && len(b) > 0 {
			return c, strings.TrimSpace(string(b)), nil
		}
		select {
		case <-c.exited:
			return nil, "", fmt.Errorf("%s %s exited before it was ready", bin, args[0])
		case <-time.After(25 * time.Millisecond):
		}
	}
	c.stop()
	return nil, "", fmt.Errorf("%s did not start", bin)
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

// openSessions opens n sessions, each created and joined. Session i's
// initiator connects to urls[i%len(urls)] and its joiner to the next URL, so
// that with several relay processes every session spans two of them and
// every message crosses from one process to another (with one URL both
// peers use it).
func openSessions(urls []string, n, worker int) ([]*session, error) {
	out := make([]*session, n)
	err := parallel(n, *flagDialers, func(i int) error {
		s := &session{id: fmt.Sprintf("load-session-%02d-%08d-%s", worker, i, wire.NewRequestID()[:8])}
		var err error
		if s.a, err = dial(urls[i%len(urls)]); err != nil {
			return err
		}
		if s.b, err = dial(urls[(i+1)%len(urls)]); err != nil {
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

// openEchoes opens n echo connections spread evenly over urls.
func openEchoes(urls []string, n int) ([]*websocket.Conn, error) {
	out := make([]*websocket.Conn, n)
	err := parallel(n, *flagDialers, func(i int) (err error) {
		out[i], err = dial(urls[i%len(urls)])
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

// relayAll drives the sessions: each does `messages` exchanges in each
// direction, `active` sessions at a time (0: all at once). With tolerant
// set, a session that fails (the relay closed it, say) is counted in
// lost, with the first such error in why, and the others carry on;
// otherwise the first failure ends the phase.
func relayAll(ss []*session, messages, active int, tolerant bool) (lat []time.Duration, lost int, why string, err error) {
	var c collector
	var mu sync.Mutex
	if active <= 0 {
		active = len(ss)
	}
	err = parallel(len(ss), active, func(i int) error {
		s := ss[i]
		for range messages {
			for _, dir := range [2][2]*websocket.Conn{{s.a, s.b}, {s.b, s.a}} {
				f, err := exchange(dir[0], dir[1], s.send[0])
				if err != nil && tolerant {
					mu.Lock()
					if lost++; why == "" {
						why = err.Error()
					}
					mu.Unlock()
					return nil
				}
				if err != nil {
					return err
				}
				c.add(f, 0)
			}
		}
		return nil
	})
	return c.a, lost, why, err
}

// echoAll drives the echo connections as relayAll drives the sessions, in
// pairs, `active` pairs at a time (0: all at once).
func echoAll(ws []*websocket.Conn, messages int, msg string, active int) ([]time.Duration, error) {
	var c collector
	payload := echoPayload(msg)
	if active <= 0 {
		active = len(ws) / 2
	}
	// Pairs of connections take turns, as the two peers of a session do.
	err := parallel(len(ws)/2, active, func(i int) error {
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
		for _, k := range []string{"relay_connections_open ", "relay_sessions_stored ", "relay_messages_relayed_total ", "relay_errors_total{",
			"relay_cluster_deliveries_sent ", "relay_cluster_deliveries_failed "} {
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

// statsAll returns stats for each relay, separated by " | ".
func statsAll(urls []string) string {
	var out []string
	for _, u := range urls {
		out = append(out, stats(u))
	}
	return strings.Join(out, " | ")
}

// sumMetric adds up one unlabelled metric over the relays' /metrics; a relay
// that does not export it counts 0.
func sumMetric(urls []string, name string) float64 {
	var total float64
	for _, u := range urls {
		resp, err := http.Get("http" + strings.TrimPrefix(u, "ws") + "metrics")
		if err != nil {
			continue
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(buf.String(), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				total += f
			}
		}
	}
	return total
}

// every calls fn every d until the returned function is called.
func every(d time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// hardNoFile returns the hard RLIMIT_NOFILE.
func hardNoFile() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Max
}

func pids(cs []*child) []int {
	var out []int
	for _, c := range cs {
		out = append(out, c.pid())
	}
	return out
}

// rssAll reads one /proc/PID/status field of each process.
func rssAll(cs []*child, field string) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, rssKiB(c.pid(), field))
	}
	return out
}

func cpuTimes(pids []int) []time.Duration {
	var out []time.Duration
	for _, p := range pids {
		out = append(out, cpuTime(p))
	}
	return out
}

func sum[T int64 | time.Duration](v []T) T {
	var t T
	for _, x := range v {
		t += x
	}
	return t
}

// mibList formats sizes in KiB as "405 MiB" or "405 + 407 MiB".
func mibList(kib []int64) string {
	var out []string
	for _, k := range kib {
		out = append(out, fmt.Sprintf("%.0f", float64(k)/1024))
	}
	return strings.Join(out, " + ") + " MiB"
}

// mibSum formats sizes in KiB as their sum, with the parts if there are
// several: "812 MiB (405 + 407)".
func mibSum(kib []int64) string {
	if len(kib) == 1 {
		return mib(kib[0])
	}
	return fmt.Sprintf("%s (%s)", mib(sum(kib)), strings.TrimSuffix(mibList(kib), " MiB"))
}

// fullLabel says how many sessions the full-load phase drives at a time.
func fullLabel() string {
	if *flagFullActive > 0 {
		return fmt.Sprintf("%d at a time", *flagFullActive)
	}
	return "all at once"
}
