package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/farsign/farsign/protocol/wire"
	"github.com/farsign/farsign/relay/apigw"
)

// Defaults for the zero values of Config.
const (
	// MinSecretLen is the shortest cluster secret accepted: 32 bytes, what
	// `openssl rand -base64 32` prints (44 characters) comfortably exceeds.
	MinSecretLen = 32
	// DefaultPostTimeout bounds one delivery to another process, retries
	// included. A peer that cannot take a message within it is treated as
	// unreachable and its session ends.
	DefaultPostTimeout = 5 * time.Second
	// DefaultMaxBody is the largest message accepted from another process:
	// the largest message the protocol allows plus room for its envelope.
	DefaultMaxBody = wire.MaxMessageSize + 4096
	// DefaultMaxInFlight bounds requests served at once on the cluster
	// listener; more get 429, which the sending SDK retries with backoff.
	DefaultMaxInFlight = 512
	// peerConns is the default client's connection pool per peer process:
	// half of DefaultMaxInFlight, so two busy peers cannot exhaust a
	// listener between them.
	peerConns = DefaultMaxInFlight / 2
	// MaxClockSkew is how far a request's signing time may be from the
	// receiver's clock, as AWS allows for SigV4.
	MaxClockSkew = 5 * time.Minute
)

// Credentials of the SigV4 signatures between processes. They are not
// secrets (the derived secret access key is); they only have to agree.
const (
	AccessKeyID = "farsign-relay-cluster"
	Region      = "farsign"
	Service     = "execute-api" // what relay/apigw's SDK client signs for
)

// Config configures a Node.
type Config struct {
	// Secret is shared by every process of the cluster, at least
	// MinSecretLen bytes. Request signatures and connection-id tags are keyed
	// by values derived from it.
	Secret []byte
	// AdvertiseURL is where the other processes reach this one's cluster
	// listener: http:// or https://, host and port, no path. It is embedded
	// in every connection id this process mints.
	AdvertiseURL string

	// HTTPClient sends requests to other processes (default: a client with
	// keep-alive connections suited to many small requests to few hosts).
	HTTPClient *http.Client
	// PostTimeout bounds one delivery, retries included (default 5 s).
	PostTimeout time.Duration
	// MaxBody bounds a request body on the listener (default
	// DefaultMaxBody).
	MaxBody int64
	// MaxInFlight bounds requests served at once (default 512).
	MaxInFlight int
	// Logger receives warnings about refused requests and unreachable
	// processes (default: discard). It never sees message contents.
	Logger *slog.Logger
	// Now is the clock used to check signing times (default time.Now).
	Now func() time.Time
}

// Node is one process of a cluster: it mints connection ids naming itself
// (NewConnID), routes posts to the process owning a connection (Poster) and
// serves the deliveries other processes send it (Handler). It is safe for
// concurrent use.
type Node struct {
	cfg       Config
	self      string // canonical advertise URL
	prefix    string // base64url(self) + "."
	idKey     []byte // HMAC key of connection-id tags
	sigSecret string // SigV4 secret access key
	// signer recomputes signatures of incoming requests. It is the Node's
	// own: the SDK signer caches derived keys by access key id, region and
	// day, not by secret, so an instance shared with code signing under
	// another secret could verify with that secret's key.
	signer *v4.Signer
	log    *slog.Logger

	postersMu sync.Mutex
	posters   map[string]*apigw.Poster // by advertise URL

	stats Stats
}

// Stats counts cluster traffic, for metrics. Fields are updated atomically.
type Stats struct {
	// Sent and Failed count posts and closes sent to other processes, by
	// outcome (Failed includes connections found gone there).
	Sent, Failed atomic.Uint64
	// Served counts requests from other processes that were authenticated;
	// Refused those that were not (bad signature, stale date, wrong key).
	Served, Refused atomic.Uint64
}

