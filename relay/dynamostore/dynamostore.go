// Package dynamostore is the relay.Store on Amazon DynamoDB, shared by every copy of
// the relay core at once: the Lambda's concurrent invocations, or several
// `relay serve --store dynamodb` processes behind a load balancer.
//
// # Table design
//
// One table, pay-per-request, one item per session, keyed by session id:
//
//	session_id         S  partition key (client-chosen; the core validates it)
//	initiator          S  connection id of the creator
//	joiner             S  connection id of the joiner; absent until joined
//	initiator_context  S  create-session context; absent means JSON null
//	ttl                N  expiry, Unix seconds; the table's DynamoDB TTL attribute
//
// Every state change is a single conditional write on that one item, so the
// atomicity the core relies on comes from DynamoDB itself, with no transactions:
//
//   - Create is a PutItem with attribute_not_exists(session_id): a session is never
//     overwritten (the reference relay's create overwrote sessions).
//   - Join is an UpdateItem that sets joiner only if the item exists, has no joiner,
//     was not created by the same connection and has ttl > now. Of two concurrent
//     joins exactly one wins. When the condition fails, the item's old image
//     (ReturnValuesOnConditionCheckFailure) tells "missing", "expired", "already
//     joined" and "own session" apart; without it (DynamoDB emulators ignore the
//     parameter) one consistent GetItem does.
//   - Delete is a DeleteItem conditioned on the initiator, so a stale delete can
//     never remove a later session that reused the id.
//
// # Finding a connection's sessions without a scan
//
// A disconnect must find the sessions of one connection. Two sparse, keys-only
// global secondary indexes do it: by-initiator (partition key initiator) and
// by-joiner (partition key joiner; sparse because joiner is absent until a join).
// SessionsOf queries both and then re-reads each hit with a strongly consistent
// GetItem, keeping only items where the connection is still a member. The indexes
// are only eventually consistent; the re-read makes the result exact for every
// session it returns (never a deleted or re-created one). What the indexes can miss
// is a session created or joined in the last moments (typically well under a
// second) before the disconnect; such a session still expires on time, and the
// core treats a post to the vanished connection (GoneException) as its disconnect.
// The alternative, connection items in the same table, would need a transaction per
// create and join to stay consistent, doubling the writes.
//
// # Expiry
//
// DynamoDB deletes expired items lazily, possibly days later, so expiry is decided
// on every read against the caller's clock: Get reports ErrSessionExpired and Join
// refuses in its condition. TTL deletion is only garbage collection.
//
// # Errors
//
// Conditional-check failures become the relay.Err* sentinels. Throttling
// (ProvisionedThroughputExceeded, ThrottlingException, RequestLimitExceeded) is
// retried by the SDK's standard retryer with jittered backoff, a bounded number of
// times; what still fails is returned wrapped, and the core answers INTERNAL_ERROR
// without changing anything.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/farsign/farsign/relay"
)

// The table schema. terraform/main.tf declares the same names; the test in
// terraform/ checks that they agree, and the store tests run against a table built
// from the Terraform definition.
const (
	KeySessionID         = "session_id"        // partition key, S
	AttrInitiator        = "initiator"         // S, key of IndexByInitiator
	AttrJoiner           = "joiner"            // S, key of IndexByJoiner, absent until joined
	AttrInitiatorContext = "initiator_context" // S, absent for a null context
	AttrTTL              = "ttl"               // N, Unix seconds; the DynamoDB TTL attribute

	IndexByInitiator = "by-initiator" // GSI, KEYS_ONLY
	IndexByJoiner    = "by-joiner"    // GSI, KEYS_ONLY
)

// Actions returns the IAM actions the store calls, for least-privilege policies.
// The Terraform module grants exactly these (checked by its test), and this
// package's test checks that a full conformance run calls exactly these.
func Actions() []string {
	return []string{
		"dynamodb:DeleteItem",
		"dynamodb:GetItem",
		"dynamodb:PutItem",
		"dynamodb:Query",
		"dynamodb:UpdateItem",
	}
}

// maxSessionsOf bounds how many sessions SessionsOf reads for one connection.
// The core caps sessions per connection far below this; the bound only protects a
// disconnect from an unbounded amount of work if the table was filled otherwise.
const maxSessionsOf = 256

// Options configure New.
type Options struct {
	// Table is the table name (required).
	Table string
	// Region is the AWS region; empty uses the SDK's usual sources (AWS_REGION,
	// the shared config file).
	Region string
	// Endpoint overrides the DynamoDB endpoint URL, e.g. http://127.0.0.1:8000 for
	// dynalite or DynamoDB Local. Empty uses the SDK's usual resolution, which
	// includes AWS_ENDPOINT_URL_DYNAMODB.
	Endpoint string
	// MaxAttempts bounds the attempts per call, retries of throttled calls
	// included. Zero means 5.
	MaxAttempts int
	// MaxBackoff caps the jittered wait between attempts. Zero means 1 s, which
	// keeps a fully throttled call within a few seconds: well inside a Lambda
	// timeout, and short enough for a waiting client.
	MaxBackoff time.Duration
	// Config, if set, is used instead of loading the default SDK configuration
	// (environment, shared files, instance role). Region and Endpoint still apply.
	Config *aws.Config
}

