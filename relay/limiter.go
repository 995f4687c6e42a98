package relay

import (
	"sync"
	"time"
)

// limiter is a token bucket per connection.
//
// Buckets are forgotten on Disconnect, and, because a Lambda instance may
// never see the disconnect of a connection it served, also pruned when full:
// a full bucket is indistinguishable from no bucket, so pruning loses nothing.
type limiter struct {
	rate, burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	pruneAt int
}

type bucket struct {
	tokens float64
	last   time.Time
	// strikes counts requests refused since the last one allowed.
	strikes int
}

const minPruneAt = 1024

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket), pruneAt: minPruneAt}
}

// allow takes a token for conn at now. It reports whether the request may
// proceed and, if not, how many requests in a row have been refused.
func (l *limiter) allow(conn string, now time.Time) (ok bool, strikes int) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[conn]
	if b == nil {
		if len(l.buckets) >= l.pruneAt {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[conn] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		b.strikes++
		return false, b.strikes
	}
	b.tokens--
	b.strikes = 0
	return true, 0
}

// prune drops full buckets and sets the next pruning point at twice the
// remaining size, so pruning costs amortized O(1) per new connection.
func (l *limiter) prune(now time.Time) {
	for c, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, c)
		}
	}
	l.pruneAt = max(minPruneAt, 2*len(l.buckets))
}

func (l *limiter) forget(conn string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.buckets, conn)
	l.mu.Unlock()
}
