package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/storetest"
)

// newStore starts dynalite, creates the table from the Terraform module and returns
// a Store on it. cfgEdit may change the SDK configuration first.
func newStore(t *testing.T, opts Options, cfgEdit func(*aws.Config)) (*Store, *dynalite.Server) {
	t.Helper()
	srv := dynalite.Start(t)
	opts.Table = srv.CreateTable(t, "")
	cfg := srv.Config()
	if cfgEdit != nil {
		cfgEdit(&cfg)
	}
	opts.Config = &cfg
	st, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

// TestConformance runs the shared relay.Store suite (the one the memory store
// passes, concurrent create/join races included) against a real DynamoDB API, and
// records every DynamoDB operation the store calls on the way: the set must be
// exactly Actions(), which is what the Terraform policy grants.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	called := map[string]bool{}
	record := middleware.InitializeMiddlewareFunc("recordOperation",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			mu.Lock()
			called["dynamodb:"+middleware.GetOperationName(ctx)] = true
			mu.Unlock()
			return next.HandleInitialize(ctx, in)
		})
	st, _ := newStore(t, Options{}, func(c *aws.Config) {
		c.APIOptions = append(c.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(record, middleware.After)
		})
	})
	storetest.Run(t, func(t *testing.T) relay.Store { return st })

	var got []string
	for op := range called {
		got = append(got, op)
	}
	sort.Strings(got)
	if want := Actions(); !slices.Equal(got, want) {
		t.Errorf("operations called during the suite = %v, Actions() = %v", got, want)
	}
}

// TestThrottling puts a proxy in front of dynalite that answers like a throttled
// DynamoDB (HTTP 400, ProvisionedThroughputExceededException) for a while: the
// store must ride out a short burst, and fail cleanly, changing nothing, when the
// throttling outlasts its attempts.
func TestThrottling(t *testing.T) {
	srv := dynalite.Start(t)
	table := srv.CreateTable(t, "")
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var throttleNext atomic.Int64
	var throttled atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if throttleNext.Add(-1) >= 0 {
			throttled.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	cfg := srv.Config()
	st, err := New(context.Background(), Options{
		Table: table, Endpoint: front.URL, Config: &cfg,
		MaxAttempts: 4, MaxBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	sess := relay.Session{ID: "throttle-1", Initiator: "conn-a", Expires: now.Add(time.Minute)}

	throttleNext.Store(3) // three throttles, then through: the 4th attempt works
	if err := st.Create(t.Context(), sess); err != nil {
		t.Fatalf("Create through a short throttle burst: %v", err)
	}
	if n := throttled.Load(); n != 3 {
		t.Fatalf("proxy throttled %d requests, want 3", n)
	}

	throttleNext.Store(1 << 30) // throttle everything
	_, err = st.Join(t.Context(), sess.ID, "conn-b", now)
	if err == nil {
		t.Fatal("Join succeeded through permanent throttling")
	}
	for _, sentinel := range []error{relay.ErrSessionNotFound, relay.ErrAlreadyJoined, relay.ErrSessionExpired} {
		if errors.Is(err, sentinel) {
			t.Fatalf("throttling reported as %v", sentinel)
		}
	}
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("error %q does not say it was throttled", err)
	}
	throttleNext.Store(0)
	got, err := st.Get(t.Context(), sess.ID, now)
	if err != nil || got.Joined() {
		t.Fatalf("after the failed Join: %+v, %v; want the session unjoined", got, err)
	}
}

// TestCorruptItem: an item this package did not write (wrong types, missing
// attributes) is reported as an error, never decoded into a half session.
func TestCorruptItem(t *testing.T) {
	st, srv := newStore(t, Options{}, nil)
	now := time.Now()
	items := map[string]map[string]types.AttributeValue{
		"no-initiator": {AttrTTL: &types.AttributeValueMemberN{Value: "4000000000"}},
		"bad-ttl":      {AttrInitiator: str("c"), AttrTTL: &types.AttributeValueMemberS{Value: "soon"}},
		"bad-context":  {AttrInitiator: str("c"), AttrInitiatorContext: &types.AttributeValueMemberN{Value: "1"}, AttrTTL: &types.AttributeValueMemberN{Value: "4000000000"}},
	}
	for id, item := range items {
		item[KeySessionID] = str(id)
		if _, err := srv.Client().PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &st.table, Item: item}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(t.Context(), id, now); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("Get(%s) = %v, want a corrupt-item error", id, err)
		}
	}
}

