// Package lambda runs the relay core as an AWS Lambda function behind an API
// Gateway websocket API: it turns the $connect, $default and $disconnect events
// into the core's Connect, Message and Disconnect, with sessions in DynamoDB
// (relay/dynamostore) and every server message, replies included, posted through
// the @connections management API (relay/apigw).
//
// The function returns nothing to API Gateway but a status: no route has a route
// response, because a reply returned by the integration would reach the client
// only after the Lambda finished, possibly after the peer was already told. The
// core instead posts the reply, waits for API Gateway to accept it, and only then
// posts to the peer (the order rcodesign depends on).
//
// An invocation never fails from API Gateway's point of view (a function error
// makes API Gateway send its own {"message": "Internal server error"} frame, which
// rcodesign cannot parse); failures are logged and counted instead, and the client
// already got an INTERNAL_ERROR reply from the core where one was possible.
//
// Logs are JSON lines (log/slog) with connection ids, routes and error codes,
// never message bodies, contexts or session ids. Metrics are CloudWatch Embedded
// Metric Format lines written after each invocation.
package lambda

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/apigw"
)

// Function handles API Gateway websocket events with the relay core.
type Function struct {
	cfg     Config
	awsCfg  aws.Config
	core    *relay.Handler
	log     *slog.Logger
	metrics *emf
	out     io.Writer // EMF lines

	outMu   sync.Mutex
	postMu  sync.Mutex
	posters map[string]*apigw.Poster // by management endpoint
}

// Options are the parts of a Function that come from outside its environment.
type Options struct {
	// AWS is the SDK configuration for the management API (credentials, region).
	AWS aws.Config
	// Store is the session store (a dynamostore.Store in production).
	Store relay.Store
	// Logs receives JSON log lines and EMF metric lines (os.Stdout in Lambda,
	// where both go to CloudWatch Logs).
	Logs io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a Function for cfg.
func New(cfg Config, opts Options) (*Function, error) {
	if opts.Store == nil || opts.Logs == nil {
		return nil, errors.New("lambda: Options.Store and Options.Logs are required")
	}
	f := &Function{
		cfg:     cfg,
		awsCfg:  opts.AWS,
		metrics: newEMF(cfg.MetricsNamespace),
		out:     opts.Logs,
		posters: map[string]*apigw.Poster{},
	}
	f.log = slog.New(slog.NewJSONHandler(lockedWriter{f}, &slog.HandlerOptions{Level: cfg.LogLevel}))
	core, err := relay.New(relay.Config{
		Store:              opts.Store,
		Poster:             routingPoster{f},
		MOTD:               cfg.MOTD,
		MaxTTL:             cfg.MaxTTL,
		MaxMessageSize:     cfg.MaxMessageSize,
		MaxSessionsPerConn: cfg.MaxSessionsPerConn,
		MessageRate:        cfg.MessageRate,
		MessageBurst:       cfg.MessageBurst,
		Now:                opts.Now,
		Logger:             f.log,
		Metrics:            f.metrics,
	})
	if err != nil {
		return nil, err
	}
	f.core = core
	return f, nil
}

// lockedWriter serializes log and metric lines so they never interleave.
type lockedWriter struct{ f *Function }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.f.outMu.Lock()
	defer w.f.outMu.Unlock()
	return w.f.out.Write(p)
}

type endpointKey struct{}

// maxPosters bounds the management clients kept; one function normally serves
// one stage, so more than a handful of endpoints means the events are unusual.
const maxPosters = 8

// poster returns the Poster for the management endpoint of the event being
// handled: the configured one, or https://{domainName}/{stage} from the event.
func (f *Function) poster(ctx context.Context) (*apigw.Poster, error) {
	endpoint, _ := ctx.Value(endpointKey{}).(string)
	if endpoint == "" {
		return nil, errors.New("lambda: no management endpoint for this event")
	}
	f.postMu.Lock()
	defer f.postMu.Unlock()
	if p := f.posters[endpoint]; p != nil {
		return p, nil
	}
	p, err := apigw.New(f.awsCfg, endpoint)
	if err != nil {
		return nil, err
	}
	if len(f.posters) >= maxPosters {
		clear(f.posters)
	}
	f.posters[endpoint] = p
	return p, nil
}

