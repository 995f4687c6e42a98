// Package metrics keeps the relay core's counters in memory and writes them in
// the Prometheus text exposition format (version 0.0.4), for the standalone
// server's /metrics endpoint.
//
// It implements relay.Metrics with no dependency beyond the standard library:
// the format is a few lines of text, and the relay should not pull a metrics
// framework into a binary that handles signing sessions.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/farsign/farsign/relay"
)

// Registry holds counters and gauges. The zero value is not usable; call New.
type Registry struct {
	mu       sync.Mutex
	counters map[relay.Counter]map[string]uint64
	gauges   []gauge
}

type gauge struct {
	name, help string
	fn         func() float64
}

var _ relay.Metrics = (*Registry)(nil)

// New returns a Registry with every relay counter declared at zero, so that
// dashboards see them before the first event.
func New() *Registry {
	r := &Registry{counters: make(map[relay.Counter]map[string]uint64)}
	for _, c := range relay.Counters() {
		r.counters[c] = make(map[string]uint64)
		if c.Label() == "" {
			r.counters[c][""] = 0
		}
	}
	return r
}

// Add implements relay.Metrics.
func (r *Registry) Add(c relay.Counter, label string, n uint64) {
	r.mu.Lock()
	m := r.counters[c]
	if m == nil {
		m = make(map[string]uint64)
		r.counters[c] = m
	}
	m[label] += n
	r.mu.Unlock()
}

// Value returns the current value of counter c for label.
func (r *Registry) Value(c relay.Counter, label string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counters[c][label]
}

// Gauge registers a gauge whose value fn computes at every scrape (for
// example the number of open connections). name must be a valid Prometheus
// metric name; fn must be safe for concurrent use and fast.
func (r *Registry) Gauge(name, help string, fn func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gauges = append(r.gauges, gauge{name, help, fn})
}

// WritePrometheus writes every metric in the Prometheus text format, in a
// stable order.
func (r *Registry) WritePrometheus(w io.Writer) error {
	r.mu.Lock()
	type series struct {
		label string
		v     uint64
	}
	snap := make(map[relay.Counter][]series, len(r.counters))
	names := make([]string, 0, len(r.counters))
	for c, m := range r.counters {
		names = append(names, string(c))
		for l, v := range m {
			snap[c] = append(snap[c], series{l, v})
		}
	}
	gauges := append([]gauge(nil), r.gauges...)
	r.mu.Unlock()

	sort.Strings(names)
	bw := bufio.NewWriter(w)
	for _, name := range names {
		c := relay.Counter(name)
		s := snap[c]
		sort.Slice(s, func(i, j int) bool { return s[i].label < s[j].label })
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s counter\n", name, escapeHelp(c.Help()), name)
		for _, x := range s {
			if c.Label() == "" {
				fmt.Fprintf(bw, "%s %d\n", name, x.v)
			} else {
				fmt.Fprintf(bw, "%s{%s=\"%s\"} %d\n", name, c.Label(), escapeLabel(x.label), x.v)
			}
		}
	}
	sort.Slice(gauges, func(i, j int) bool { return gauges[i].name < gauges[j].name })
	for _, g := range gauges {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", g.name, escapeHelp(g.help), g.name, g.name, g.fn())
	}
	return bw.Flush()
}

// ServeHTTP serves the metrics (GET or HEAD).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if req.Method == http.MethodHead {
		return
	}
	_ = r.WritePrometheus(w)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