// TestWhyNotJoinable covers the classification of a failed join from the item's
// old image, which real DynamoDB returns with the ConditionalCheckFailedException
// (dynalite does not, so the conformance run reaches it through GetItem).
func TestWhyNotJoinable(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	item := func(joiner string, expires int64) map[string]types.AttributeValue {
		m := map[string]types.AttributeValue{
			KeySessionID:  str("s"),
			AttrInitiator: str("a"),
			AttrTTL:       &types.AttributeValueMemberN{Value: strconv.FormatInt(expires, 10)},
		}
		if joiner != "" {
			m[AttrJoiner] = str(joiner)
		}
		return m
	}
	live, dead := now.Unix()+60, now.Unix()
	cases := []struct {
		name string
		item map[string]types.AttributeValue
		conn string
		want error
	}{
		{"missing", nil, "b", relay.ErrSessionNotFound},
		{"expired exactly now", item("", dead), "b", relay.ErrSessionExpired},
		{"expired and joined", item("c", dead), "b", relay.ErrSessionExpired},
		{"joined", item("c", live), "b", relay.ErrAlreadyJoined},
		{"joined by the same conn", item("b", live), "b", relay.ErrAlreadyJoined},
		{"self", item("", live), "a", relay.ErrSelfJoin},
		{"joinable", item("", live), "b", nil},
	}
	for _, c := range cases {
		if got := whyNotJoinable(c.item, c.conn, now); !errors.Is(got, c.want) || (c.want == nil && got != nil) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNewNeedsTableAndRegion(t *testing.T) {
	if _, err := New(t.Context(), Options{Config: &aws.Config{Region: "us-east-1"}}); err == nil {
		t.Error("New without a table succeeded")
	}
	if _, err := New(t.Context(), Options{Table: "t", Config: &aws.Config{}}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("New without a region: %v, want a region error", err)
	}
}

// TestMissingTable: a wrong table name is a clear store failure, not a "session
// not found".
func TestMissingTable(t *testing.T) {
	srv := dynalite.Start(t)
	cfg := srv.Config()
	st, err := New(t.Context(), Options{Table: "no-such-table", Config: &cfg, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(t.Context(), "x", time.Now())
	if err == nil || errors.Is(err, relay.ErrSessionNotFound) || !strings.Contains(err.Error(), `table "no-such-table" not found`) {
		t.Fatalf("Get on a missing table: %v", err)
	}
}

// TestTableDefinitionIsTerraforms: the Go definition of the table (used by
// CreateTable for local setups) is the one Terraform deploys.
func TestTableDefinitionIsTerraforms(t *testing.T) {
	tf, err := dynalite.TerraformTable("../../terraform")
	if err != nil {
		t.Fatal(err)
	}
	want := tf.CreateTableInput("t")
	got := TableDefinition("t")
	if !reflect.DeepEqual(canonical(got), canonical(want)) {
		t.Errorf("TableDefinition:\n%+v\nTerraform:\n%+v", canonical(got), canonical(want))
	}
	if tf.TTLAttribute != AttrTTL {
		t.Errorf("Terraform TTL attribute %q, store uses %q", tf.TTLAttribute, AttrTTL)
	}
}

// canonical renders a CreateTableInput as comparable strings.
func canonical(in *dynamodb.CreateTableInput) []string {
	out := []string{"billing " + string(in.BillingMode)}
	for _, k := range in.KeySchema {
		out = append(out, "key "+aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	for _, a := range in.AttributeDefinitions {
		out = append(out, "attr "+aws.ToString(a.AttributeName)+" "+string(a.AttributeType))
	}
	for _, g := range in.GlobalSecondaryIndexes {
		for _, k := range g.KeySchema {
			out = append(out, "gsi "+aws.ToString(g.IndexName)+" "+aws.ToString(k.AttributeName)+" "+string(k.KeyType)+" "+string(g.Projection.ProjectionType)+" "+strings.Join(g.Projection.NonKeyAttributes, ","))
		}
	}
	sort.Strings(out)
	return out
}

// TestCreateTable: the local-setup path creates a working table, and is
// idempotent.
func TestCreateTable(t *testing.T) {
	srv := dynalite.Start(t)
	cfg := srv.Config()
	st, err := New(t.Context(), Options{Table: "local-sessions", Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.CreateTable(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	if err := st.Create(t.Context(), relay.Session{ID: "local-session-0001", Initiator: "a", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if l, err := st.SessionsOf(t.Context(), "a"); err != nil || len(l) != 1 {
		t.Fatalf("SessionsOf on the created table: %v, %v", l, err)
	}
}

// TestJoinRaceAcrossClients: two stores with separate SDK clients (as two Lambda
// instances or two relay processes) race to join the same sessions; DynamoDB's
// conditional update lets exactly one win each time.
func TestJoinRaceAcrossClients(t *testing.T) {
	srv := dynalite.Start(t)
	table := srv.CreateTable(t, "")
	stores := make([]*Store, 2)
	for i := range stores {
		cfg := srv.Config()
		st, err := New(t.Context(), Options{Table: table, Config: &cfg})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = st
	}
	now := time.Now().Truncate(time.Second)
	for round := range 20 {
		id := fmt.Sprintf("race-session-%04d", round)
		if err := stores[0].Create(t.Context(), relay.Session{ID: id, Initiator: "a", Expires: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, st := range stores {
			wg.Go(func() {
				<-start
				_, errs[i] = st.Join(t.Context(), id, fmt.Sprintf("joiner-%d", i), now)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, relay.ErrAlreadyJoined):
				t.Fatalf("round %d: loser got %v, want ErrAlreadyJoined", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d joins won, want exactly 1", round, wins)
		}
	}
}