// Store is a relay.Store backed by one DynamoDB table. It is safe for concurrent
// use.
type Store struct {
	db    *dynamodb.Client
	table string
}

var _ relay.Store = (*Store)(nil)

// New returns a Store for the table in opts. It loads AWS credentials the usual way
// but makes no request: a missing table shows up as an error on first use.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Table == "" {
		return nil, errors.New("dynamostore: no table name")
	}
	var cfg aws.Config
	if opts.Config != nil {
		cfg = opts.Config.Copy()
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("dynamostore: loading AWS configuration: %w", err)
		}
		cfg.HTTPClient = pooledHTTPClient()
	}
	if opts.Region != "" {
		cfg.Region = opts.Region
	}
	if cfg.Region == "" {
		return nil, errors.New("dynamostore: no AWS region (set --region or AWS_REGION)")
	}
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff := opts.MaxBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = backoff
			// The client-side retry quota protects a service from retry storms,
			// but it fails calls that have attempts left when many throttles
			// arrive at once; attempts are already bounded, so do without it.
			o.RateLimiter = ratelimit.None
		})
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})
	return &Store{db: db, table: opts.Table}, nil
}

// maxConns is the connection pool to the DynamoDB endpoint of a Store whose
// configuration New loaded itself (a long-running `relay serve`).
const maxConns = 256

// pooledHTTPClient is the SDK's default client with a fixed pool kept idle.
// The default opens up to 2,048 connections per host but keeps only 10
// idle, so a burst of requests dials and drops hundreds of connections;
// measured at 10,000 sessions exchanging at once through two processes,
// that churn stalled reads and lost sessions, and the cap removed it
// (docs/benchmarks.md). A Lambda serves one event at a time and brings
// its own Config, which is left as given.
func pooledHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxConnsPerHost = maxConns
		t.MaxIdleConnsPerHost = maxConns
	})
}

// NewFromClient returns a Store using an existing client.
func NewFromClient(db *dynamodb.Client, table string) *Store {
	return &Store{db: db, table: table}
}

// Create implements relay.Store.
func (s *Store) Create(ctx context.Context, sess relay.Session) error {
	if sess.ID == "" || sess.Initiator == "" {
		return errors.New("dynamostore: create: empty session id or initiator")
	}
	item := map[string]types.AttributeValue{
		KeySessionID:  str(sess.ID),
		AttrInitiator: str(sess.Initiator),
		AttrTTL:       &types.AttributeValueMemberN{Value: strconv.FormatInt(sess.Expires.Unix(), 10)},
	}
	if sess.Joiner != "" {
		item[AttrJoiner] = str(sess.Joiner)
	}
	if sess.InitiatorContext != nil {
		item[AttrInitiatorContext] = str(*sess.InitiatorContext)
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{
			"#id": KeySessionID,
		},
	})
	if isConditionFailed(err) {
		return relay.ErrSessionExists
	}
	return s.wrap("create", err)
}

// joinAttempts bounds Join's retries when a failed condition cannot be explained
// by the item read afterwards (it changed in between).
const joinAttempts = 3

// Join implements relay.Store.
func (s *Store) Join(ctx context.Context, id, conn string, now time.Time) (relay.Session, error) {
	if conn == "" {
		return relay.Session{}, errors.New("dynamostore: join: empty connection id")
	}
	for range joinAttempts {
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:        &s.table,
			Key:              key(id),
			UpdateExpression: aws.String("SET #j = :c"),
			ConditionExpression: aws.String(
				"attribute_exists(#id) AND attribute_not_exists(#j) AND #i <> :c AND #ttl > :now"),
			ExpressionAttributeNames: map[string]string{
				"#id": KeySessionID, "#i": AttrInitiator, "#j": AttrJoiner, "#ttl": AttrTTL,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":c":   str(conn),
				":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)},
			},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			return decode(out.Attributes)
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return relay.Session{}, s.wrap("join", err)
		}
		old := ccf.Item
		if old == nil {
			// Either the item is missing, or the endpoint ignored
			// ReturnValuesOnConditionCheckFailure: look.
			if old, err = s.getItem(ctx, id); err != nil {
				return relay.Session{}, s.wrap("join", err)
			}
		}
		if err := whyNotJoinable(old, conn, now); err != nil {
			return relay.Session{}, err
		}
		// The item we read is joinable: it changed after our condition failed
		// (deleted and created again). Try again.
	}
	return relay.Session{}, fmt.Errorf("dynamostore: join: session kept changing during %d attempts", joinAttempts)
}

