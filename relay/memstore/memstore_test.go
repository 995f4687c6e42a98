package memstore_test

import (
	"testing"
	"time"

	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
	"github.com/farsign/farsign/relay/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) relay.Store { return memstore.New() })
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	now := time.Unix(1_700_000_000, 0)
	short := relay.Session{ID: "short-session-0001", Initiator: "a1", Expires: now.Add(time.Second)}
	long := relay.Session{ID: "long-session-00001", Initiator: "a2", Expires: now.Add(time.Hour)}
	for _, x := range []relay.Session{short, long} {
		if err := s.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Join(ctx, short.ID, "b1", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.Sweep(ctx, now)
	if err != nil || len(got) != 0 {
		t.Fatalf("Sweep before expiry = %v, %v; want nothing", got, err)
	}
	got, err = s.Sweep(ctx, now.Add(time.Second))
	if err != nil || len(got) != 1 || got[0].ID != short.ID || got[0].Joiner != "b1" {
		t.Fatalf("Sweep at expiry = %+v, %v; want the short session with its joiner", got, err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len after Sweep = %d, want 1", s.Len())
	}
	for _, c := range []string{"a1", "b1"} {
		if l, _ := s.SessionsOf(ctx, c); len(l) != 0 {
			t.Errorf("SessionsOf(%s) after Sweep = %v, want none (index must be cleaned too)", c, l)
		}
	}
}
