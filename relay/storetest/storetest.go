// Package storetest is the conformance suite every relay.Store must pass: the
// memory store, the DynamoDB store against dynalite, and any future one.
//
// The relay core's guarantees (no session is ever overwritten, exactly one
// peer joins, expiry holds even when background deletion lags, a disconnect
// finds its sessions without a scan) rest on the Store contract, so the
// contract is tested once, here, for all stores alike.
//
// Use it from a store's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) relay.Store { return memstore.New() })
//	}
//
// Every subtest uses fresh random session and connection ids, so the factory
// may return the same store (one DynamoDB table) every time.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/farsign/farsign/relay"
)

// Run runs the whole suite as subtests of t, calling newStore once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) relay.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s relay.Store)
	}{
		{"CreateGet", testCreateGet},
		{"ContextNullVersusEmpty", testContextNullVersusEmpty},
		{"CreateExisting", testCreateExisting},
		{"GetMissing", testGetMissing},
		{"GetExpired", testGetExpired},
		{"Join", testJoin},
		{"JoinMissing", testJoinMissing},
		{"JoinExpired", testJoinExpired},
		{"JoinTwice", testJoinTwice},
		{"JoinSelf", testJoinSelf},
		{"JoinPrecedence", testJoinPrecedence},
		{"Delete", testDelete},
		{"DeleteOtherIncarnation", testDeleteOtherIncarnation},
		{"SessionsOf", testSessionsOf},
		{"ConcurrentJoin", testConcurrentJoin},
		{"ConcurrentCreate", testConcurrentCreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// base is a whole second near the real time: a store backed by real DynamoDB
// deletes TTL items far in the past in the background, so the suite stays
// close to now and moves time only through the now arguments.
func base() time.Time { return time.Now().Add(time.Minute).Truncate(time.Second) }

func ctx(t *testing.T) context.Context { return t.Context() }

func randID(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func newSession(t *testing.T, expires time.Time) relay.Session {
	return relay.Session{
		ID:        randID(t, "st-"),
		Initiator: randID(t, "conn-a-"),
		Expires:   expires,
	}
}

func strp(s string) *string { return &s }

func mustCreate(t *testing.T, s relay.Store, sess relay.Session) {
	t.Helper()
	if err := s.Create(ctx(t), sess); err != nil {
		t.Fatalf("Create(%q): %v", sess.ID, err)
	}
}

// sameSession compares sessions field by field, Expires to the second.
// wantStored reads want.ID back from s, compares it with want and returns it.
func wantStored(t *testing.T, s relay.Store, what string, want relay.Session, now time.Time) relay.Session {
	t.Helper()
	got, err := s.Get(ctx(t), want.ID, now)
	if err != nil {
		t.Fatalf("%s: Get: %v", what, err)
	}
	sameSession(t, what, got, want)
	return got
}

func sameSession(t *testing.T, what string, got, want relay.Session) {
	t.Helper()
	if got.ID != want.ID || got.Initiator != want.Initiator || got.Joiner != want.Joiner {
		t.Errorf("%s: got {ID:%q Initiator:%q Joiner:%q}, want {ID:%q Initiator:%q Joiner:%q}",
			what, got.ID, got.Initiator, got.Joiner, want.ID, want.Initiator, want.Joiner)
	}
	if !reflect.DeepEqual(got.InitiatorContext, want.InitiatorContext) {
		t.Errorf("%s: InitiatorContext = %s, want %s", what, showp(got.InitiatorContext), showp(want.InitiatorContext))
	}
	if got.Expires.Unix() != want.Expires.Unix() {
		t.Errorf("%s: Expires = %v, want %v", what, got.Expires, want.Expires)
	}
}

func showp(p *string) string {
	if p == nil {
		return "nil"
	}
	return "&" + `"` + *p + `"`
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func testCreateGet(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(600*time.Second))
	sess.InitiatorContext = strp("WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns=")
	mustCreate(t, s, sess)
	if got := wantStored(t, s, "Get after Create", sess, now); got.Joined() {
		t.Errorf("new session reports Joined")
	}
}

func testContextNullVersusEmpty(t *testing.T, s relay.Store) {
	now := base()
	for _, c := range []*string{nil, strp("")} {
		sess := newSession(t, now.Add(time.Minute))
		sess.InitiatorContext = c
		mustCreate(t, s, sess)
		wantStored(t, s, "context "+showp(c), sess, now)
	}
}

func testCreateExisting(t *testing.T, s relay.Store) {
	now := base()
	orig := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, orig)

	// Another connection reusing the id must not replace the session, whether
	// it is waiting, joined or expired.
	dup := orig
	dup.Initiator = randID(t, "conn-x-")
	dup.Expires = now.Add(10 * time.Minute)
	wantErr(t, "Create duplicate", s.Create(ctx(t), dup), relay.ErrSessionExists)

	joiner := randID(t, "conn-b-")
	if _, err := s.Join(ctx(t), orig.ID, joiner, now); err != nil {
		t.Fatalf("Join: %v", err)
	}
	wantErr(t, "Create duplicate of joined", s.Create(ctx(t), dup), relay.ErrSessionExists)

	got, err := s.Get(ctx(t), orig.ID, now)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := orig
	want.Joiner = joiner
	sameSession(t, "session after refused Creates", got, want)

	// An expired record still blocks its id until it is deleted.
	got, err = s.Get(ctx(t), orig.ID, now.Add(time.Hour))
	wantErr(t, "Get expired", err, relay.ErrSessionExpired)
	wantErr(t, "Create over expired", s.Create(ctx(t), dup), relay.ErrSessionExists)
	sameSession(t, "expired record", got, want)
}

func testGetMissing(t *testing.T, s relay.Store) {
	_, err := s.Get(ctx(t), randID(t, "missing-"), base())
	wantErr(t, "Get missing", err, relay.ErrSessionNotFound)
}

func testGetExpired(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(10*time.Second))
	mustCreate(t, s, sess)

	for _, d := range []time.Duration{0, 9 * time.Second, 9500 * time.Millisecond} {
		if _, err := s.Get(ctx(t), sess.ID, now.Add(d)); err != nil {
			t.Errorf("Get at expiry-%v: %v, want the live session", 10*time.Second-d, err)
		}
	}
	for _, d := range []time.Duration{10 * time.Second, 10500 * time.Millisecond, 48 * time.Hour} {
		got, err := s.Get(ctx(t), sess.ID, now.Add(d))
		if !errors.Is(err, relay.ErrSessionExpired) {
			t.Errorf("Get at expiry+%v: error = %v, want ErrSessionExpired", d-10*time.Second, err)
			continue
		}
		sameSession(t, "record returned with ErrSessionExpired", got, sess)
	}
}

func testJoin(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	sess.InitiatorContext = strp("ctx-a")
	mustCreate(t, s, sess)
	joiner := randID(t, "conn-b-")

	got, err := s.Join(ctx(t), sess.ID, joiner, now.Add(59*time.Second))
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	want := sess
	want.Joiner = joiner
	sameSession(t, "Join result", got, want)
	if !got.Joined() {
		t.Errorf("joined session reports !Joined")
	}
	wantStored(t, s, "Get after Join", want, now)
}

func testJoinMissing(t *testing.T, s relay.Store) {
	_, err := s.Join(ctx(t), randID(t, "missing-"), randID(t, "conn-b-"), base())
	wantErr(t, "Join missing", err, relay.ErrSessionNotFound)
}

func testJoinExpired(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, sess)
	for _, at := range []time.Time{now.Add(time.Minute), now.Add(61 * time.Second), now.Add(24 * time.Hour)} {
		got, err := s.Join(ctx(t), sess.ID, randID(t, "conn-b-"), at)
		wantErr(t, "Join expired", err, relay.ErrSessionExpired)
		if got != (relay.Session{}) {
			t.Errorf("failed Join returned %+v, want the zero Session", got)
		}
	}
	wantStored(t, s, "session after refused Joins", sess, now)
}

