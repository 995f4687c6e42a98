// Package relayclient is the websocket client both remote-signing peers (the
// initiator in CI and the signer on the key holder's machine) use to talk to a
// relay: the farsign relay, or rcodesign's reference relay on AWS.
//
// The protocol (package wire) is request/response with messages pushed in
// between: the relay forwards the other peer's messages, announces a joined
// peer, or closes the session, at any time. rcodesign reads strictly by
// position ("the next two messages are my ack and the peer's answer"), which
// races when a relay forwards before it replies (spec §6.5). This client does
// not: one goroutine reads every message and sorts it. Replies go to the call
// waiting for them, matched by request_id (both relays echo it to the
// requester) and, failing that, by type and order; peer messages, joins and
// closes go to an ordered queue read with Next. A peer message can therefore
// never be mistaken for an acknowledgement, whatever order they arrive in.
//
// Everything is bounded: dialing and every call take a context, a message
// larger than Options.MaxMessageSize ends the connection, and a relay that
// pushes more than a few dozen messages nobody reads is cut off rather than
// buffered without limit.
package relayclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/protocol/wire"
)

// DefaultURL is rcodesign's public relay, the default of --remote-signing-url.
const DefaultURL = "wss://ws.codesign.gregoryszorc.com/"

// EnvURL names the environment variable that overrides DefaultURL for both
// the agent and the signer.
const EnvURL = "FARSIGN_REMOTE_SIGNING_URL"

// ResolveURL returns explicit if set, else $FARSIGN_REMOTE_SIGNING_URL if set,
// else DefaultURL.
func ResolveURL(explicit string) string {
	if explicit != "" {
		return explicit
	}
	if env := os.Getenv(EnvURL); env != "" {
		return env
	}
	return DefaultURL
}

// Defaults for the zero values of Options.
const (
	// DefaultDialTimeout bounds connecting (TCP, TLS and the websocket
	// upgrade, redirects included).
	DefaultDialTimeout = 30 * time.Second
	// DefaultKeepAlive is the interval of websocket pings the client sends.
	// They keep idle-timeout proxies and API Gateway's 10-minute idle timer
	// from dropping a peer that is waiting for its partner.
	DefaultKeepAlive = 30 * time.Second
	// DefaultMaxMessageSize bounds one message from the relay. The largest
	// legitimate one is a peer message of channel.MaxCiphertextSize in base64
	// inside an envelope (about 88 KiB).
	DefaultMaxMessageSize = 256 << 10
	// MaxRedirects is how many HTTP redirects Dial follows, as rcodesign.
	MaxRedirects = 5
	// writeTimeout bounds a write when the caller's context has no deadline.
	writeTimeout = 30 * time.Second
	// eventQueueSize bounds pushed messages waiting for Next. A session
	// has at most one or two outstanding at any time.
	eventQueueSize = 32
)

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// DialTimeout bounds Dial (default DefaultDialTimeout); the context given
	// to Dial can shorten it.
	DialTimeout time.Duration
	// KeepAlive is the websocket ping interval (default DefaultKeepAlive); a
	// negative value sends none.
	KeepAlive time.Duration
	// MaxMessageSize bounds a message from the relay (default
	// DefaultMaxMessageSize).
	MaxMessageSize int64
	// TLSConfig is used for wss:// relays (default: system roots).
	TLSConfig *tls.Config
}

// ErrClosed is returned by calls on a Client after Close.
var ErrClosed = errors.New("relay connection closed")

// RelayError is an error message from the relay answering a request.
type RelayError struct {
	// API is the request the relay refused (wire.APICreateSession, ...), or
	// "" for an error not tied to a request of ours.
	API string
	// Code is the relay's error code (wire.Code*); Message its explanation,
	// made printable and cut to a reasonable length.
	Code, Message string
}

func (e *RelayError) Error() string {
	what := "relay reported an error"
	if e.API != "" {
		what = "relay refused " + e.API
	}
	return fmt.Sprintf("%s: %s: %s", what, e.Code, e.Message)
}

