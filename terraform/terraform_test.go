// Package terraform holds no Go code: this test checks the Terraform module in
// this folder against the Go code it deploys, since terraform itself (and the
// AWS provider) are not available to the test suite.
package terraform

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/relay/apigw"
	"github.com/farsign/farsign/relay/dynamostore"
	"github.com/farsign/farsign/relay/lambda"
)

// module is one parsed Terraform module (a folder of .tf files).
type module struct {
	dir    string
	blocks []*hclsyntax.Block
}

func load(t *testing.T, dir string) *module {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	m := &module{dir: dir}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		m.blocks = append(m.blocks, file.Body.(*hclsyntax.Body).Blocks...)
	}
	return m
}

// find returns the top-level blocks of a type whose labels start with labels.
func (m *module) find(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
			out = append(out, b)
		}
	}
	return out
}

func (m *module) one(t *testing.T, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	bs := m.find(typ, labels...)
	if len(bs) != 1 {
		t.Fatalf("%s: want one %s %v, found %d", m.dir, typ, labels, len(bs))
	}
	return bs[0]
}

// walk calls fn for every expression in the module, nested blocks included.
func (m *module) walk(fn func(hclsyntax.Expression)) {
	var body func(*hclsyntax.Body)
	body = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			fn(a.Expr)
		}
		for _, nb := range b.Blocks {
			body(nb.Body)
		}
	}
	for _, b := range m.blocks {
		body(b.Body)
	}
}

// constant evaluates an expression that must not depend on anything.
func constant(t *testing.T, e hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%v: not a constant: %v", e.Range(), diags)
	}
	return v
}