// routingPoster sends through the Poster of the event's stage.
type routingPoster struct{ f *Function }

func (r routingPoster) Post(ctx context.Context, conn string, msg []byte) error {
	p, err := r.f.poster(ctx)
	if err != nil {
		return err
	}
	return p.Post(ctx, conn, msg)
}

func (r routingPoster) Close(ctx context.Context, conn string) error {
	p, err := r.f.poster(ctx)
	if err != nil {
		return err
	}
	return p.Close(ctx, conn)
}

// Handle is the Lambda handler. Pass it to lambda.Start.
func (f *Function) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	rc := ev.RequestContext
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			f.log.LogAttrs(ctx, slog.LevelError, "panic handling event", slog.String("route", rc.RouteKey),
				slog.String("conn", rc.ConnectionID), slog.String("panic", fmt.Sprint(p)))
			resp, err = events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError}, nil
		}
		f.log.LogAttrs(ctx, slog.LevelDebug, "event handled", slog.String("route", rc.RouteKey),
			slog.String("conn", rc.ConnectionID), slog.Int("status", resp.StatusCode),
			slog.Duration("took", time.Since(start)))
		f.outMu.Lock()
		if ferr := f.metrics.flush(f.out); ferr != nil {
			// Nothing else to tell: the log itself failed.
			_ = ferr
		}
		f.outMu.Unlock()
	}()

	if rc.ConnectionID == "" {
		f.log.LogAttrs(ctx, slog.LevelWarn, "event without a connection id", slog.String("route", rc.RouteKey))
		return status(http.StatusBadRequest), nil
	}
	endpoint := f.cfg.ManagementEndpoint
	if endpoint == "" {
		if rc.DomainName == "" || rc.Stage == "" {
			f.log.LogAttrs(ctx, slog.LevelError, "event without domainName/stage and no "+EnvManagementEndpoint,
				slog.String("route", rc.RouteKey), slog.String("conn", rc.ConnectionID))
			return status(http.StatusInternalServerError), nil
		}
		endpoint = apigw.Endpoint(rc.DomainName, rc.Stage)
	}
	ctx = context.WithValue(ctx, endpointKey{}, endpoint)

	switch rc.RouteKey {
	case "$connect":
		if err := f.core.Connect(ctx, rc.ConnectionID); err != nil {
			f.log.LogAttrs(ctx, slog.LevelWarn, "connect refused", slog.String("conn", rc.ConnectionID), slog.String("err", err.Error()))
			return status(http.StatusBadRequest), nil
		}
	case "$disconnect":
		if err := f.core.Disconnect(ctx, rc.ConnectionID); err != nil {
			f.log.LogAttrs(ctx, slog.LevelError, "disconnect cleanup failed", slog.String("conn", rc.ConnectionID), slog.String("err", err.Error()))
		}
	case "$default":
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			// A binary frame. Decode it so the core answers it like any other
			// malformed request instead of seeing base64 text.
			dec, derr := base64.StdEncoding.DecodeString(ev.Body)
			if derr == nil {
				body = dec
			}
		}
		if err := f.core.Message(ctx, rc.ConnectionID, body); err != nil {
			f.log.LogAttrs(ctx, slog.LevelError, "message handling failed", slog.String("conn", rc.ConnectionID), slog.String("err", err.Error()))
		}
	default:
		f.log.LogAttrs(ctx, slog.LevelWarn, "unknown route", slog.String("route", rc.RouteKey), slog.String("conn", rc.ConnectionID))
		return status(http.StatusBadRequest), nil
	}
	return status(http.StatusOK), nil
}

func status(code int) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: code}
}
