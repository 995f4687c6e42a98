package relay

import (
	"context"
	"errors"
	"time"
)

// Session is one relay session: the pairing of the connection that created it
// (the initiator) with the connection that joined it (the joiner).
//
// A Session holds only routing facts. The peers' messages are end-to-end
// encrypted and never stored.
type Session struct {
	// ID is the client-chosen session id (rcodesign uses a UUIDv4). The core
	// only stores ids that pass ValidSessionID.
	ID string
	// Initiator is the connection id of the creator. It never changes, and
	// together with ID it identifies one incarnation of a session: see
	// Store.Delete.
	Initiator string
	// Joiner is the connection id of the peer that joined, or "" while the
	// session waits for one.
	Joiner string
	// InitiatorContext is the create-session context, forwarded verbatim to the
	// joiner in its session-joined reply. nil means JSON null (what rcodesign
	// always sends); it is distinct from a pointer to "".
	InitiatorContext *string
	// Expires is when the session stops being usable. The core always sets a
	// whole second (Unix seconds), so stores may keep Unix seconds only, as a
	// DynamoDB TTL attribute does.
	Expires time.Time
}

// Joined reports whether a peer has joined the session.
func (s Session) Joined() bool { return s.Joiner != "" }

// ExpiredAt reports whether the session is expired at now: a session is usable
// strictly before Expires, so it is expired from Expires on.
func (s Session) ExpiredAt(now time.Time) bool { return !now.Before(s.Expires) }

// Peer returns the other member of the session for conn, and whether conn is a
// member at all. The peer is "" if conn is the initiator and nobody has joined.
func (s Session) Peer(conn string) (peer string, member bool) {
	switch {
	case conn == "":
		return "", false
	case conn == s.Initiator:
		return s.Joiner, true
	case conn == s.Joiner:
		return s.Initiator, true
	}
	return "", false
}

// Errors a Store returns. Callers test them with errors.Is, so a Store may wrap
// them with more detail. Any other error means the store itself failed
// (unreachable, throttled past its retries, ...): the core reports it to the
// client as INTERNAL_ERROR and changes nothing else.
var (
	// ErrSessionExists: Create found a record with the same id (expired or not).
	ErrSessionExists = errors.New("relay: session already exists")
	// ErrSessionNotFound: no record with that id.
	ErrSessionNotFound = errors.New("relay: no such session")
	// ErrSessionExpired: the record exists but is expired at the time given.
	ErrSessionExpired = errors.New("relay: session expired")
	// ErrAlreadyJoined: Join found a session that another connection (or the
	// same one, earlier) already joined.
	ErrAlreadyJoined = errors.New("relay: session already joined")
	// ErrSelfJoin: Join was asked to join a connection to a session it created.
	ErrSelfJoin = errors.New("relay: a connection cannot join its own session")
)

// Store keeps sessions. It is shaped for a key-value store with conditional
// writes (DynamoDB) as well as for memory: every method is one conditional
// read or write on one session, or one indexed query, never a scan.
//
// Implementations must be safe for concurrent use by many goroutines and many
// processes sharing the same backing store (Lambda runs many copies of the core
// at once). Create and Join must be atomic: of two concurrent Creates with one
// id exactly one succeeds, of two concurrent Joins of one session exactly one
// succeeds. relay/storetest checks all of this; every Store must pass it.
//
// Time is always passed in, never read from a clock, so that expiry is decided
// by the core's (injectable) clock and tests need no sleeping.
type Store interface {
	// Create stores s if no record with s.ID exists. It returns
	// ErrSessionExists if one does, even an expired one that has not been
	// removed yet: ids are random, so refusing is harmless, and it means a
	// record is never replaced under peers that may still be using it.
	// s.Initiator is non-empty and s.Joiner is "".
	Create(ctx context.Context, s Session) error

	// Join atomically sets the joiner of session id to conn, provided the
	// session exists, has no joiner, was not created by conn, and is not
	// expired at now. It returns the updated session.
	//
	// Errors: ErrSessionNotFound, ErrSessionExpired, ErrAlreadyJoined,
	// ErrSelfJoin, in that order of precedence (an expired, joined session
	// reports ErrSessionExpired). On error the returned Session is the zero
	// value and nothing changed.
	Join(ctx context.Context, id, conn string, now time.Time) (Session, error)

	// Get returns session id. Expiry is enforced here, at read time, because
	// background deletion (DynamoDB TTL, the memory sweeper) may lag: if the
	// record is expired at now, Get returns it together with
	// ErrSessionExpired, so the caller can tell its members and delete it.
	// A missing record is ErrSessionNotFound.
	Get(ctx context.Context, id string, now time.Time) (Session, error)

	// Delete removes session id if it still belongs to initiator (its
	// Initiator field equals initiator). A missing record, or one with another
	// initiator (the id was deleted and created again in the meantime), is
	// left alone and is not an error: Delete is idempotent, and a stale
	// caller can never delete somebody else's session.
	Delete(ctx context.Context, id, initiator string) error

	// SessionsOf returns every record in which conn is the Initiator or the
	// Joiner, expired or not, in no particular order (possibly empty). It must
	// use an index, never a scan: it runs on every disconnect. Once Delete
	// has returned for a session, SessionsOf no longer returns it.
	SessionsOf(ctx context.Context, conn string) ([]Session, error)
}

// Sweeper is implemented by stores that can find expired sessions cheaply
// (the memory store). Handler.Sweep uses it to close expired sessions actively,
// telling their members, instead of waiting for their next request. Stores
// that cannot list without a scan (DynamoDB, which has TTL deletion instead)
// do not implement it; expiry is still enforced on every read.
type Sweeper interface {
	// Sweep removes every session expired at now and returns the removed
	// records.
	Sweep(ctx context.Context, now time.Time) ([]Session, error)
}