func testJoinTwice(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, sess)
	first := randID(t, "conn-b-")
	if _, err := s.Join(ctx(t), sess.ID, first, now); err != nil {
		t.Fatalf("Join: %v", err)
	}
	_, err := s.Join(ctx(t), sess.ID, randID(t, "conn-c-"), now)
	wantErr(t, "second joiner", err, relay.ErrAlreadyJoined)
	_, err = s.Join(ctx(t), sess.ID, first, now)
	wantErr(t, "same joiner again", err, relay.ErrAlreadyJoined)

	want := sess
	want.Joiner = first
	wantStored(t, s, "session after refused Joins", want, now)
}

func testJoinSelf(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, sess)
	_, err := s.Join(ctx(t), sess.ID, sess.Initiator, now)
	wantErr(t, "self join", err, relay.ErrSelfJoin)
	wantStored(t, s, "session after refused self join", sess, now)
}

func testJoinPrecedence(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, sess)
	if _, err := s.Join(ctx(t), sess.ID, randID(t, "conn-b-"), now); err != nil {
		t.Fatalf("Join: %v", err)
	}
	later := now.Add(2 * time.Minute)
	_, err := s.Join(ctx(t), sess.ID, randID(t, "conn-c-"), later)
	wantErr(t, "Join of expired, joined session", err, relay.ErrSessionExpired)
	_, err = s.Join(ctx(t), sess.ID, sess.Initiator, later)
	wantErr(t, "self Join of expired session", err, relay.ErrSessionExpired)
}