// Event is a message the relay pushed rather than sent in reply: a peer
// message, the initiator being told its peer joined, or the session closing.
type Event struct {
	// Type is wire.TypePeerMessage, wire.TypeSessionJoined or
	// wire.TypeSessionClosed.
	Type string
	// Message is a peer-message's payload, as sent by the peer (base64).
	Message string
	// Context is a session-joined's join context (the joiner's), or nil.
	Context *string
	// Reason is a session-closed's reason, or nil.
	Reason *string
	// TTL is the remaining session lifetime the relay reported, or nil.
	TTL *uint64
}

// call is a request waiting for its reply.
type call struct {
	id        string
	api       string
	want      string // reply type
	reply     chan wire.ServerMessage
	abandoned bool // the caller gave up; swallow the reply
}

// Client is a connection to a relay. Its methods are safe for concurrent use;
// Next must be called from one goroutine at a time.
type Client struct {
	url string
	ws  *websocket.Conn

	writeMu sync.Mutex

	mu      sync.Mutex
	pending []*call
	err     error // why the connection ended; set once

	events    chan Event
	held      *Event        // an event ClosedEvent looked at; Next returns it first
	nextMu    sync.Mutex    // guards held
	done      chan struct{} // closed when the reader has stopped
	closeOnce sync.Once
}

// Dial connects to the relay at rawURL (ws:// or wss://), following up to
// MaxRedirects HTTP redirects but never from wss:// down to ws://.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	d := websocket.Dialer{
		NetDialContext:   (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:  o.TLSConfig,
		HandshakeTimeout: o.DialTimeout,
	}
	var ws *websocket.Conn
	for redirects := 0; ; redirects++ {
		var resp *http.Response
		ws, resp, err = d.DialContext(ctx, u.String(), nil)
		if resp != nil && resp.Body != nil {
			defer resp.Body.Close()
		}
		if err == nil {
			break
		}
		if resp == nil {
			if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("cannot connect to relay %s: no answer within %v", u.Redacted(), o.DialTimeout)
			}
			return nil, fmt.Errorf("cannot connect to relay %s: %v", u.Redacted(), dialCause(err))
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return nil, fmt.Errorf("cannot connect to relay %s: it answered HTTP %s instead of a websocket upgrade%s", u.Redacted(), resp.Status, bodyHint(resp))
		}
		if redirects == MaxRedirects {
			return nil, fmt.Errorf("cannot connect to relay %s: more than %d redirects", rawURL, MaxRedirects)
		}
		next, err := redirectTarget(u, loc)
		if err != nil {
			return nil, fmt.Errorf("cannot connect to relay %s: %v", u.Redacted(), err)
		}
		u = next
	}
	ws.SetReadLimit(o.MaxMessageSize)
	c := &Client{
		url:    u.String(),
		ws:     ws,
		events: make(chan Event, eventQueueSize),
		done:   make(chan struct{}),
	}
	go c.readLoop(o.MaxMessageSize)
	if o.KeepAlive > 0 {
		go c.keepAlive(o.KeepAlive)
	}
	return c, nil
}

// ParseURL checks that s is a ws:// or wss:// URL with a host.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("relay URL %q is not a URL", s)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("relay URL %q must start with wss:// (or ws:// for a relay on a trusted network)", s)
	}
	return u, nil
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectTarget resolves a Location header against the current URL, maps
// http(s) to ws(s), and refuses a downgrade from TLS to plain text.
func redirectTarget(cur *url.URL, loc string) (*url.URL, error) {
	next, err := cur.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("bad redirect location %q", loc)
	}
	switch strings.ToLower(next.Scheme) {
	case "http", "ws":
		next.Scheme = "ws"
	case "https", "wss":
		next.Scheme = "wss"
	default:
		return nil, fmt.Errorf("redirect to unsupported URL %q", loc)
	}
	if cur.Scheme == "wss" && next.Scheme == "ws" {
		return nil, fmt.Errorf("refusing a redirect from wss:// to unencrypted %s", next.Redacted())
	}
	return next, nil
}