func strs(v cty.Value) []string {
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

func moduleDirs() []string { return []string{".", filepath.Join("examples", "basic")} }

// TestFormatted checks every .tf file is byte-for-byte what `terraform fmt` (which
// is hclwrite.Format) would write.
func TestFormatted(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".tf") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted the way `terraform fmt` would write it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestVariables: every declared variable is used, every used variable is declared,
// and each one is documented and typed.
func TestVariables(t *testing.T) {
	for _, dir := range moduleDirs() {
		m := load(t, dir)
		declared := map[string]bool{}
		for _, b := range m.find("variable") {
			declared[b.Labels[0]] = true
			for _, attr := range []string{"description", "type"} {
				if _, ok := b.Body.Attributes[attr]; !ok {
					t.Errorf("%s: variable %q has no %s", dir, b.Labels[0], attr)
				}
			}
		}
		used := map[string]bool{}
		m.walk(func(e hclsyntax.Expression) {
			for _, tr := range e.Variables() {
				if tr.RootName() == "var" && len(tr) > 1 {
					if a, ok := tr[1].(hcl.TraverseAttr); ok {
						used[a.Name] = true
					}
				}
			}
		})
		for v := range declared {
			if !used[v] {
				t.Errorf("%s: variable %q is declared but never used", dir, v)
			}
		}
		for v := range used {
			if !declared[v] {
				t.Errorf("%s: var.%s is used but not declared", dir, v)
			}
		}
	}
}

func TestOutputs(t *testing.T) {
	m := load(t, ".")
	outs := map[string]*hclsyntax.Block{}
	for _, b := range m.find("output") {
		outs[b.Labels[0]] = b
		if _, ok := b.Body.Attributes["description"]; !ok {
			t.Errorf("output %q has no description", b.Labels[0])
		}
	}
	for _, want := range []string{"wss_url", "management_endpoint", "api_id", "function_name", "table_name", "table_arn", "lambda_log_group"} {
		if outs[want] == nil {
			t.Errorf("output %q missing", want)
		}
	}
	// The URL is the stage's wss endpoint, or the custom domain's.
	if o := outs["wss_url"]; o != nil {
		src := string(o.Body.Attributes["value"].SrcRange.SliceBytes(mustRead(t, o.Body.Attributes["value"].SrcRange.Filename)))
		for _, part := range []string{"api_endpoint", "aws_apigatewayv2_stage.relay.name", `"wss://${var.domain_name}/"`} {
			if !strings.Contains(src, part) {
				t.Errorf("wss_url value %s does not use %s", src, part)
			}
		}
	}
	ex := load(t, filepath.Join("examples", "basic"))
	if len(ex.find("output", "wss_url")) != 1 {
		t.Errorf("the example does not print wss_url")
	}
	mod := ex.one(t, "module", "relay")
	if src := constant(t, mod.Body.Attributes["source"].Expr).AsString(); src != "../.." {
		t.Errorf("example uses module source %q, want ../..", src)
	}
	// The example sets every variable the module requires.
	for _, v := range m.find("variable") {
		if _, hasDefault := v.Body.Attributes["default"]; hasDefault {
			continue
		}
		if _, set := mod.Body.Attributes[v.Labels[0]]; !set {
			t.Errorf("example does not set required variable %q", v.Labels[0])
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTableMatchesStore: the table Terraform creates has the keys, indexes and TTL
// attribute relay/dynamostore reads and writes.
func TestTableMatchesStore(t *testing.T) {
	tab, err := dynalite.TerraformTable(".")
	if err != nil {
		t.Fatal(err)
	}
	if tab.BillingMode != "PAY_PER_REQUEST" {
		t.Errorf("billing_mode %q, want PAY_PER_REQUEST", tab.BillingMode)
	}
	if tab.HashKey != dynamostore.KeySessionID || tab.RangeKey != "" {
		t.Errorf("key schema hash=%q range=%q, want hash=%q and no range key", tab.HashKey, tab.RangeKey, dynamostore.KeySessionID)
	}
	wantAttrs := map[string]string{
		dynamostore.KeySessionID:  "S",
		dynamostore.AttrInitiator: "S",
		dynamostore.AttrJoiner:    "S",
	}
	if !mapsEqual(tab.Attributes, wantAttrs) {
		t.Errorf("attribute definitions %v, want %v", tab.Attributes, wantAttrs)
	}
	wantIx := []dynalite.Index{
		{Name: dynamostore.IndexByInitiator, HashKey: dynamostore.AttrInitiator, ProjectionType: "KEYS_ONLY"},
		{Name: dynamostore.IndexByJoiner, HashKey: dynamostore.AttrJoiner, ProjectionType: "KEYS_ONLY"},
	}
	sort.Slice(wantIx, func(i, j int) bool { return wantIx[i].Name < wantIx[j].Name })
	if len(tab.Indexes) != len(wantIx) {
		t.Fatalf("indexes %+v, want %+v", tab.Indexes, wantIx)
	}
	for i := range wantIx {
		g, w := tab.Indexes[i], wantIx[i]
		if g.Name != w.Name || g.HashKey != w.HashKey || g.RangeKey != "" || g.ProjectionType != w.ProjectionType {
			t.Errorf("index %+v, want %+v", g, w)
		}
	}
	if tab.TTLAttribute != dynamostore.AttrTTL {
		t.Errorf("TTL attribute %q (enabled), want %q", tab.TTLAttribute, dynamostore.AttrTTL)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestIAMLeastPrivilege: the function's policy grants exactly the DynamoDB and
// execute-api actions the Go code calls (dynamostore.Actions, whose test records
// the calls the store really makes, and apigw.Actions), scoped to this module's
// table, indexes and @connections, plus writing to its own log group.
func TestIAMLeastPrivilege(t *testing.T) {
	m := load(t, ".")
	doc := m.one(t, "data", "aws_iam_policy_document", "lambda")
	granted := map[string][]string{} // action -> resource expressions
	for _, st := range doc.Body.Blocks {
		if st.Type != "statement" {
			continue
		}
		if eff, ok := st.Body.Attributes["effect"]; ok && constant(t, eff.Expr).AsString() != "Allow" {
			t.Errorf("unexpected effect in statement %v", st.Range())
		}
		if _, ok := st.Body.Attributes["not_actions"]; ok {
			t.Errorf("statement %v uses not_actions", st.Range())
		}
		actions := strs(constant(t, st.Body.Attributes["actions"].Expr))
		resAttr, ok := st.Body.Attributes["resources"]
		if !ok {
			t.Fatalf("statement %v has no resources", st.Range())
		}
		res := string(resAttr.Expr.Range().SliceBytes(mustRead(t, resAttr.Expr.Range().Filename)))
		if strings.Contains(res, `"*"`) {
			t.Errorf("statement %v grants on every resource: %s", st.Range(), res)
		}
		for _, a := range actions {
			if strings.Contains(a, "*") {
				t.Errorf("wildcard action %q", a)
			}
			granted[a] = append(granted[a], res)
		}
	}
	byService := func(prefix string) []string {
		var out []string
		for a := range granted {
			if strings.HasPrefix(a, prefix) {
				out = append(out, a)
			}
		}
		sort.Strings(out)
		return out
	}
	check := func(prefix string, want []string) {
		want = slices.Clone(want)
		sort.Strings(want)
		if got := byService(prefix); !slices.Equal(got, want) {
			t.Errorf("policy grants %v, the code calls %v", got, want)
		}
	}
	check("dynamodb:", dynamostore.Actions())
	check("execute-api:", apigw.Actions())
	check("logs:", []string{"logs:CreateLogStream", "logs:PutLogEvents"})
	if len(granted) != len(dynamostore.Actions())+len(apigw.Actions())+2 {
		t.Errorf("policy grants actions of other services: %v", granted)
	}
	for a, res := range granted {
		for _, r := range res {
			switch {
			case a == "dynamodb:Query" && !strings.Contains(r, "aws_dynamodb_table.sessions.arn}/index/"):
				t.Errorf("%s granted on %s, want only the table's indexes", a, r)
			case strings.HasPrefix(a, "dynamodb:") && a != "dynamodb:Query" && r != "[aws_dynamodb_table.sessions.arn]":
				t.Errorf("%s granted on %s, want only the sessions table", a, r)
			case strings.HasPrefix(a, "execute-api:") && (!strings.Contains(r, "/@connections/*") || !strings.Contains(r, "execution_arn")):
				t.Errorf("%s granted on %s, want only this API's @connections", a, r)
			}
		}
	}
}

// TestLambdaFunction: the function is what the build script produces and what
// cmd/relay-lambda reads.
func TestLambdaFunction(t *testing.T) {
	m := load(t, ".")
	fn := m.one(t, "resource", "aws_lambda_function", "relay")
	attr := func(name string) cty.Value { return constant(t, fn.Body.Attributes[name].Expr) }
	if got := attr("runtime").AsString(); got != "provided.al2023" {
		t.Errorf("runtime %q", got)
	}
	if got := attr("handler").AsString(); got != "bootstrap" {
		t.Errorf("handler %q", got)
	}
	if got := strs(attr("architectures")); !slices.Equal(got, []string{"arm64"}) {
		t.Errorf("architectures %v", got)
	}
	var env *hclsyntax.ObjectConsExpr
	for _, b := range fn.Body.Blocks {
		if b.Type == "environment" {
			env, _ = b.Body.Attributes["variables"].Expr.(*hclsyntax.ObjectConsExpr)
		}
	}
	if env == nil {
		t.Fatal("the function has no environment variables object")
	}
	known := map[string]bool{}
	for _, k := range []string{lambda.EnvTable, lambda.EnvManagementEndpoint, lambda.EnvMaxTTL, lambda.EnvMOTD,
		lambda.EnvMaxSessions, lambda.EnvMaxMessageBytes, lambda.EnvMessageRate, lambda.EnvMessageBurst,
		lambda.EnvLogLevel, lambda.EnvMetricsNamespace} {
		known[k] = true
	}
	set := map[string]bool{}
	for _, item := range env.Items {
		k := constant(t, item.KeyExpr).AsString()
		set[k] = true
		if !known[k] {
			t.Errorf("environment variable %s is not read by relay/lambda", k)
		}
	}
	for _, k := range []string{lambda.EnvTable, lambda.EnvManagementEndpoint, lambda.EnvMaxTTL, lambda.EnvMOTD} {
		if !set[k] {
			t.Errorf("environment variable %s is not set", k)
		}
	}

	route := m.one(t, "resource", "aws_apigatewayv2_route", "relay")
	call, ok := route.Body.Attributes["for_each"].Expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "toset" || len(call.Args) != 1 {
		t.Fatal("routes: want for_each = toset([...])")
	}
	routes := strs(constant(t, call.Args[0]))
	sort.Strings(routes)
	if !slices.Equal(routes, []string{"$connect", "$default", "$disconnect"}) {
		t.Errorf("routes %v", routes)
	}
	if got := constant(t, m.one(t, "resource", "aws_apigatewayv2_api", "relay").Body.Attributes["protocol_type"].Expr).AsString(); got != "WEBSOCKET" {
		t.Errorf("API protocol %q", got)
	}
	for _, lg := range m.find("resource", "aws_cloudwatch_log_group") {
		if _, ok := lg.Body.Attributes["retention_in_days"]; !ok {
			t.Errorf("log group %s has no retention", lg.Labels[1])
		}
	}
	stage := m.one(t, "resource", "aws_apigatewayv2_stage", "relay")
	var throttled bool
	for _, b := range stage.Body.Blocks {
		if b.Type == "default_route_settings" {
			_, burst := b.Body.Attributes["throttling_burst_limit"]
			_, rate := b.Body.Attributes["throttling_rate_limit"]
			throttled = burst && rate
		}
	}
	if !throttled {
		t.Error("the stage has no throttling")
	}
}
