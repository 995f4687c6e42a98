package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/farsign/farsign/protocol/wire"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxTTL is the longest session a client gets, and what it gets
	// when it asks for none. rcodesign always asks for 600 seconds.
	DefaultMaxTTL = 600 * time.Second
	// DefaultMaxMessageSize is API Gateway's websocket message limit, so a
	// client that works with one deployment works with every other.
	DefaultMaxMessageSize = 128 << 10
	// DefaultMaxSessionsPerConn bounds how many live sessions one connection
	// may create or join. rcodesign uses one per connection.
	DefaultMaxSessionsPerConn = 4
	// DefaultMessageRate and DefaultMessageBurst bound requests per
	// connection (a token bucket). A signing job asks for one signature per
	// round trip, far below this; a flood is not.
	DefaultMessageRate  = 50
	DefaultMessageBurst = 100
)

// Config configures a Handler. The zero value of every limit means its
// default.
type Config struct {
	// Store keeps sessions and Poster reaches connections. Both required.
	Store  Store
	Poster Poster

	// MOTD, if not empty, is sent in the greeting; rcodesign prints it as
	// "message from remote server: …".
	MOTD string

	// MaxTTL caps the lifetime a client may request (default 600 s). It is
	// rounded down to whole seconds, the protocol's unit.
	MaxTTL time.Duration
	// MaxMessageSize is the largest request accepted, in bytes (default
	// 128 KiB, at most wire.MaxMessageSize). A transport may hand the core
	// only the first MaxMessageSize+1 bytes of a larger message.
	MaxMessageSize int
	// MaxSessionsPerConn bounds live sessions per connection (default 4).
	MaxSessionsPerConn int
	// MessageRate is the sustained requests per second allowed per
	// connection and MessageBurst the bucket size (defaults 50 and 100). A
	// negative MessageRate disables rate limiting.
	//
	// The limiter lives in the process running the core: in Lambda every
	// instance has its own, so there it is a per-instance bound and API
	// Gateway's stage throttling is the global one.
	MessageRate  float64
	MessageBurst int

	// Now is the clock, for tests (default time.Now).
	Now func() time.Time
	// Logger receives structured logs (default: discard). The core never
	// logs message contents, contexts or session ids (only a short hash of
	// the id, enough to correlate log lines).
	Logger *slog.Logger
	// Metrics receives counters (default: none).
	Metrics Metrics
}

func (c *Config) setDefaults() error {
	if c.Store == nil || c.Poster == nil {
		return errors.New("relay: Config.Store and Config.Poster are required")
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.MaxTTL < time.Second {
		return fmt.Errorf("relay: MaxTTL %v is less than one second", c.MaxTTL)
	}
	c.MaxTTL = c.MaxTTL.Truncate(time.Second)
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxMessageSize < 1024 || c.MaxMessageSize > wire.MaxMessageSize {
		return fmt.Errorf("relay: MaxMessageSize %d outside [1024, %d]", c.MaxMessageSize, wire.MaxMessageSize)
	}
	if c.MaxSessionsPerConn == 0 {
		c.MaxSessionsPerConn = DefaultMaxSessionsPerConn
	}
	if c.MaxSessionsPerConn < 0 {
		return fmt.Errorf("relay: MaxSessionsPerConn %d is negative", c.MaxSessionsPerConn)
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = DefaultMessageBurst
	}
	if c.MessageRate > 0 && c.MessageBurst < 1 {
		return fmt.Errorf("relay: MessageBurst %d must be at least 1", c.MessageBurst)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	return nil
}

// MinSessionIDLen and MaxSessionIDLen bound session ids. rcodesign uses
// 36-character UUIDs; the minimum keeps ids from being trivially guessable,
// since knowing an id is enough to join a waiting session first.
const (
	MinSessionIDLen = 16
	MaxSessionIDLen = 128
)

// ValidSessionID reports whether id is an acceptable session id: 16 to 128
// characters from A-Z a-z 0-9 and "-._~" (URL-safe, log-safe, and fits any
// store key).
func ValidSessionID(id string) bool {
	if len(id) < MinSessionIDLen || len(id) > MaxSessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
