package awsemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The test binary doubles as a Lambda function built on aws-lambda-go, the
// runtime client the relay uses, so the Runtime API emulation is checked against
// the real client rather than against itself.
func TestMain(m *testing.M) {
	if os.Getenv("AWSEMU_TEST_FUNCTION") == "1" {
		lambda.Start(testFunction)
		return
	}
	os.Exit(m.Run())
}

type testEvent struct {
	Echo  string `json:"echo"`
	Fail  bool   `json:"fail"`
	Crash bool   `json:"crash"`
	Sleep int    `json:"sleep_ms"`
}

func testFunction(ctx context.Context, ev testEvent) (map[string]any, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	switch {
	case ev.Fail:
		return nil, errors.New("asked to fail")
	case ev.Crash:
		fmt.Println("crashing now")
		os.Exit(3)
	}
	time.Sleep(time.Duration(ev.Sleep) * time.Millisecond)
	fmt.Println("handled", ev.Echo)
	return map[string]any{
		"echo":       ev.Echo,
		"request_id": lc.AwsRequestID,
		"arn":        lc.InvokedFunctionArn,
		"deadline":   time.Until(deadline).Seconds(),
		"region":     os.Getenv("AWS_REGION"),
		"custom":     os.Getenv("CUSTOM"),
		"home":       os.Getenv("HOME"),
	}, nil
}

func startTestFunction(t *testing.T, instances int) *Runtime {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return StartRuntime(t, RuntimeOptions{
		Bootstrap: exe,
		Env:       []string{"AWSEMU_TEST_FUNCTION=1", "CUSTOM=yes"},
		Instances: instances,
		Timeout:   5 * time.Second,
		Region:    "eu-west-1",
	})
}

func invokeJSON(t *testing.T, r *Runtime, ev string) (map[string]any, error) {
	out, err := r.Invoke(t.Context(), []byte(ev))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return m, nil
}

func TestRuntimeInvokeResponseAndError(t *testing.T) {
	r := startTestFunction(t, 1)
	m, err := invokeJSON(t, r, `{"echo":"one"}`)
	if err != nil {
		t.Fatal(err)
	}
	if m["echo"] != "one" || m["region"] != "eu-west-1" || m["custom"] != "yes" || m["home"] != "" {
		t.Errorf("response %v", m)
	}
	if !strings.HasPrefix(m["arn"].(string), "arn:aws:lambda:eu-west-1:") || m["request_id"] == "" {
		t.Errorf("context headers not delivered: %v", m)
	}
	if d := m["deadline"].(float64); d <= 0 || d > 5 {
		t.Errorf("deadline %vs from now, want within the 5 s timeout", d)
	}

	_, err = r.Invoke(t.Context(), []byte(`{"fail":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Message != "asked to fail" {
		t.Fatalf("failing invocation: %v", err)
	}
	// The function keeps serving after an error.
	if m, err := invokeJSON(t, r, `{"echo":"two"}`); err != nil || m["echo"] != "two" {
		t.Fatalf("after an error: %v, %v", m, err)
	}
	if !r.WaitLog(func(l string) bool { return l == "handled two" }, 5*time.Second) {
		t.Errorf("function output not captured: %q", r.Logs())
	}
}

// TestRuntimeCrashRestarts: a process that exits mid-invocation fails that
// invocation with Runtime.ExitError, and a fresh process serves the next one.
func TestRuntimeCrashRestarts(t *testing.T) {
	r := startTestFunction(t, 1)
	_, err := r.Invoke(t.Context(), []byte(`{"crash":true}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Fatalf("crashing invocation: %v, want Runtime.ExitError", err)
	}
	if m, err := invokeJSON(t, r, `{"echo":"again"}`); err != nil || m["echo"] != "again" {
		t.Fatalf("after a crash: %v, %v", m, err)
	}
}

// TestRuntimeConcurrency: with two idle instances, two concurrent invocations
// run on different instances, as Lambda scales out.
func TestRuntimeConcurrency(t *testing.T) {
	r := startTestFunction(t, 2)
	// Wait until both processes have started and are asking for work.
	for deadline := time.Now().Add(20 * time.Second); r.polling.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two instances never both polled for invocations")
		}
	}
	ids := make(chan string, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			m, err := invokeJSON(t, r, `{"echo":"x","sleep_ms":300}`)
			if err != nil {
				errs <- err
				return
			}
			ids <- m["request_id"].(string)
		}()
	}
	got := map[string]bool{}
	for range 2 {
		select {
		case id := <-ids:
			got[id] = true
		case err := <-errs:
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("request ids %v, want two distinct", got)
	}
	// Which instance served each is encoded in the id's first field.
	instances := map[string]bool{}
	for id := range got {
		instances[strings.SplitN(id, "-", 2)[0]] = true
	}
	if len(instances) != 2 {
		t.Errorf("both invocations ran on one instance (%v) while the other was idle", got)
	}
}
