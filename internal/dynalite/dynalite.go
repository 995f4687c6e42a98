// Package dynalite runs dynalite, a local implementation of the DynamoDB API from
// npm, for tests that need a real DynamoDB endpoint (conditional writes, indexes,
// the SDK's error mapping), and creates tables exactly as the farsign Terraform
// module defines them, so the store is tested against the deployed schema and not a
// copy of it that could drift.
//
// It is a test harness: every function takes a testing.TB and registers its own
// cleanup. When node or the npm package is missing, tests are skipped locally and
// fail under CI=true (internal/testenv).
package dynalite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/farsign/farsign/internal/testenv"
)

// Region is the region every client of the harness uses. dynalite ignores it, but
// the SDK needs one to sign requests.
const Region = "us-east-1"

// Server is a running dynalite process on a loopback port.
type Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:41234.
	Endpoint string

	cmd    *exec.Cmd
	done   chan struct{}
	stderr *tailBuffer
}

// Start launches dynalite (in-memory, tables active at once) on a free loopback port,
// waits until it answers DynamoDB requests, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	node := testenv.LookPath(t, "node", "apt-get install nodejs, or install Node.js 20+")
	script := filepath.Join(testenv.RepoRoot(t), "tools", "node_modules", "dynalite", "cli.js")
	if _, err := os.Stat(script); err != nil {
		testenv.Missing(t, "dynalite is not installed (run: cd tools && npm ci)")
	}

	var lastErr error
	// Picking a free port and handing it to another process is racy; a clash shows
	// as an early exit, so try a few ports.
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(node, script)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("dynalite: %v", lastErr)
	return nil
}

// Command returns the command that runs dynalite (the cli.js script under
// node) in memory on the loopback port, with tables active at once. Tools
// that manage the process themselves (the relay load test) start it the same
// way the tests do.
func Command(node, script string, port int) *exec.Cmd {
	return exec.Command(node, script,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
}

func start(node, script string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := Command(node, script, port)
	tail := &tailBuffer{max: 4096}
	cmd.Stdout = io.Discard
	cmd.Stderr = tail
	// Own process group, so a stop reaches node's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	s := &Server{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:      cmd,
		done:     make(chan struct{}),
		stderr:   tail,
	}
	go func() { _ = cmd.Wait(); close(s.done) }()

	if err := s.waitReady(20 * time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w; stderr: %s", err, tail.String())
	}
	return s, nil
}

// waitReady polls until dynalite answers a ListTables request (any DynamoDB JSON
// answer will do: it means the HTTP server and the store are up).
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return errors.New("dynalite exited during startup")
		default:
		}
		req, _ := http.NewRequest("POST", s.Endpoint, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
		req.Header.Set("X-Amz-Date", "20000101T000000Z")
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dynalite not ready after %v (last error: %v)", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Config returns an SDK configuration for the server: static test credentials,
// Region, and the server's endpoint as BaseEndpoint for DynamoDB clients.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", ""),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// Client returns a DynamoDB client talking to the server.
func (s *Server) Client() *dynamodb.Client {
	return dynamodb.NewFromConfig(s.Config())
}

var tableSeq atomic.Int64

// CreateTable creates a table named name exactly as the Terraform module in
// terraform/ defines its sessions table (keys, attribute types, indexes, billing),
// waits until it is active and returns name. An empty name picks a unique one.
//
// dynalite has no UpdateTimeToLive, so the TTL setting is not applied; the store's
// correctness never depends on TTL deletion (it checks expiry on every read), and
// terraform's own test checks the TTL attribute name against the store's.
func (s *Server) CreateTable(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = fmt.Sprintf("sessions-%d-%d", os.Getpid(), tableSeq.Add(1))
	}
	def, err := TerraformTable(filepath.Join(testenv.RepoRoot(t), "terraform"))
	if err != nil {
		t.Fatalf("dynalite: reading the Terraform table: %v", err)
	}
	in := def.CreateTableInput(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	if _, err := c.CreateTable(ctx, in); err != nil {
		t.Fatalf("dynalite: CreateTable %s: %v", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 20 * time.Millisecond
		o.MaxDelay = 200 * time.Millisecond
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 20*time.Second); err != nil {
		t.Fatalf("dynalite: waiting for table %s: %v", name, err)
	}
	return name
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(string(b.buf)))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines, " | ")
}
