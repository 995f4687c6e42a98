package lambda

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Environment variables the function reads. The Terraform module sets the first
// five; the rest are optional knobs with the core's defaults.
const (
	EnvTable              = "RELAY_TABLE"                       // DynamoDB table name (required)
	EnvManagementEndpoint = "RELAY_MANAGEMENT_ENDPOINT"         // https://{api}.execute-api.{region}.amazonaws.com/{stage}; derived from each event when empty
	EnvMaxTTL             = "RELAY_MAX_TTL_SECONDS"             // longest session granted (default 600)
	EnvMOTD               = "RELAY_MOTD"                        // greeting message of the day (default none)
	EnvMaxSessions        = "RELAY_MAX_SESSIONS_PER_CONNECTION" // default: the core's
	EnvMaxMessageBytes    = "RELAY_MAX_MESSAGE_BYTES"           // default 128 KiB, API Gateway's own limit
	EnvMessageRate        = "RELAY_MESSAGE_RATE"                // requests/s per connection, per instance; negative disables
	EnvMessageBurst       = "RELAY_MESSAGE_BURST"               // token bucket size
	EnvLogLevel           = "RELAY_LOG_LEVEL"                   // debug, info (default), warn, error
	EnvMetricsNamespace   = "RELAY_METRICS_NAMESPACE"           // CloudWatch namespace (default farsign/relay)
)

// Config is the function's configuration, read from its environment.
type Config struct {
	Table              string
	ManagementEndpoint string // "" = derive from each event
	MaxTTL             time.Duration
	MOTD               string
	MaxSessionsPerConn int
	MaxMessageSize     int
	MessageRate        float64
	MessageBurst       int
	LogLevel           slog.Level
	MetricsNamespace   string
}

// ConfigFromEnv reads Config with getenv (os.Getenv in the function). A malformed
// value is an error naming the variable: the function refuses to start rather
// than run with a limit nobody chose.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Table:              strings.TrimSpace(getenv(EnvTable)),
		ManagementEndpoint: strings.TrimSpace(getenv(EnvManagementEndpoint)),
		MOTD:               getenv(EnvMOTD),
		MetricsNamespace:   getenv(EnvMetricsNamespace),
	}
	if c.Table == "" {
		return c, fmt.Errorf("%s is not set (the DynamoDB sessions table)", EnvTable)
	}
	if e := c.ManagementEndpoint; e != "" && !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "http://") {
		return c, fmt.Errorf("%s=%q is not an https:// URL", EnvManagementEndpoint, e)
	}
	if c.MetricsNamespace == "" {
		c.MetricsNamespace = "farsign/relay"
	}
	var err error
	secs, err := intVar(getenv, EnvMaxTTL, 1, 7*24*3600)
	if err != nil {
		return c, err
	}
	c.MaxTTL = time.Duration(secs) * time.Second
	if c.MaxSessionsPerConn, err = intVar(getenv, EnvMaxSessions, 1, 1000); err != nil {
		return c, err
	}
	if c.MaxMessageSize, err = intVar(getenv, EnvMaxMessageBytes, 1024, 128<<10); err != nil {
		return c, err
	}
	if c.MessageBurst, err = intVar(getenv, EnvMessageBurst, 1, 1_000_000); err != nil {
		return c, err
	}
	if v := strings.TrimSpace(getenv(EnvMessageRate)); v != "" {
		if c.MessageRate, err = strconv.ParseFloat(v, 64); err != nil || c.MessageRate == 0 {
			return c, fmt.Errorf("%s=%q: want a non-zero number of requests per second (negative disables)", EnvMessageRate, v)
		}
	}
	if v := strings.TrimSpace(getenv(EnvLogLevel)); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("%s=%q: want debug, info, warn or error", EnvLogLevel, v)
		}
	}
	return c, nil
}

// intVar parses an optional integer variable within [lo, hi]; 0 when unset, which
// the core reads as "default".
func intVar(getenv func(string) string, name string, lo, hi int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}