// dialCause trims gorilla's and net's wrapping to the part a person can act on.
func dialCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		// A failed name lookup has no address yet (op.Addr is nil); the lookup
		// error itself names the host.
		if op.Addr == nil {
			return op.Op + " " + op.Net + ": " + op.Err.Error()
		}
		return op.Op + " " + op.Net + " " + op.Addr.String() + ": " + op.Err.Error()
	}
	return err.Error()
}

func bodyHint(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	s := Printable(string(b), 120)
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// URL returns the URL the client is connected to (after redirects).
func (c *Client) URL() string { return c.url }

// readLoop reads and sorts every message until the connection ends.
func (c *Client) readLoop(limit int64) {
	defer close(c.done)
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.fail(readError(err, limit))
			return
		}
		if typ != websocket.TextMessage {
			c.fail(errors.New("relay sent a binary websocket message; this is not a remote-signing relay"))
			return
		}
		m, err := wire.ParseServerMessage(data)
		if err != nil {
			c.fail(fmt.Errorf("relay sent a malformed message: %v", err))
			return
		}
		if err := c.dispatch(m); err != nil {
			c.fail(err)
			return
		}
	}
}

func readError(err error, limit int64) error {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		text := Printable(ce.Text, 120)
		if text == "" {
			text = "no reason given"
		}
		return fmt.Errorf("relay closed the connection (%d: %s)", ce.Code, text)
	case errors.Is(err, websocket.ErrReadLimit):
		return fmt.Errorf("relay sent a message larger than %d bytes; disconnected", limit)
	case errors.Is(err, net.ErrClosed):
		return ErrClosed
	}
	return fmt.Errorf("lost the connection to the relay: %v", err)
}

// dispatch hands m to the call it answers, or queues it as an event.
func (c *Client) dispatch(m wire.ServerMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Type != wire.TypePeerMessage {
		if i := c.match(m); i >= 0 {
			cl := c.pending[i]
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			if !cl.abandoned {
				cl.reply <- m
			}
			return nil
		}
	}
	var ev Event
	switch m.Type {
	case wire.TypePeerMessage:
		p, err := m.PeerMessage()
		if err != nil {
			return fmt.Errorf("relay sent a malformed peer-message: %v", err)
		}
		ev = Event{Type: m.Type, Message: p.Message}
	case wire.TypeSessionJoined:
		p, err := m.SessionJoined()
		if err != nil {
			return fmt.Errorf("relay sent a malformed session-joined: %v", err)
		}
		ev = Event{Type: m.Type, Context: p.Context}
	case wire.TypeSessionClosed:
		ev = Event{Type: m.Type}
		if m.Payload != nil {
			p, err := m.SessionClosed()
			if err != nil {
				return fmt.Errorf("relay sent a malformed session-closed: %v", err)
			}
			ev.Reason = p.Reason
		}
	case wire.TypeError:
		return relayError("", m)
	default:
		return fmt.Errorf("relay sent an unexpected %s message", m.Type)
	}
	ev.TTL = m.TTL
	select {
	case c.events <- ev:
		return nil
	default:
		return fmt.Errorf("relay pushed more than %d messages without them being read; disconnected", eventQueueSize)
	}
}

// match returns the index of the pending call m answers, or -1. A request_id
// echo is authoritative; without one (errors raised before the relay parsed
// the request, relays that do not echo), the oldest call expecting m's type
// gets it, and an error goes to the oldest call.
func (c *Client) match(m wire.ServerMessage) int {
	if m.RequestID != nil {
		for i, cl := range c.pending {
			if cl.id == *m.RequestID {
				return i
			}
		}
	}
	if len(c.pending) == 0 {
		return -1
	}
	if m.Type == wire.TypeError {
		return 0
	}
	for i, cl := range c.pending {
		if cl.want == m.Type {
			return i
		}
	}
	return -1
}

func relayError(api string, m wire.ServerMessage) *RelayError {
	p, err := m.ErrorReport()
	if err != nil {
		return &RelayError{API: api, Code: "MALFORMED_ERROR", Message: "the relay's error message could not be decoded"}
	}
	return &RelayError{API: api, Code: Printable(p.Code, 64), Message: Printable(p.Message, 300)}
}

