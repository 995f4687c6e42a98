package dynalite

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Table is the sessions table as the Terraform module declares it in its
// aws_dynamodb_table resource.
type Table struct {
	BillingMode  string
	HashKey      string
	RangeKey     string            // "" if none
	Attributes   map[string]string // name -> S, N or B
	Indexes      []Index           // global secondary indexes, sorted by name
	TTLAttribute string            // "" if TTL is not enabled
}

// Index is one global secondary index of Table.
type Index struct {
	Name             string
	HashKey          string
	RangeKey         string
	ProjectionType   string
	NonKeyAttributes []string
}

// TerraformTable parses the *.tf files of the module in dir and returns its single
// aws_dynamodb_table. Key-related arguments must be literals (they are, and a
// variable there would let a deployment drift from the Go store's schema).
func TerraformTable(dir string) (*Table, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	var found []*hclsyntax.Block
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, diags
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			if b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == "aws_dynamodb_table" {
				found = append(found, b)
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s: want exactly one aws_dynamodb_table, found %d", dir, len(found))
	}
	return parseTable(found[0].Body)
}

func parseTable(body *hclsyntax.Body) (*Table, error) {
	t := &Table{Attributes: map[string]string{}}
	var err error
	if t.BillingMode, err = literal(body, "billing_mode", false); err != nil {
		return nil, err
	}
	if t.HashKey, err = literal(body, "hash_key", true); err != nil {
		return nil, err
	}
	if t.RangeKey, err = literal(body, "range_key", false); err != nil {
		return nil, err
	}
	for _, b := range body.Blocks {
		switch b.Type {
		case "attribute":
			name, err := literal(b.Body, "name", true)
			if err != nil {
				return nil, err
			}
			typ, err := literal(b.Body, "type", true)
			if err != nil {
				return nil, err
			}
			t.Attributes[name] = typ
		case "global_secondary_index":
			var ix Index
			if ix.Name, err = literal(b.Body, "name", true); err != nil {
				return nil, err
			}
			if ix.HashKey, err = literal(b.Body, "hash_key", true); err != nil {
				return nil, err
			}
			if ix.RangeKey, err = literal(b.Body, "range_key", false); err != nil {
				return nil, err
			}
			if ix.ProjectionType, err = literal(b.Body, "projection_type", true); err != nil {
				return nil, err
			}
			if a, ok := b.Body.Attributes["non_key_attributes"]; ok {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					return nil, diags
				}
				for it := v.ElementIterator(); it.Next(); {
					_, e := it.Element()
					ix.NonKeyAttributes = append(ix.NonKeyAttributes, e.AsString())
				}
			}
			t.Indexes = append(t.Indexes, ix)
		case "ttl":
			enabled := true
			if a, ok := b.Body.Attributes["enabled"]; ok {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || v.Type() != cty.Bool {
					return nil, fmt.Errorf("ttl.enabled must be a literal bool")
				}
				enabled = v.True()
			}
			name, err := literal(b.Body, "attribute_name", true)
			if err != nil {
				return nil, err
			}
			if enabled {
				t.TTLAttribute = name
			}
		}
	}
	sort.Slice(t.Indexes, func(i, j int) bool { return t.Indexes[i].Name < t.Indexes[j].Name })
	return t, nil
}

// literal returns the string value of a constant argument, "" if it is absent and
// not required.
func literal(body *hclsyntax.Body, name string, required bool) (string, error) {
	a, ok := body.Attributes[name]
	if !ok {
		if required {
			return "", fmt.Errorf("aws_dynamodb_table: missing %s", name)
		}
		return "", nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		return "", fmt.Errorf("aws_dynamodb_table: %s must be a literal: %v", name, diags)
	}
	if v.Type() != cty.String {
		return "", fmt.Errorf("aws_dynamodb_table: %s must be a string", name)
	}
	return v.AsString(), nil
}

// CreateTableInput returns the DynamoDB CreateTable request that creates this table
// under the given name, as Terraform's AWS provider would.
func (t *Table) CreateTableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingMode(t.BillingMode),
		KeySchema:   keySchema(t.HashKey, t.RangeKey),
	}
	names := make([]string, 0, len(t.Attributes))
	for n := range t.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(n),
			AttributeType: types.ScalarAttributeType(t.Attributes[n]),
		})
	}
	for _, ix := range t.Indexes {
		g := types.GlobalSecondaryIndex{
			IndexName: aws.String(ix.Name),
			KeySchema: keySchema(ix.HashKey, ix.RangeKey),
			Projection: &types.Projection{
				ProjectionType: types.ProjectionType(ix.ProjectionType),
			},
		}
		if len(ix.NonKeyAttributes) > 0 {
			g.Projection.NonKeyAttributes = ix.NonKeyAttributes
		}
		if t.BillingMode == string(types.BillingModeProvisioned) {
			g.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, g)
	}
	if t.BillingMode == string(types.BillingModeProvisioned) {
		in.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
	}
	return in
}

func keySchema(hash, rng string) []types.KeySchemaElement {
	ks := []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}}
	if rng != "" {
		ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange})
	}
	return ks
}
