// Command relay-lambda is the farsign relay as an AWS Lambda function: the
// `bootstrap` executable of a provided.al2023 function on arm64, deployed by the
// Terraform module in terraform/ (build it with terraform/build-lambda.sh).
//
// It reads its configuration from the environment (RELAY_TABLE,
// RELAY_MANAGEMENT_ENDPOINT, RELAY_MAX_TTL_SECONDS, RELAY_MOTD, ...; see
// relay/lambda), and serves API Gateway websocket events until Lambda stops it.
// A bad configuration is reported to Lambda as an init error, so the deployment
// fails visibly at the first invocation instead of answering clients wrongly.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/farsign/farsign/relay/dynamostore"
	"github.com/farsign/farsign/relay/lambda"
)

const help = `relay-lambda is the farsign relay as an AWS Lambda function: the bootstrap
executable of a provided.al2023 function, deployed by the Terraform module in
terraform/. It serves API Gateway websocket events ($connect, $default,
$disconnect) and only runs inside Lambda (AWS_LAMBDA_RUNTIME_API set).

Build and deploy:
    terraform/build-lambda.sh        # writes terraform/build/relay-lambda.zip
    cd terraform/examples/basic && terraform init && terraform apply

Environment:
    RELAY_TABLE                        DynamoDB sessions table (required)
    RELAY_MANAGEMENT_ENDPOINT          https://{api}.execute-api.{region}.amazonaws.com/{stage}
                                       (default: derived from each event)
    RELAY_MAX_TTL_SECONDS              longest session granted (default 600)
    RELAY_MOTD                         message of the day in the greeting
    RELAY_MAX_SESSIONS_PER_CONNECTION  live sessions per connection (default 4)
    RELAY_MAX_MESSAGE_BYTES            largest request (default 131072)
    RELAY_MESSAGE_RATE, RELAY_MESSAGE_BURST
                                       per-connection request rate, per instance
    RELAY_LOG_LEVEL                    debug, info (default), warn, error
    RELAY_METRICS_NAMESPACE            CloudWatch namespace (default farsign/relay)
    AWS_ENDPOINT_URL_DYNAMODB          DynamoDB endpoint override (local testing)

To run the relay on a machine instead, use "relay serve".
`

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-h", "-help", "--help", "help":
			fmt.Print(help)
			return
		}
		fmt.Fprintf(os.Stderr, "relay-lambda: takes no arguments (configure it with environment variables; see --help)\n")
		os.Exit(2)
	}
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		fmt.Fprintf(os.Stderr, "relay-lambda: AWS_LAMBDA_RUNTIME_API is not set: this is the Lambda bootstrap and runs only inside AWS Lambda (see --help; for a local relay use \"relay serve\")\n")
		os.Exit(1)
	}
	fn, err := setup(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay-lambda: %v\n", err)
		reportInitError(err)
		os.Exit(1)
	}
	awslambda.Start(fn.Handle)
}

func setup(ctx context.Context) (*lambda.Function, error) {
	cfg, err := lambda.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	// The endpoint comes from the SDK's usual resolution, which honours
	// AWS_ENDPOINT_URL_DYNAMODB (local testing).
	store, err := dynamostore.New(ctx, dynamostore.Options{Table: cfg.Table, Config: &awsCfg})
	if err != nil {
		return nil, err
	}
	return lambda.New(cfg, lambda.Options{AWS: awsCfg, Store: store, Logs: os.Stdout})
}

// reportInitError tells the Lambda service why the function could not start,
// through the Runtime API's documented init error call, so the failure shows in
// the invocation error (Runtime.InitError) and not only in the logs.
func reportInitError(err error) {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		return // not running in Lambda
	}
	body, _ := json.Marshal(map[string]any{
		"errorMessage": err.Error(),
		"errorType":    "Relay.ConfigError",
		"stackTrace":   []string{},
	})
	req, rerr := http.NewRequest("POST", "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Relay.ConfigError")
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}
