package relay

// Counter names one of the core's counters. Its value is the Prometheus
// metric name; Label names the label that splits it, if any.
type Counter string

// The core's counters.
const (
	// CounterAPICalls counts well-formed requests, by api.
	CounterAPICalls Counter = "relay_api_calls_total"
	// CounterErrors counts error replies, by code.
	CounterErrors Counter = "relay_errors_total"
	// CounterSessionsCreated, CounterSessionsJoined and CounterSessionsExpired
	// count session lifecycle events; CounterSessionsClosed counts sessions
	// ended, by reason (goodbye, disconnect, expired, shutdown, failure).
	CounterSessionsCreated Counter = "relay_sessions_created_total"
	CounterSessionsJoined  Counter = "relay_sessions_joined_total"
	CounterSessionsExpired Counter = "relay_sessions_expired_total"
	CounterSessionsClosed  Counter = "relay_sessions_closed_total"
	// CounterMessagesRelayed counts peer messages forwarded and
	// CounterBytesRelayed the bytes of their (opaque) message strings.
	CounterMessagesRelayed Counter = "relay_messages_relayed_total"
	CounterBytesRelayed    Counter = "relay_bytes_relayed_total"
	// CounterConnections and CounterDisconnections count Connect and
	// Disconnect events.
	CounterConnections    Counter = "relay_connections_total"
	CounterDisconnections Counter = "relay_disconnections_total"
)

// Counters lists every counter, for exporters that pre-declare them.
func Counters() []Counter {
	return []Counter{
		CounterAPICalls, CounterErrors, CounterSessionsCreated, CounterSessionsJoined,
		CounterSessionsExpired, CounterSessionsClosed, CounterMessagesRelayed,
		CounterBytesRelayed, CounterConnections, CounterDisconnections,
	}
}

// Label returns the name of the label that splits c ("api", "code",
// "reason"), or "" for an unlabelled counter.
func (c Counter) Label() string {
	switch c {
	case CounterAPICalls:
		return "api"
	case CounterErrors:
		return "code"
	case CounterSessionsClosed:
		return "reason"
	}
	return ""
}

// Help returns a one-line description of c.
func (c Counter) Help() string {
	switch c {
	case CounterAPICalls:
		return "Well-formed requests, by API."
	case CounterErrors:
		return "Error replies sent, by error code."
	case CounterSessionsCreated:
		return "Sessions created."
	case CounterSessionsJoined:
		return "Sessions joined by a peer."
	case CounterSessionsExpired:
		return "Sessions ended because their TTL ran out."
	case CounterSessionsClosed:
		return "Sessions ended, by reason."
	case CounterMessagesRelayed:
		return "Peer messages forwarded."
	case CounterBytesRelayed:
		return "Bytes of peer message strings forwarded."
	case CounterConnections:
		return "Connections opened."
	case CounterDisconnections:
		return "Connections closed."
	}
	return ""
}

// Metrics receives the core's counters: relay/metrics exports them in the
// Prometheus text format, the Lambda adapter as CloudWatch metrics.
// Implementations must be safe for concurrent use and fast (they are called
// on every request).
type Metrics interface {
	// Add adds n to counter c; label is the value of c.Label() ("" for an
	// unlabelled counter).
	Add(c Counter, label string, n uint64)
}

type nopMetrics struct{}

func (nopMetrics) Add(Counter, string, uint64) {}
