package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableDefinition returns the CreateTable request for the sessions table: the
// schema at the top of this file's package documentation. terraform/main.tf
// declares the same table (its test checks they are equal). TTL is a separate
// call (UpdateTimeToLive on AttrTTL).
func TableDefinition(name string) *dynamodb.CreateTableInput {
	s := types.ScalarAttributeTypeS
	keysOnly := &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}
	hash := func(attr string) []types.KeySchemaElement {
		return []types.KeySchemaElement{{AttributeName: aws.String(attr), KeyType: types.KeyTypeHash}}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   hash(KeySessionID),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrInitiator), AttributeType: s},
			{AttributeName: aws.String(AttrJoiner), AttributeType: s},
			{AttributeName: aws.String(KeySessionID), AttributeType: s},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{IndexName: aws.String(IndexByInitiator), KeySchema: hash(AttrInitiator), Projection: keysOnly},
			{IndexName: aws.String(IndexByJoiner), KeySchema: hash(AttrJoiner), Projection: keysOnly},
		},
	}
}

// CreateTable creates the store's table if it does not exist, waits until it is
// active, and enables TTL where the endpoint supports it. It is for local
// development and self-hosted setups (`relay serve --store dynamodb` against
// DynamoDB Local or dynalite); in AWS the Terraform module owns the table, and
// the function's IAM role is not allowed to create tables.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.db.CreateTable(ctx, TableDefinition(s.table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: creating table %q: %w", s.table, err)
	}
	w := dynamodb.NewTableExistsWaiter(s.db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}, 2*time.Minute); err != nil {
		return fmt.Errorf("dynamostore: waiting for table %q: %w", s.table, err)
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &s.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL), Enabled: aws.Bool(true),
		},
	})
	// TTL only collects garbage (expiry is checked on every read), and local
	// emulators lack it or refuse a second enable: not worth failing for.
	_ = err
	return nil
}
