// Package memstore is the in-memory relay.Store used by the standalone relay
// server and by tests.
//
// Sessions live in one map guarded by one mutex, with a second map indexing
// connections to their sessions so that a disconnect never scans. Holding a
// lock for a few map operations is far cheaper than the websocket work around
// each call, so a single lock is not the bottleneck (see docs/benchmarks.md).
//
// Nothing is persisted: restarting the server ends every session, which is
// what the peers would see anyway, since their websockets close too.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/farsign/farsign/relay"
)

// Store is an in-memory relay.Store. The zero value is not usable; call New.
type Store struct {
	mu       sync.Mutex
	sessions map[string]*relay.Session
	byConn   map[string]map[string]struct{} // conn -> ids of sessions it is a member of
}

var (
	_ relay.Store   = (*Store)(nil)
	_ relay.Sweeper = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		sessions: make(map[string]*relay.Session),
		byConn:   make(map[string]map[string]struct{}),
	}
}

// Len returns the number of records held, expired ones included.
func (m *Store) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

func clone(s *relay.Session) relay.Session {
	c := *s
	if s.InitiatorContext != nil {
		v := *s.InitiatorContext
		c.InitiatorContext = &v
	}
	return c
}

func (m *Store) index(conn, id string) {
	set := m.byConn[conn]
	if set == nil {
		set = make(map[string]struct{}, 1)
		m.byConn[conn] = set
	}
	set[id] = struct{}{}
}

func (m *Store) unindex(conn, id string) {
	if set := m.byConn[conn]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(m.byConn, conn)
		}
	}
}

// Create implements relay.Store.
func (m *Store) Create(ctx context.Context, s relay.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return relay.ErrSessionExists
	}
	c := clone(&s)
	m.sessions[s.ID] = &c
	m.index(c.Initiator, c.ID)
	if c.Joiner != "" {
		m.index(c.Joiner, c.ID)
	}
	return nil
}

// Join implements relay.Store.
func (m *Store) Join(ctx context.Context, id, conn string, now time.Time) (relay.Session, error) {
	if err := ctx.Err(); err != nil {
		return relay.Session{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	switch {
	case !ok:
		return relay.Session{}, relay.ErrSessionNotFound
	case s.ExpiredAt(now):
		return relay.Session{}, relay.ErrSessionExpired
	case s.Joined():
		return relay.Session{}, relay.ErrAlreadyJoined
	case s.Initiator == conn:
		return relay.Session{}, relay.ErrSelfJoin
	}
	s.Joiner = conn
	m.index(conn, id)
	return clone(s), nil
}

// Get implements relay.Store.
func (m *Store) Get(ctx context.Context, id string, now time.Time) (relay.Session, error) {
	if err := ctx.Err(); err != nil {
		return relay.Session{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return relay.Session{}, relay.ErrSessionNotFound
	}
	if s.ExpiredAt(now) {
		return clone(s), relay.ErrSessionExpired
	}
	return clone(s), nil
}

// Delete implements relay.Store.
func (m *Store) Delete(ctx context.Context, id, initiator string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok || s.Initiator != initiator {
		return nil
	}
	m.remove(s)
	return nil
}

func (m *Store) remove(s *relay.Session) {
	delete(m.sessions, s.ID)
	m.unindex(s.Initiator, s.ID)
	if s.Joiner != "" {
		m.unindex(s.Joiner, s.ID)
	}
}

// SessionsOf implements relay.Store.
func (m *Store) SessionsOf(ctx context.Context, conn string) ([]relay.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.byConn[conn]
	out := make([]relay.Session, 0, len(set))
	for id := range set {
		out = append(out, clone(m.sessions[id]))
	}
	return out, nil
}

// Sweep implements relay.Sweeper: it removes every session expired at now and
// returns them, so that the core can tell their members.
//
// It walks the whole map under the lock. At the sizes one process serves
// (10,000 sessions walk in well under a millisecond) that is cheaper and
// simpler than keeping an expiry heap in step with every Create and Delete.
func (m *Store) Sweep(ctx context.Context, now time.Time) ([]relay.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []relay.Session
	for _, s := range m.sessions {
		if s.ExpiredAt(now) {
			out = append(out, clone(s))
			m.remove(s)
		}
	}
	return out, nil
}
