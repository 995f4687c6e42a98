package lambda

import (
	"encoding/json"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/farsign/farsign/relay"
)

// emf collects the core's counters during an invocation and writes them as
// CloudWatch Embedded Metric Format lines when it ends. CloudWatch Logs turns
// such lines into metrics with no agent and no API call (and so no IAM grant
// beyond writing logs), which is why a Lambda reports metrics this way.
//
// One line per dimension value: unlabelled counters share a line with no
// dimensions; a labelled counter (api calls by api, errors by code, closes by
// reason) gets one line per label value. Values are counts only: never a
// message, context or session id.
type emf struct {
	namespace string
	now       func() time.Time

	mu     sync.Mutex
	counts map[relay.Counter]map[string]uint64
}

func newEMF(namespace string) *emf {
	return &emf{namespace: namespace, now: time.Now, counts: map[relay.Counter]map[string]uint64{}}
}

// Add implements relay.Metrics.
func (m *emf) Add(c relay.Counter, label string, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byLabel := m.counts[c]
	if byLabel == nil {
		byLabel = map[string]uint64{}
		m.counts[c] = byLabel
	}
	byLabel[label] += n
}

// metricName turns relay_api_calls_total into api_calls.
func metricName(c relay.Counter) string {
	return strings.TrimSuffix(strings.TrimPrefix(string(c), "relay_"), "_total")
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// flush writes the collected counters to w and resets them.
func (m *emf) flush(w io.Writer) error {
	m.mu.Lock()
	counts := m.counts
	m.counts = map[relay.Counter]map[string]uint64{}
	m.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	ts := m.now().UnixMilli()
	var lines []map[string]any

	// Unlabelled counters, one line.
	plain := map[string]any{}
	var plainMetrics []emfMetric
	for _, c := range relay.Counters() {
		if c.Label() != "" || counts[c] == nil {
			continue
		}
		plain[metricName(c)] = counts[c][""]
		plainMetrics = append(plainMetrics, emfMetric{Name: metricName(c), Unit: unit(c)})
	}
	if len(plainMetrics) > 0 {
		plain["_aws"] = emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
			Namespace: m.namespace, Dimensions: [][]string{{}}, Metrics: plainMetrics,
		}}}
		lines = append(lines, plain)
	}

	// Labelled counters, one line per label value.
	for _, c := range relay.Counters() {
		dim := c.Label()
		if dim == "" || counts[c] == nil {
			continue
		}
		labels := make([]string, 0, len(counts[c]))
		for l := range counts[c] {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for _, l := range labels {
			lines = append(lines, map[string]any{
				"_aws": emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
					Namespace: m.namespace, Dimensions: [][]string{{dim}},
					Metrics: []emfMetric{{Name: metricName(c), Unit: unit(c)}},
				}}},
				dim:           l,
				metricName(c): counts[c][l],
			})
		}
	}
	for _, line := range lines {
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func unit(c relay.Counter) string {
	if c == relay.CounterBytesRelayed {
		return "Bytes"
	}
	return "Count"
}