// fail records why the connection ended (the first reason wins) and closes it.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.ws.Close()
}

// Err returns why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			// WriteControl may be used concurrently with other writes.
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				c.fail(fmt.Errorf("lost the connection to the relay: %v", err))
				return
			}
		}
	}
}

func (c *Client) write(ctx context.Context, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(writeTimeout)
	}
	c.ws.SetWriteDeadline(deadline)
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		// A failed write leaves the websocket unusable.
		c.fail(fmt.Errorf("lost the connection to the relay: %v", err))
		return c.terminalErr()
	}
	return nil
}

func (c *Client) terminalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// roundTrip sends one request and waits for its reply of type want (or an
// error reply, returned as *RelayError).
func (c *Client) roundTrip(ctx context.Context, api string, payload any, want string) (wire.ServerMessage, error) {
	id := wire.NewRequestID()
	data, err := wire.EncodeRequest(id, api, payload)
	if err != nil {
		return wire.ServerMessage{}, err
	}
	cl := &call{id: id, api: api, want: want, reply: make(chan wire.ServerMessage, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return wire.ServerMessage{}, err
	}
	c.pending = append(c.pending, cl)
	c.mu.Unlock()

	if err := c.write(ctx, data); err != nil {
		c.abandon(cl)
		return wire.ServerMessage{}, err
	}
	var m wire.ServerMessage
	select {
	case m = <-cl.reply:
	case <-ctx.Done():
		c.abandon(cl)
		return wire.ServerMessage{}, ctx.Err()
	case <-c.done:
		select {
		case m = <-cl.reply:
		default:
			return wire.ServerMessage{}, c.terminalErr()
		}
	}
	if m.Type == wire.TypeError {
		return m, relayError(api, m)
	}
	if m.Type != want {
		err := fmt.Errorf("relay answered %s with %s instead of %s", api, m.Type, want)
		c.fail(err)
		return m, err
	}
	return m, nil
}

// abandon marks a call whose caller stopped waiting: its reply, if it ever
// comes, is dropped instead of being taken for another call's or an event.
func (c *Client) abandon(cl *call) {
	c.mu.Lock()
	cl.abandoned = true
	c.mu.Unlock()
}

// Hello greets the relay and checks that it offers every API a signing
// session needs. The greeting's MOTD, if any, is returned made printable.
func (c *Client) Hello(ctx context.Context) (motd string, err error) {
	m, err := c.roundTrip(ctx, wire.APIHello, nil, wire.TypeGreeting)
	if err != nil {
		return "", err
	}
	g, err := m.Greeting()
	if err != nil {
		return "", fmt.Errorf("relay sent a malformed greeting: %v", err)
	}
	if err := g.CheckGreeting(); err != nil {
		return "", fmt.Errorf("%s cannot host a signing session: %v", c.url, err)
	}
	if g.MOTD != nil {
		motd = Printable(*g.MOTD, 500)
	}
	return motd, nil
}

// CreateSession creates session id with the requested lifetime (0 asks for
// the relay's maximum) and returns the lifetime the relay granted, or 0 if it
// did not say.
func (c *Client) CreateSession(ctx context.Context, id string, ttl time.Duration) (time.Duration, error) {
	var ttlp *uint64
	if ttl > 0 {
		secs := uint64(ttl / time.Second)
		ttlp = &secs
	}
	m, err := c.roundTrip(ctx, wire.APICreateSession, wire.CreateSession{SessionID: id, TTL: ttlp}, wire.TypeSessionCreated)
	if err != nil {
		return 0, err
	}
	return ttlOf(m), nil
}

// JoinSession joins session id, sending the scheme's join context, and
// returns the session's remaining lifetime, or 0 if the relay did not say.
func (c *Client) JoinSession(ctx context.Context, id, joinContext string) (time.Duration, error) {
	m, err := c.roundTrip(ctx, wire.APIJoinSession, wire.JoinSession{SessionID: id, Context: &joinContext}, wire.TypeSessionJoined)
	if err != nil {
		return 0, err
	}
	return ttlOf(m), nil
}

// maxTTL keeps a hostile ttl from overflowing a time.Duration.
const maxTTL = 7 * 24 * time.Hour

func ttlOf(m wire.ServerMessage) time.Duration {
	if m.TTL == nil {
		return 0
	}
	if *m.TTL > uint64(maxTTL/time.Second) {
		return maxTTL
	}
	return time.Duration(*m.TTL) * time.Second
}

// SendMessage forwards message (the peer's base64 ciphertext) to the other
// member of session id and waits for the relay's acknowledgement.
func (c *Client) SendMessage(ctx context.Context, id, message string) error {
	_, err := c.roundTrip(ctx, wire.APISendMessage, wire.SendMessage{SessionID: id, Message: message}, wire.TypeMessageSent)
	return err
}

// Goodbye ends session id, telling the peer reason, and waits for the
// relay's confirmation.
func (c *Client) Goodbye(ctx context.Context, id, reason string) error {
	_, err := c.roundTrip(ctx, wire.APIGoodbye, wire.Goodbye{SessionID: id, Reason: &reason}, wire.TypeSessionClosed)
	return err
}

// Next returns the next pushed message. Messages queued before the
// connection ended are returned first; then the reason it ended. An error
// the relay pushed outside any request is returned as a *RelayError.
func (c *Client) Next(ctx context.Context) (Event, error) {
	c.nextMu.Lock()
	if ev := c.held; ev != nil {
		c.held = nil
		c.nextMu.Unlock()
		return *ev, nil
	}
	c.nextMu.Unlock()
	select {
	case ev := <-c.events:
		return ev, nil
	default:
	}
	select {
	case ev := <-c.events:
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	case <-c.done:
		select {
		case ev := <-c.events:
			return ev, nil
		default:
			return Event{}, c.terminalErr()
		}
	}
}

// ClosedEvent returns the session-closed event if it is the next event
// already received, without waiting. A request that fails because the session
// is gone uses it to report the reason the relay gave instead of the bare
// refusal. Any other event stays queued for Next.
func (c *Client) ClosedEvent() *Event {
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	if c.held == nil {
		select {
		case ev := <-c.events:
			c.held = &ev
		default:
			return nil
		}
	}
	return c.takeClosedLocked()
}

// takeClosedLocked returns the held event and clears it if it is
// session-closed; any other event stays held for Next. c.held must be set
// and c.nextMu held.
func (c *Client) takeClosedLocked() *Event {
	if c.held.Type != wire.TypeSessionClosed {
		return nil
	}
	ev := c.held
	c.held = nil
	return ev
}

// ClosedEventWithin is ClosedEvent, but if nothing has been received yet it
// waits up to d for the next event. A relay deletes a session before it tells
// the other member why, and handles each connection concurrently, so the
// refusal of a request to a session the peer just closed can arrive before the
// session-closed push that explains it. While it waits, Next blocks too.
func (c *Client) ClosedEventWithin(ctx context.Context, d time.Duration) *Event {
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	if c.held == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case ev := <-c.events:
			c.held = &ev
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-c.done:
			select {
			case ev := <-c.events:
				c.held = &ev
			default:
				return nil
			}
		}
	}
	return c.takeClosedLocked()
}

// Close sends a websocket close frame and disconnects. The relay treats it
// as the peer leaving (it tells the other member "peer disconnected"). Close
// is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		c.mu.Lock()
		if c.err == nil {
			c.err = ErrClosed
		}
		c.mu.Unlock()
		c.ws.Close()
		<-c.done
	})
	return nil
}

// Printable returns s with control and invisible formatting characters
// replaced, cut to max runes: for text from the network (an MOTD, a relay's
// error message, a close reason) that ends up on a terminal, where escape
// sequences could otherwise rewrite what the user sees.
func Printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if n == max {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			r = '?'
		case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
			r = '?' // zero-width and bidirectional controls
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
