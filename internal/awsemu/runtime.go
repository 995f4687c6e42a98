// Package awsemu is a test-only emulation of the two AWS interfaces the relay's
// Lambda deployment talks to, built from AWS's published descriptions of them:
//
//   - the Lambda Runtime API (GET /2018-06-01/runtime/invocation/next, POST
//     .../invocation/{id}/response, .../invocation/{id}/error and
//     /2018-06-01/runtime/init/error), served to a real `bootstrap` binary that runs
//     as a child process with AWS_LAMBDA_RUNTIME_API pointing at it;
//   - an API Gateway websocket API: it accepts websocket clients over TLS, turns
//     their frames into $connect / $default / $disconnect
//     APIGatewayWebsocketProxyRequest events, invokes the function with them, and
//     serves the @connections management endpoint (POST, DELETE, GET
//     /{stage}/@connections/{id}; 410 GoneException for unknown connections) that
//     the SDK's PostToConnection and DeleteConnection call.
//
// It exists so the end-to-end test runs the exact binary Terraform deploys, with the
// exact SDK calls, on one machine. It implements only what the relay uses, and
// nothing AWS does not document.
package awsemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/farsign/farsign/internal/testenv"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// maxPayload is Lambda's synchronous invocation payload limit (request and
// response), 6 MB.
const maxPayload = 6 << 20

// FunctionError is returned by Invoke when the function reported an error
// (POST .../error), or its process died during the invocation.
type FunctionError struct {
	Type    string // errorType, e.g. "Runtime.ExitError"
	Message string // errorMessage
}

func (e *FunctionError) Error() string { return "lambda: " + e.Type + ": " + e.Message }

// RuntimeOptions configure StartRuntime.
type RuntimeOptions struct {
	// Bootstrap is the path of the executable to run (required).
	Bootstrap string
	// Env is added to the function's environment, after the variables Lambda
	// itself sets (AWS_LAMBDA_RUNTIME_API, AWS_REGION, credentials, ...).
	Env []string
	// Instances is how many execution environments (processes) serve
	// invocations concurrently; 0 means 1. Like Lambda, each one handles one
	// invocation at a time.
	Instances int
	// Timeout is the function timeout (default 10 s), given to the function as
	// its deadline.
	Timeout time.Duration
	// Region and FunctionName (defaults "us-east-1", "relay").
	Region, FunctionName string
}

// Runtime is a running Lambda Runtime API emulation and the function processes it
// serves.
type Runtime struct {
	opts  RuntimeOptions
	queue chan *invocation

	mu       sync.Mutex
	inflight map[string]*invocation
	initErr  *FunctionError
	logs     []string
	seq      atomic.Int64
	polling  atomic.Int32 // instances waiting in GET .../next

	alive   int           // processes still running
	changed chan struct{} // closed and replaced when initErr or alive changes

	stopped chan struct{} // closed when stop has finished
	procs   []*exec.Cmd
	servers []*http.Server
	done    chan struct{}
	wg      sync.WaitGroup
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	result   chan result
	once     sync.Once
}

type result struct {
	body []byte
	err  error
}

func (inv *invocation) finish(r result) { inv.once.Do(func() { inv.result <- r }) }

// StartRuntime starts opts.Instances copies of the bootstrap binary, each with its
// own Runtime API endpoint on a loopback port, and stops them when the test ends.
func StartRuntime(t testing.TB, opts RuntimeOptions) *Runtime {
	t.Helper()
	if opts.Instances <= 0 {
		opts.Instances = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.FunctionName == "" {
		opts.FunctionName = "relay"
	}
	r := &Runtime{
		opts:     opts,
		queue:    make(chan *invocation),
		inflight: map[string]*invocation{},
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	t.Cleanup(r.stop)
	for i := range opts.Instances {
		if err := r.startInstance(i); err != nil {
			t.Fatalf("awsemu: starting function instance %d: %v", i, err)
		}
	}
	return r
}

func (r *Runtime) startInstance(i int) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, req *http.Request) { r.next(w, req, i) })
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", r.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", r.invocationError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", r.initError)
	srv := &http.Server{Handler: mux}
	r.servers = append(r.servers, srv)
	go func() { _ = srv.Serve(l) }()

	env := r.env(i, l.Addr().String())
	cmd, out, err := r.spawn(env)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.alive++
	r.procs = append(r.procs, cmd)
	r.mu.Unlock()
	r.wg.Add(1)
	go r.supervise(i, env, cmd, out)
	return nil
}