// whyNotJoinable returns the relay error that explains why conn cannot join the
// session in item at now, in the precedence relay.Store.Join documents, or nil if
// it could. A corrupt item is an error of its own.
func whyNotJoinable(item map[string]types.AttributeValue, conn string, now time.Time) error {
	if item == nil {
		return relay.ErrSessionNotFound
	}
	sess, err := decode(item)
	if err != nil {
		return err
	}
	switch {
	case sess.ExpiredAt(now):
		return relay.ErrSessionExpired
	case sess.Joined():
		return relay.ErrAlreadyJoined
	case sess.Initiator == conn:
		return relay.ErrSelfJoin
	}
	return nil
}

// Get implements relay.Store.
func (s *Store) Get(ctx context.Context, id string, now time.Time) (relay.Session, error) {
	item, err := s.getItem(ctx, id)
	if err != nil {
		return relay.Session{}, s.wrap("get", err)
	}
	if item == nil {
		return relay.Session{}, relay.ErrSessionNotFound
	}
	sess, err := decode(item)
	if err != nil {
		return relay.Session{}, err
	}
	if sess.ExpiredAt(now) {
		return sess, relay.ErrSessionExpired
	}
	return sess, nil
}

// getItem reads session id with a strongly consistent read; nil if missing.
func (s *Store) getItem(ctx context.Context, id string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// Delete implements relay.Store.
func (s *Store) Delete(ctx context.Context, id, initiator string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       key(id),
		ConditionExpression:       aws.String("#i = :i"),
		ExpressionAttributeNames:  map[string]string{"#i": AttrInitiator},
		ExpressionAttributeValues: map[string]types.AttributeValue{":i": str(initiator)},
	})
	if isConditionFailed(err) {
		return nil // missing, or another incarnation: not ours to delete
	}
	return s.wrap("delete", err)
}

// SessionsOf implements relay.Store.
func (s *Store) SessionsOf(ctx context.Context, conn string) ([]relay.Session, error) {
	if conn == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var ids []string
	for _, q := range []struct{ index, attr string }{
		{IndexByInitiator, AttrInitiator},
		{IndexByJoiner, AttrJoiner},
	} {
		p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName:                 &s.table,
			IndexName:                 aws.String(q.index),
			KeyConditionExpression:    aws.String("#k = :c"),
			ExpressionAttributeNames:  map[string]string{"#k": q.attr},
			ExpressionAttributeValues: map[string]types.AttributeValue{":c": str(conn)},
		})
		for p.HasMorePages() && len(ids) < maxSessionsOf {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, s.wrap("sessions of connection", err)
			}
			for _, it := range page.Items {
				id, ok := it[KeySessionID].(*types.AttributeValueMemberS)
				if !ok || seen[id.Value] || len(ids) >= maxSessionsOf {
					continue
				}
				seen[id.Value] = true
				ids = append(ids, id.Value)
			}
		}
	}
	var out []relay.Session
	for _, id := range ids {
		item, err := s.getItem(ctx, id)
		if err != nil {
			return nil, s.wrap("sessions of connection", err)
		}
		if item == nil {
			continue // deleted since the index saw it
		}
		sess, err := decode(item)
		if err != nil {
			return nil, err
		}
		if sess.Initiator == conn || sess.Joiner == conn {
			out = append(out, sess)
		}
	}
	return out, nil
}

// wrap turns an SDK error into a store failure that says what failed. It keeps the
// SDK error in the chain (errors.As still finds it) and adds a hint for the
// failures an operator can fix.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return fmt.Errorf("dynamostore: %s: table %q not found: %w", op, s.table, err)
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		return fmt.Errorf("dynamostore: %s: throttled after retries: %w", op, err)
	}
	return fmt.Errorf("dynamostore: %s: %w", op, err)
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeySessionID: str(id)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// decode turns an item into a Session, refusing items that do not have the shape
// this package writes.
func decode(item map[string]types.AttributeValue) (relay.Session, error) {
	var sess relay.Session
	id, ok := item[KeySessionID].(*types.AttributeValueMemberS)
	if !ok {
		return sess, errors.New("dynamostore: corrupt item: no session_id string")
	}
	sess.ID = id.Value
	ini, ok := item[AttrInitiator].(*types.AttributeValueMemberS)
	if !ok || ini.Value == "" {
		return sess, errors.New("dynamostore: corrupt item: no initiator")
	}
	sess.Initiator = ini.Value
	if v, present := item[AttrJoiner]; present {
		j, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return sess, errors.New("dynamostore: corrupt item: joiner is not a string")
		}
		sess.Joiner = j.Value
	}
	if v, present := item[AttrInitiatorContext]; present {
		c, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return sess, errors.New("dynamostore: corrupt item: context is not a string")
		}
		ctx := c.Value
		sess.InitiatorContext = &ctx
	}
	n, ok := item[AttrTTL].(*types.AttributeValueMemberN)
	if !ok {
		return sess, errors.New("dynamostore: corrupt item: no ttl number")
	}
	secs, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return sess, errors.New("dynamostore: corrupt item: ttl is not an integer")
	}
	sess.Expires = time.Unix(secs, 0)
	return sess, nil
}
