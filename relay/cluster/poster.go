package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/farsign/farsign/relay"
	"github.com/farsign/farsign/relay/apigw"
)

// maxRemotes bounds the cached clients for other processes. A cluster has a
// handful; the bound only matters if processes keep being replaced by new
// ones at new addresses, and then the oldest clients are the ones to drop.
const maxRemotes = 256

// Poster returns the relay.Poster for the core: connections minted by this
// node go to local (the standalone server's own poster); every other one is
// delivered to the process that minted it through its @connections endpoint.
func (n *Node) Poster(local relay.Poster) relay.Poster { return &router{n: n, local: local} }

type router struct {
	n     *Node
	local relay.Poster
}

func (r *router) Post(ctx context.Context, conn string, msg []byte) error {
	if r.n.Local(conn) {
		return r.local.Post(ctx, conn, msg)
	}
	return r.n.remoteCall(ctx, "post", conn, func(ctx context.Context, p *apigw.Poster) error { return p.Post(ctx, conn, msg) })
}

func (r *router) Close(ctx context.Context, conn string) error {
	if r.n.Local(conn) {
		return r.local.Close(ctx, conn)
	}
	return r.n.remoteCall(ctx, "close", conn, func(ctx context.Context, p *apigw.Poster) error { return p.Close(ctx, conn) })
}

// remoteCall runs call against the owner of conn, under PostTimeout.
func (n *Node) remoteCall(ctx context.Context, op, conn string, call func(context.Context, *apigw.Poster) error) error {
	owner, err := n.Owner(conn)
	if err != nil {
		// Not an id any process of this cluster minted (a record from before
		// the cluster, or tampered with): nobody can reach it.
		n.stats.Failed.Add(1)
		n.log.Warn("cluster: undeliverable connection id", "op", op, "conn", conn)
		return fmt.Errorf("cluster: %s to %s: %w: %w", op, conn, err, relay.ErrGone)
	}
	p, err := n.remote(owner)
	if err != nil {
		n.stats.Failed.Add(1)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PostTimeout)
	defer cancel()
	err = call(ctx, p)
	switch {
	case err == nil:
		n.stats.Sent.Add(1)
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		// Nothing listens at the owner's address: the process is gone, and
		// with it every websocket it held.
		err = fmt.Errorf("cluster: %s to %s: relay at %s unreachable (%w): %w", op, conn, owner, syscall.ECONNREFUSED, relay.ErrGone)
	case errors.Is(err, relay.ErrGone):
	default:
		n.log.Warn("cluster: delivery failed", "op", op, "conn", conn, "owner", owner, "err", err)
	}
	n.stats.Failed.Add(1)
	return err
}

// remote returns the cached management-API client for the process at url.
func (n *Node) remote(url string) (*apigw.Poster, error) {
	n.postersMu.Lock()
	defer n.postersMu.Unlock()
	if r := n.posters[url]; r != nil {
		return r, nil
	}
	p, err := apigw.New(aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, n.sigSecret, ""),
		HTTPClient:  n.cfg.HTTPClient,
	}, url)
	if err != nil {
		return nil, fmt.Errorf("cluster: client for %s: %w", url, err)
	}
	if len(n.posters) >= maxRemotes {
		for k := range n.posters { // drop an arbitrary one; it is rebuilt on demand
			delete(n.posters, k)
			break
		}
	}
	n.posters[url] = p
	n.log.Debug("cluster: new peer process", slog.String("url", url))
	return p, nil
}