// env is the environment of instance i: only what Lambda documents, not the
// host's, then RuntimeOptions.Env.
func (r *Runtime) env(i int, api string) []string {
	o := r.opts
	return append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + api,
		"AWS_LAMBDA_FUNCTION_NAME=" + o.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + o.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=instance-" + strconv.Itoa(i),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION=" + o.Region,
		"AWS_DEFAULT_REGION=" + o.Region,
		"AWS_ACCESS_KEY_ID=AKIDLAMBDA",
		"AWS_SECRET_ACCESS_KEY=lambda-secret",
		"AWS_SESSION_TOKEN=lambda-session",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=/var/task",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}, o.Env...)
}

func (r *Runtime) spawn(env []string) (*exec.Cmd, io.Reader, error) {
	cmd := exec.Command(r.opts.Bootstrap)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, out, nil
}

// maxRestarts bounds how often a crashing instance is started again.
const maxRestarts = 5

// supervise collects an instance's output and, like Lambda, fails the invocation
// it was running when it dies (Runtime.ExitError) and starts a fresh process for
// the next one, unless the function reported an init error or keeps crashing.
func (r *Runtime) supervise(i int, env []string, cmd *exec.Cmd, out io.Reader) {
	defer r.wg.Done()
	for restarts := 0; ; restarts++ {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.logs = append(r.logs, sc.Text())
			r.mu.Unlock()
		}
		_ = cmd.Wait()
		r.mu.Lock()
		for id, inv := range r.inflight {
			if owner, _ := strconv.Atoi(strings.SplitN(id, "-", 2)[0]); owner == i {
				inv.finish(result{err: &FunctionError{Type: "Runtime.ExitError", Message: "the function process exited: " + cmd.ProcessState.String()}})
				delete(r.inflight, id)
			}
		}
		stopped := false
		select {
		case <-r.done:
			stopped = true
		default:
		}
		if stopped || r.initErr != nil || restarts >= maxRestarts {
			r.alive--
			r.broadcast()
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		next, nextOut, err := r.spawn(env)
		r.mu.Lock()
		if err != nil {
			r.alive--
			r.broadcast()
			r.mu.Unlock()
			return
		}
		r.procs[i] = next
		r.mu.Unlock()
		cmd, out = next, nextOut
	}
}

// broadcast wakes invocations waiting for an instance; r.mu is held.
func (r *Runtime) broadcast() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Runtime) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	close(r.done)
	r.mu.Lock()
	procs := append([]*exec.Cmd(nil), r.procs...)
	r.mu.Unlock()
	for _, c := range procs {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}
	// A supervisor may have been restarting a process concurrently; kill
	// whatever runs now until all supervisors are gone.
	go func() {
		for {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.stopped:
				return
			}
			r.mu.Lock()
			for _, c := range r.procs {
				if c.Process != nil {
					_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				}
			}
			r.mu.Unlock()
		}
	}()
	for _, s := range r.servers {
		_ = s.Close()
	}
	r.wg.Wait()
	close(r.stopped)
}

// Logs returns the lines the function processes wrote to stdout and stderr so
// far (what CloudWatch Logs would receive).
func (r *Runtime) Logs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.logs...)
}

