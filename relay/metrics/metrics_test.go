package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/farsign/farsign/relay"
)

func TestPrometheusText(t *testing.T) {
	r := New()
	r.Add(relay.CounterAPICalls, "hello", 2)
	r.Add(relay.CounterAPICalls, "create-session", 1)
	r.Add(relay.CounterErrors, `we"ird\`+"\n", 1)
	r.Add(relay.CounterBytesRelayed, "", 1234)
	r.Gauge("relay_connections_open", "Open connections.", func() float64 { return 7 })
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE relay_api_calls_total counter\n",
		"relay_api_calls_total{api=\"create-session\"} 1\nrelay_api_calls_total{api=\"hello\"} 2\n",
		`relay_errors_total{code="we\"ird\\\n"} 1` + "\n",
		"relay_bytes_relayed_total 1234\n",
		"relay_sessions_created_total 0\n", // declared before any event
		"# TYPE relay_connections_open gauge\nrelay_connections_open 7\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every non-comment line is "name{labels} value" or "name value".
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 {
			t.Errorf("malformed sample line %q", line)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	r := New()
	r.Add(relay.CounterSessionsJoined, "", 3)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.Contains(rec.Body.String(), "relay_sessions_joined_total 3\n") {
		t.Errorf("body lacks the counter:\n%s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d, want 405", rec.Code)
	}
}

func TestConcurrentAdd(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				r.Add(relay.CounterMessagesRelayed, "", 1)
			}
		})
	}
	wg.Wait()
	if v := r.Value(relay.CounterMessagesRelayed, ""); v != 8000 {
		t.Fatalf("counter = %d, want 8000", v)
	}
}
