// Package apigw is the relay.Poster for the relay on AWS: it reaches websocket
// clients through API Gateway's @connections management API (PostToConnection,
// DeleteConnection) of the stage they connected to.
//
// API Gateway keeps the websockets; the Lambda only sees one event per frame, so
// every server message, the reply to the requester included, is a POST to
// @connections. The core posts the reply and waits for it to return before it posts
// to the peer, which keeps rcodesign's "reply before forward" order even across
// concurrent Lambda invocations.
//
// A GoneException (HTTP 410: the client hung up, or API Gateway dropped it) becomes
// relay.ErrGone, which the core handles exactly like a disconnect of that
// connection. LimitExceededException (429) is retried by the SDK's standard
// retryer; other failures (403 from a missing IAM grant, 413 for a message over
// API Gateway's limit) are returned as they are.
package apigw

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/farsign/farsign/relay"
)

// Actions returns the IAM actions the Poster needs: PostToConnection and
// DeleteConnection are both authorized as execute-api:ManageConnections. The
// Terraform module grants exactly this (checked by its test).
func Actions() []string { return []string{"execute-api:ManageConnections"} }

// Poster is a relay.Poster on one stage's management API. It is safe for
// concurrent use.
type Poster struct {
	client *apigatewaymanagementapi.Client
}

var _ relay.Poster = (*Poster)(nil)

// New returns a Poster for the management endpoint of a stage,
// https://{api-id}.execute-api.{region}.amazonaws.com/{stage} (or the custom
// domain's equivalent), with credentials and region from cfg.
func New(cfg aws.Config, endpoint string) (*Poster, error) {
	if !strings.HasPrefix(endpoint, "https://") && !strings.HasPrefix(endpoint, "http://") {
		return nil, fmt.Errorf("apigw: management endpoint %q is not an http(s) URL", endpoint)
	}
	cfg = cfg.Copy()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 4
			o.MaxBackoff = 500 * time.Millisecond
			o.RateLimiter = ratelimit.None
		})
	}
	client := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(strings.TrimSuffix(endpoint, "/"))
	})
	return &Poster{client: client}, nil
}

// Endpoint returns the management endpoint API Gateway documents for a websocket
// event's request context: https://{domainName}/{stage}.
func Endpoint(domainName, stage string) string {
	return "https://" + domainName + "/" + stage
}

// Post implements relay.Poster. API Gateway delivers posts to one connection in
// the order they were accepted, and Post returns only once the post was accepted.
func (p *Poster) Post(ctx context.Context, conn string, msg []byte) error {
	_, err := p.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(conn),
		Data:         msg,
	})
	if err == nil {
		return nil
	}
	var gone *types.GoneException
	if errors.As(err, &gone) {
		return fmt.Errorf("apigw: post to %s: %w", conn, relay.ErrGone)
	}
	return fmt.Errorf("apigw: post to %s: %w", conn, err)
}

// Close implements relay.Poster: DeleteConnection. A connection that is already
// gone is not an error. API Gateway then invokes $disconnect for it.
func (p *Poster) Close(ctx context.Context, conn string) error {
	_, err := p.client.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(conn),
	})
	var gone *types.GoneException
	if err == nil || errors.As(err, &gone) {
		return nil
	}
	return fmt.Errorf("apigw: close %s: %w", conn, err)
}