// WaitLog waits up to timeout for a log line for which match returns true, and
// reports whether one came. Output is read asynchronously, so a line the function
// printed before answering may show up just after Invoke returns.
func (r *Runtime) WaitLog(match func(line string) bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range r.Logs() {
			if match(l) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Invoke runs one synchronous invocation (what API Gateway's Lambda proxy
// integration does) and returns the function's response payload. A function error
// is a *FunctionError.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	if len(payload) > maxPayload {
		return nil, errors.New("lambda: request payload too large")
	}
	inv := &invocation{payload: payload, result: make(chan result, 1)}
	// The invocation waits for a free instance, then runs for at most Timeout.
	// Like Lambda, it fails at once if the function cannot start.
	for queued := false; !queued; {
		r.mu.Lock()
		initErr, alive, changed := r.initErr, r.alive, r.changed
		r.mu.Unlock()
		if initErr != nil {
			return nil, initErr
		}
		if alive == 0 {
			return nil, &FunctionError{Type: "Runtime.ExitError", Message: "no function process is running"}
		}
		select {
		case r.queue <- inv:
			queued = true
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.done:
			return nil, errors.New("lambda: runtime stopped")
		}
	}
	timer := time.NewTimer(r.opts.Timeout + time.Second)
	defer timer.Stop()
	select {
	case res := <-inv.result:
		return res.body, res.err
	case <-timer.C:
		return nil, &FunctionError{Type: "Sandbox.Timedout", Message: "Task timed out after " + r.opts.Timeout.String()}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next is GET /2018-06-01/runtime/invocation/next: block until an invocation is
// queued, then hand it out with Lambda's documented headers.
func (r *Runtime) next(w http.ResponseWriter, req *http.Request, instance int) {
	var inv *invocation
	r.polling.Add(1)
	defer r.polling.Add(-1)
	select {
	case inv = <-r.queue:
	case <-req.Context().Done():
		return
	case <-r.done:
		http.Error(w, "runtime stopped", http.StatusInternalServerError)
		return
	}
	inv.id = fmt.Sprintf("%d-%08x-0000-4000-8000-%012x", instance, r.seq.Add(1), time.Now().UnixNano()&0xffffffffffff)
	inv.deadline = time.Now().Add(r.opts.Timeout)
	r.mu.Lock()
	r.inflight[inv.id] = inv
	r.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:"+r.opts.Region+":123456789012:function:"+r.opts.FunctionName)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

func (r *Runtime) take(w http.ResponseWriter, req *http.Request) (*invocation, []byte, bool) {
	id := req.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(req.Body, maxPayload+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, nil, false
	}
	r.mu.Lock()
	inv := r.inflight[id]
	delete(r.inflight, id)
	r.mu.Unlock()
	if inv == nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or completed request id "+id)
		return nil, nil, false
	}
	if len(body) > maxPayload {
		inv.finish(result{err: &FunctionError{Type: "Function.ResponseSizeTooLarge", Message: "response payload too large"}})
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "payload too large")
		return nil, nil, false
	}
	return inv, body, true
}

// response is POST /2018-06-01/runtime/invocation/{id}/response.
func (r *Runtime) response(w http.ResponseWriter, req *http.Request) {
	inv, body, ok := r.take(w, req)
	if !ok {
		return
	}
	inv.finish(result{body: body})
	accepted(w)
}

// invocationError is POST /2018-06-01/runtime/invocation/{id}/error.
func (r *Runtime) invocationError(w http.ResponseWriter, req *http.Request) {
	inv, body, ok := r.take(w, req)
	if !ok {
		return
	}
	inv.finish(result{err: decodeFunctionError(req, body)})
	accepted(w)
}

// initError is POST /2018-06-01/runtime/init/error: the function could not start.
// Every later invocation fails with it, as Lambda reports Runtime.InitError.
func (r *Runtime) initError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	fe := decodeFunctionError(req, body)
	r.mu.Lock()
	r.initErr = &FunctionError{Type: "Runtime.InitError", Message: fe.Type + ": " + fe.Message}
	r.broadcast()
	r.mu.Unlock()
	accepted(w)
}

func decodeFunctionError(req *http.Request, body []byte) *FunctionError {
	var e struct {
		Message string `json:"errorMessage"`
		Type    string `json:"errorType"`
	}
	_ = json.Unmarshal(body, &e)
	if t := req.Header.Get("Lambda-Runtime-Function-Error-Type"); t != "" && e.Type == "" {
		e.Type = t
	}
	if e.Type == "" {
		e.Type = "Unhandled"
	}
	return &FunctionError{Type: e.Type, Message: e.Message}
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func writeRuntimeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}
