package dynalite

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestTableAsTerraformDefines checks that the harness really creates the table the
// module declares: DescribeTable on the live server must report the same keys and
// indexes that TerraformTable parsed.
func TestTableAsTerraformDefines(t *testing.T) {
	s := Start(t)
	name := s.CreateTable(t, "")
	def, err := TerraformTable("../../terraform")
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Client().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if d.TableStatus != types.TableStatusActive {
		t.Errorf("status %s, want ACTIVE", d.TableStatus)
	}
	if got := keysOf(d.KeySchema); got != def.HashKey+"/"+def.RangeKey {
		t.Errorf("key schema %q, want hash %q range %q", got, def.HashKey, def.RangeKey)
	}
	gotIx := map[string]string{}
	for _, g := range d.GlobalSecondaryIndexes {
		gotIx[aws.ToString(g.IndexName)] = keysOf(g.KeySchema) + " " + string(g.Projection.ProjectionType)
	}
	if len(gotIx) != len(def.Indexes) {
		t.Errorf("live table has %d indexes, Terraform declares %d", len(gotIx), len(def.Indexes))
	}
	for _, ix := range def.Indexes {
		want := ix.HashKey + "/" + ix.RangeKey + " " + ix.ProjectionType
		if gotIx[ix.Name] != want {
			t.Errorf("index %s: live %q, Terraform %q", ix.Name, gotIx[ix.Name], want)
		}
	}
	for _, a := range d.AttributeDefinitions {
		if def.Attributes[aws.ToString(a.AttributeName)] != string(a.AttributeType) {
			t.Errorf("attribute %s type %s, Terraform says %q", aws.ToString(a.AttributeName), a.AttributeType, def.Attributes[aws.ToString(a.AttributeName)])
		}
	}

	// Creating the same table again must fail: the harness talks to a real
	// DynamoDB API implementation, not a permissive stub.
	_, err = s.Client().CreateTable(context.Background(), def.CreateTableInput(name))
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("second CreateTable: got %v, want ResourceInUseException", err)
	}
}

func keysOf(ks []types.KeySchemaElement) string {
	var h, r string
	for _, k := range ks {
		if k.KeyType == types.KeyTypeHash {
			h = aws.ToString(k.AttributeName)
		} else {
			r = aws.ToString(k.AttributeName)
		}
	}
	return h + "/" + r
}

func TestTerraformTableRejectsNonLiteralKeys(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/main.tf", `resource "aws_dynamodb_table" "x" {
  hash_key = var.key
}
`)
	if _, err := TerraformTable(dir); err == nil {
		t.Fatal("a variable hash_key was accepted")
	}
	writeFile(t, dir+"/main.tf", `resource "aws_s3_bucket" "x" {}`)
	if _, err := TerraformTable(dir); err == nil {
		t.Fatal("a module without a table was accepted")
	}
}