func testDelete(t *testing.T, s relay.Store) {
	now := base()
	sess := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, sess)
	joiner := randID(t, "conn-b-")
	if _, err := s.Join(ctx(t), sess.ID, joiner, now); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if err := s.Delete(ctx(t), sess.ID, sess.Initiator); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(t), sess.ID, now)
	wantErr(t, "Get after Delete", err, relay.ErrSessionNotFound)
	for _, c := range []string{sess.Initiator, joiner} {
		if l, err := s.SessionsOf(ctx(t), c); err != nil || len(l) != 0 {
			t.Errorf("SessionsOf(%s) after Delete = %v, %v; want none", c, ids(l), err)
		}
	}
	// Idempotent.
	if err := s.Delete(ctx(t), sess.ID, sess.Initiator); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := s.Delete(ctx(t), randID(t, "missing-"), "conn"); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
	// The id is free again.
	again := sess
	again.Initiator = randID(t, "conn-x-")
	mustCreate(t, s, again)
}

func testDeleteOtherIncarnation(t *testing.T, s relay.Store) {
	now := base()
	old := newSession(t, now.Add(time.Minute))
	mustCreate(t, s, old)
	if err := s.Delete(ctx(t), old.ID, old.Initiator); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	fresh := old
	fresh.Initiator = randID(t, "conn-x-")
	mustCreate(t, s, fresh)

	// A stale Delete by the old initiator (or by anybody else) must not
	// remove the new incarnation.
	for _, who := range []string{old.Initiator, randID(t, "conn-y-"), ""} {
		if err := s.Delete(ctx(t), old.ID, who); err != nil {
			t.Errorf("Delete by %q: %v, want nil (no-op)", who, err)
		}
	}
	got, err := s.Get(ctx(t), old.ID, now)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	sameSession(t, "new incarnation after stale Deletes", got, fresh)
	if l, err := s.SessionsOf(ctx(t), old.Initiator); err != nil || len(l) != 0 {
		t.Errorf("SessionsOf(old initiator) = %v, %v; want none", ids(l), err)
	}
}

func ids(l []relay.Session) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		out = append(out, s.ID)
	}
	sort.Strings(out)
	return out
}

