package dynamostore

import (
	"fmt"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/memstore"
)

// BenchmarkLifecycle measures one session's store work as the core does it
// (Create, Join, Get, SessionsOf on disconnect, Delete) against dynalite, with the
// memory store in the same run as the baseline. Each lifecycle is 7 DynamoDB
// requests (PutItem, UpdateItem, GetItem, two index Queries and a consistent
// GetItem for SessionsOf, DeleteItem); against real DynamoDB their network round
// trips (single-digit milliseconds each, in-region) dominate.
//
//	go test -run '^$' -bench Lifecycle ./relay/dynamostore
func BenchmarkLifecycle(b *testing.B) {
	srv := dynalite.Start(b)
	cfg := srv.Config()
	dyn, err := New(b.Context(), Options{Table: srv.CreateTable(b, ""), Config: &cfg})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		store relay.Store
	}{
		{"memstore", memstore.New()},
		{"dynamodb-dynalite", dyn},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			now := time.Now().Truncate(time.Second)
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("bench-%s-%08d", bc.name, i)
				a, j := "a-"+id, "b-"+id
				if err := bc.store.Create(ctx, relay.Session{ID: id, Initiator: a, Expires: now.Add(time.Minute)}); err != nil {
					b.Fatal(err)
				}
				if _, err := bc.store.Join(ctx, id, j, now); err != nil {
					b.Fatal(err)
				}
				if _, err := bc.store.Get(ctx, id, now); err != nil {
					b.Fatal(err)
				}
				l, err := bc.store.SessionsOf(ctx, j)
				if err != nil || len(l) != 1 {
					b.Fatalf("SessionsOf: %v %v", l, err)
				}
				if err := bc.store.Delete(ctx, id, a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