// New returns a Node for cfg.
func New(cfg Config) (*Node, error) {
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster: the cluster secret must be at least %d bytes (it has %d); generate one with: openssl rand -base64 32", MinSecretLen, len(cfg.Secret))
	}
	self, err := canonicalURL(cfg.AdvertiseURL)
	if err != nil {
		return nil, err
	}
	if cfg.PostTimeout == 0 {
		cfg.PostTimeout = DefaultPostTimeout
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.PostTimeout < 0 || cfg.MaxBody < 1024 || cfg.MaxInFlight < 1 {
		return nil, errors.New("cluster: PostTimeout, MaxBody (at least 1024) and MaxInFlight must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:       nil, // the cluster is a private network
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// A fixed pool per peer process, all of it kept idle: under a
			// burst an uncapped client dialled a new connection for every
			// concurrent delivery and dropped most of them afterwards, which
			// overflowed the peer's listen queue and pushed deliveries past
			// the post timeout (sessions were lost at 10,000 sessions
			// exchanging at once; none with the cap, see docs/benchmarks.md).
			MaxConnsPerHost:     peerConns,
			MaxIdleConnsPerHost: peerConns,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	n := &Node{
		cfg:       cfg,
		self:      self,
		prefix:    b64.EncodeToString([]byte(self)) + ".",
		idKey:     derive(cfg.Secret, "connection ids"),
		sigSecret: hex.EncodeToString(derive(cfg.Secret, "request signing")),
		signer:    v4.NewSigner(),
		log:       cfg.Logger,
		posters:   make(map[string]*apigw.Poster),
	}
	return n, nil
}

// derive returns a key for one use of the cluster secret, so that a
// connection-id tag can never be replayed as a signature or the other way
// round.
func derive(secret []byte, use string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("farsign relay cluster v1: " + use))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// AdvertiseURL returns the node's canonical advertise URL.
func (n *Node) AdvertiseURL() string { return n.self }

// Stats returns the node's traffic counters.
func (n *Node) Stats() *Stats { return &n.stats }

// canonicalURL checks an advertise URL and returns it as scheme://host:port.
func canonicalURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("cluster: advertise URL %q: want http://HOST:PORT or https://HOST:PORT", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return "", fmt.Errorf("cluster: advertise URL %q: want only scheme, host and port (no path, query or credentials)", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("cluster: advertise URL %q: want an explicit host:port", s)
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("cluster: advertise URL %q: %s is not an address other processes can reach", s, host)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Connection ids are at most this long: the advertise URL is bounded by it,
// and so is what ParseConnID reads from the Store.
const maxConnIDLen = 512

// NewConnID returns a fresh connection id naming this node (see the package
// documentation for the format).
func (n *Node) NewConnID() string {
	var r [12]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	head := n.prefix + b64.EncodeToString(r[:])
	return head + "." + b64.EncodeToString(n.tag(head))
}

// tag authenticates an id's owner and random part.
func (n *Node) tag(head string) []byte {
	m := hmac.New(sha256.New, n.idKey)
	m.Write([]byte(head))
	return m.Sum(nil)[:12]
}

// Local reports whether id was minted by this node. (Whether it is still
// connected is for the local poster to say.)
func (n *Node) Local(id string) bool { return strings.HasPrefix(id, n.prefix) }

// ErrBadConnID is returned for a connection id that this cluster did not
// mint: malformed, or with a tag that does not verify.
var ErrBadConnID = errors.New("cluster: not a connection id of this cluster")

// Owner returns the advertise URL of the node that minted id, after checking
// the id's tag. Ids come from the Store, so they are treated as untrusted
// input.
func (n *Node) Owner(id string) (string, error) {
	if len(id) > maxConnIDLen {
		return "", ErrBadConnID
	}
	enc, rest, ok := strings.Cut(id, ".")
	if !ok {
		return "", ErrBadConnID
	}
	rnd, tag, ok := strings.Cut(rest, ".")
	if !ok || len(rnd) != 16 || len(tag) != 16 {
		return "", ErrBadConnID
	}
	got, err := b64.DecodeString(tag)
	if err != nil || !hmac.Equal(got, n.tag(id[:len(enc)+1+len(rnd)])) {
		return "", ErrBadConnID
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return "", ErrBadConnID
	}
	owner, err := canonicalURL(string(raw))
	if err != nil || owner != string(raw) {
		return "", ErrBadConnID
	}
	return owner, nil
}