func testSessionsOf(t *testing.T, s relay.Store) {
	now := base()
	conn := randID(t, "conn-m-")
	other := randID(t, "conn-o-")

	if l, err := s.SessionsOf(ctx(t), conn); err != nil || len(l) != 0 {
		t.Fatalf("SessionsOf(new conn) = %v, %v; want none", ids(l), err)
	}

	// conn created two sessions (one joined by other, one waiting, one
	// expired) and joined one created by other.
	created1 := relay.Session{ID: randID(t, "st-"), Initiator: conn, Expires: now.Add(time.Minute)}
	created2 := relay.Session{ID: randID(t, "st-"), Initiator: conn, Expires: now.Add(time.Minute)}
	expired := relay.Session{ID: randID(t, "st-"), Initiator: conn, Expires: now.Add(time.Second)}
	joined := relay.Session{ID: randID(t, "st-"), Initiator: other, Expires: now.Add(time.Minute)}
	unrelated := relay.Session{ID: randID(t, "st-"), Initiator: other, Expires: now.Add(time.Minute)}
	for _, x := range []relay.Session{created1, created2, expired, joined, unrelated} {
		mustCreate(t, s, x)
	}
	if _, err := s.Join(ctx(t), created1.ID, other, now); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if _, err := s.Join(ctx(t), joined.ID, conn, now); err != nil {
		t.Fatalf("Join: %v", err)
	}

	l, err := s.SessionsOf(ctx(t), conn)
	if err != nil {
		t.Fatalf("SessionsOf: %v", err)
	}
	want := ids([]relay.Session{created1, created2, expired, joined})
	if got := ids(l); !reflect.DeepEqual(got, want) {
		t.Fatalf("SessionsOf(conn) = %v, want %v", got, want)
	}
	byID := map[string]relay.Session{}
	for _, x := range l {
		byID[x.ID] = x
	}
	c1 := created1
	c1.Joiner = other
	sameSession(t, "SessionsOf record (created, joined)", byID[created1.ID], c1)
	sameSession(t, "SessionsOf record (created, waiting)", byID[created2.ID], created2)
	sameSession(t, "SessionsOf record (expired)", byID[expired.ID], expired)
	j := joined
	j.Joiner = conn
	sameSession(t, "SessionsOf record (joined)", byID[joined.ID], j)

	l, err = s.SessionsOf(ctx(t), other)
	if err != nil {
		t.Fatalf("SessionsOf(other): %v", err)
	}
	if got, want := ids(l), ids([]relay.Session{created1, joined, unrelated}); !reflect.DeepEqual(got, want) {
		t.Fatalf("SessionsOf(other) = %v, want %v", got, want)
	}

	if err := s.Delete(ctx(t), created1.ID, conn); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	l, err = s.SessionsOf(ctx(t), other)
	if err != nil {
		t.Fatalf("SessionsOf(other): %v", err)
	}
	if got, want := ids(l), ids([]relay.Session{joined, unrelated}); !reflect.DeepEqual(got, want) {
		t.Fatalf("SessionsOf(other) after Delete = %v, want %v", got, want)
	}
}

// testConcurrentJoin races several joiners on each of several sessions:
// exactly one must win each race, and the stored joiner must be the winner.
func testConcurrentJoin(t *testing.T, s relay.Store) {
	now := base()
	const rounds, joiners = 10, 8
	for r := range rounds {
		sess := newSession(t, now.Add(time.Minute))
		mustCreate(t, s, sess)
		n := 2
		if r%2 == 1 {
			n = joiners
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]error, n)
			conns   = make([]string, n)
		)
		for i := range n {
			conns[i] = randID(t, "conn-j-")
			wg.Go(func() {
				<-start
				_, results[i] = s.Join(ctx(t), sess.ID, conns[i], now)
			})
		}
		close(start)
		wg.Wait()
		winner := ""
		for i, err := range results {
			switch {
			case err == nil:
				if winner != "" {
					t.Fatalf("round %d: two joins won (%s and %s)", r, winner, conns[i])
				}
				winner = conns[i]
			case errors.Is(err, relay.ErrAlreadyJoined):
			default:
				t.Fatalf("round %d: losing Join error = %v, want ErrAlreadyJoined", r, err)
			}
		}
		if winner == "" {
			t.Fatalf("round %d: no join won", r)
		}
		got, err := s.Get(ctx(t), sess.ID, now)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Joiner != winner {
			t.Fatalf("round %d: stored joiner %q, but %q won", r, got.Joiner, winner)
		}
	}
}

// testConcurrentCreate races creators of one id: exactly one must win and the
// stored session must be the winner's.
func testConcurrentCreate(t *testing.T, s relay.Store) {
	now := base()
	const rounds, creators = 10, 4
	for r := range rounds {
		id := randID(t, "st-")
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]error, creators)
			conns   = make([]string, creators)
		)
		for i := range creators {
			conns[i] = randID(t, "conn-c-")
			wg.Go(func() {
				<-start
				results[i] = s.Create(ctx(t), relay.Session{ID: id, Initiator: conns[i], Expires: now.Add(time.Minute)})
			})
		}
		close(start)
		wg.Wait()
		winner := ""
		for i, err := range results {
			switch {
			case err == nil:
				if winner != "" {
					t.Fatalf("round %d: two creates won", r)
				}
				winner = conns[i]
			case errors.Is(err, relay.ErrSessionExists):
			default:
				t.Fatalf("round %d: losing Create error = %v, want ErrSessionExists", r, err)
			}
		}
		got, err := s.Get(ctx(t), id, now)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if winner == "" || got.Initiator != winner {
			t.Fatalf("round %d: stored initiator %q, winner %q", r, got.Initiator, winner)
		}
	}
}
