package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/farsign/farsign/protocol/wire"
)

// Reasons carried by the session-closed messages the relay itself sends.
// (On goodbye the closing peer's own reason is forwarded verbatim.)
const (
	ReasonPeerDisconnected = "peer disconnected"
	ReasonExpired          = "session expired"
	ReasonShutdown         = "relay shutting down"
)

// Handler is the relay core. A transport calls Connect when a client
// connects, Message for every message it sends, and Disconnect when it goes,
// and the Handler answers through the Poster. All methods are safe for
// concurrent use, including concurrent calls for one connection (Lambda may
// process two messages of one connection at once); a transport that reads
// each connection in order (the standalone server) also gets each
// connection's replies in request order.
type Handler struct {
	cfg Config
	lim *limiter
	log *slog.Logger
}

// New returns a Handler for cfg, after filling in defaults and checking it.
func New(cfg Config) (*Handler, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, lim: newLimiter(cfg.MessageRate, cfg.MessageBurst), log: cfg.Logger}, nil
}

// MaxMessageSize returns the largest message Message accepts. Transports
// should read at most one byte more than this from a client message.
func (h *Handler) MaxMessageSize() int { return h.cfg.MaxMessageSize }

// Connect records a new connection. It returns an error only for an empty
// connection id.
func (h *Handler) Connect(ctx context.Context, conn string) error {
	if conn == "" {
		return errors.New("relay: empty connection id")
	}
	h.cfg.Metrics.Add(CounterConnections, "", 1)
	h.log.LogAttrs(ctx, slog.LevelDebug, "connect", slog.String("conn", conn))
	return nil
}

// Disconnect ends every session conn belongs to, telling the other member
// with session-closed ("peer disconnected"), and forgets conn. It is
// idempotent.
func (h *Handler) Disconnect(ctx context.Context, conn string) error {
	h.lim.forget(conn)
	h.cfg.Metrics.Add(CounterDisconnections, "", 1)
	h.log.LogAttrs(ctx, slog.LevelDebug, "disconnect", slog.String("conn", conn))
	return h.dropConn(ctx, conn)
}

// CloseSessionsOf ends every session conn belongs to, telling both members
// (conn included) with session-closed carrying reason. The standalone server
// calls it for every connection on shutdown, with ReasonShutdown.
func (h *Handler) CloseSessionsOf(ctx context.Context, conn, reason string) error {
	sessions, err := h.cfg.Store.SessionsOf(ctx, conn)
	if err != nil {
		return fmt.Errorf("relay: listing sessions of %s: %w", conn, err)
	}
	var errs []error
	for _, s := range sessions {
		errs = append(errs, h.endSession(ctx, s, reason, "shutdown", s.Initiator, s.Joiner))
	}
	return errors.Join(errs...)
}

// Sweep ends every expired session, telling its members with session-closed
// ("session expired"), if the Store is a Sweeper; otherwise it does nothing
// (expiry is still enforced on every read). Call it periodically.
func (h *Handler) Sweep(ctx context.Context) error {
	sw, ok := h.cfg.Store.(Sweeper)
	if !ok {
		return nil
	}
	expired, err := sw.Sweep(ctx, h.cfg.Now())
	if err != nil {
		return fmt.Errorf("relay: sweeping expired sessions: %w", err)
	}
	for _, s := range expired {
		h.countExpired(ctx, s)
		h.notifyClosed(ctx, ReasonExpired, s.Initiator, s.Joiner)
	}
	return nil
}

// Message handles one message from conn. Every request gets exactly one
// reply, posted to conn before anything is posted to its peer. Bad input gets
// an error reply with a stable code (see the package documentation) and
// changes nothing.
//
// Message does not retain data after it returns, so a transport may reuse
// the buffer. The ctx is passed to every Store and Poster call the message
// causes.
//
// The returned error is for the transport's logs only: it reports a failure
// of the Store or the Poster (the client has been answered INTERNAL_ERROR
// where possible). Protocol errors are answered, not returned.
func (h *Handler) Message(ctx context.Context, conn string, data []byte) error {
	now := h.cfg.Now()
	if len(data) > h.cfg.MaxMessageSize {
		return h.fail(ctx, conn, nil, wire.CodeMessageTooLarge,
			fmt.Sprintf("message exceeds the relay's limit of %d bytes", h.cfg.MaxMessageSize))
	}
	if ok, strikes := h.lim.allow(conn, now); !ok {
		if strikes > h.cfg.MessageBurst {
			// It ignores the errors and keeps flooding: hang up.
			h.cfg.Metrics.Add(CounterErrors, wire.CodeRateLimited, 1)
			h.log.LogAttrs(ctx, slog.LevelWarn, "closing flooding connection", slog.String("conn", conn))
			return h.cfg.Poster.Close(ctx, conn)
		}
		return h.fail(ctx, conn, nil, wire.CodeRateLimited, "too many requests; slow down")
	}
	req, err := wire.ParseRequest(data)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Code: wire.CodeRequestJSONParse, Msg: err.Error()}
		}
		return h.fail(ctx, conn, req.RequestID, we.Code, we.Msg)
	}
	h.cfg.Metrics.Add(CounterAPICalls, req.API, 1)
	if h.log.Enabled(ctx, slog.LevelDebug) { // spare the per-message allocation
		h.log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("conn", conn), slog.String("api", req.API))
	}
	switch req.API {
	case wire.APIHello:
		return h.hello(ctx, conn, req)
	case wire.APICreateSession:
		return h.createSession(ctx, conn, req, now)
	case wire.APIJoinSession:
		return h.joinSession(ctx, conn, req, now)
	case wire.APISendMessage:
		return h.sendMessage(ctx, conn, req, now)
	case wire.APIGoodbye:
		return h.goodbye(ctx, conn, req, now)
	}
	// ParseRequest only returns known APIs; answer anyway rather than hang.
	return h.fail(ctx, conn, req.RequestID, wire.CodeUnknownAPI, "unrecognized API method")
}

func (h *Handler) hello(ctx context.Context, conn string, req wire.Request) error {
	var motd *string
	if h.cfg.MOTD != "" {
		motd = &h.cfg.MOTD
	}
	return h.reply(ctx, conn, req.RequestID, wire.TypeGreeting, nil, wire.GreetingPayload{APIs: wire.APIs(), MOTD: motd})
}

func (h *Handler) createSession(ctx context.Context, conn string, req wire.Request, now time.Time) error {
	p, err := req.CreateSession()
	if err != nil {
		return h.failWire(ctx, conn, req, err)
	}
	if !ValidSessionID(p.SessionID) {
		return h.failBadID(ctx, conn, req)
	}
	maxTTL := uint64(h.cfg.MaxTTL / time.Second)
	ttl := maxTTL
	if p.TTL != nil {
		if *p.TTL == 0 {
			return h.fail(ctx, conn, req.RequestID, wire.CodeInvalidPayload, "ttl must be at least 1 second")
		}
		ttl = min(*p.TTL, maxTTL)
	}
	if ok, err := h.underQuota(ctx, conn, now); err != nil {
		return h.internal(ctx, conn, req, err)
	} else if !ok {
		return h.failQuota(ctx, conn, req)
	}
	// Expire on a whole second (what a DynamoDB TTL attribute holds), rounded
	// up so the session lives at least the ttl granted.
	start := now.Unix()
	if now.After(time.Unix(start, 0)) {
		start++
	}
	s := Session{ID: p.SessionID, Initiator: conn, InitiatorContext: p.Context, Expires: time.Unix(start+int64(ttl), 0)}
	switch err := h.cfg.Store.Create(ctx, s); {
	case errors.Is(err, ErrSessionExists):
		return h.fail(ctx, conn, req.RequestID, wire.CodeSessionExists, "a session with this session_id already exists; use a fresh random id")
	case err != nil:
		return h.internal(ctx, conn, req, err)
	}
	h.cfg.Metrics.Add(CounterSessionsCreated, "", 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "session created", slog.String("conn", conn), slog.String("sid", sidHash(s.ID)), slog.Uint64("ttl", ttl))
	return h.reply(ctx, conn, req.RequestID, wire.TypeSessionCreated, remaining(s, now), nil)
}

func (h *Handler) joinSession(ctx context.Context, conn string, req wire.Request, now time.Time) error {
	p, err := req.JoinSession()
	if err != nil {
		return h.failWire(ctx, conn, req, err)
	}
	if !ValidSessionID(p.SessionID) {
		return h.failBadID(ctx, conn, req)
	}
	if ok, err := h.underQuota(ctx, conn, now); err != nil {
		return h.internal(ctx, conn, req, err)
	} else if !ok {
		return h.failQuota(ctx, conn, req)
	}
	s, err := h.cfg.Store.Join(ctx, p.SessionID, conn, now)
	if err != nil {
		var why string
		switch {
		case errors.Is(err, ErrSessionNotFound):
			why = "no such session"
		case errors.Is(err, ErrSessionExpired):
			why = "the session has expired"
			h.expireByID(ctx, p.SessionID, now)
		case errors.Is(err, ErrAlreadyJoined):
			why = "the session already has a peer"
		case errors.Is(err, ErrSelfJoin):
			why = "a connection cannot join the session it created"
		default:
			return h.internal(ctx, conn, req, err)
		}
		return h.fail(ctx, conn, req.RequestID, wire.CodeSessionJoinFailed, "failed to join session: "+why)
	}
	h.cfg.Metrics.Add(CounterSessionsJoined, "", 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "session joined", slog.String("conn", conn), slog.String("sid", sidHash(s.ID)))
	ttl := remaining(s, now)
	// Reply first: rcodesign's joiner reads its session-joined as the very
	// next message, and the initiator starts talking as soon as it is told.
	if err := h.reply(ctx, conn, req.RequestID, wire.TypeSessionJoined, ttl, wire.SessionJoinedPayload{Context: s.InitiatorContext}); err != nil {
		return err
	}
	return h.push(ctx, s.Initiator, wire.TypeSessionJoined, ttl, wire.SessionJoinedPayload{Context: p.Context})
}

func (h *Handler) sendMessage(ctx context.Context, conn string, req wire.Request, now time.Time) error {
	// The message is opaque to the relay: keep it encoded, so forwarding it
	// is a copy rather than an unescape and a re-escape (the peer gets the
	// same bytes either way).
	p, err := req.SendMessageEncoded()
	if err != nil {
		return h.failWire(ctx, conn, req, err)
	}
	if !ValidSessionID(p.SessionID) {
		return h.failBadID(ctx, conn, req)
	}
	s, ok, err := h.member(ctx, conn, req, p.SessionID, now, "cannot send messages to a session you don't belong to")
	if !ok {
		return err
	}
	if s.ExpiredAt(now) {
		h.endExpired(ctx, s, conn)
		return h.fail(ctx, conn, req.RequestID, wire.CodeSessionExpired, "the session has expired")
	}
	peer, _ := s.Peer(conn)
	if peer == "" {
		return h.fail(ctx, conn, req.RequestID, wire.CodeMessageSendFailure, "error sending message to peer: the peer has not joined the session yet")
	}
	ttl := remaining(s, now)
	// Acknowledge first, then forward: the peer's answer can then never
	// overtake this acknowledgement (spec §6.5).
	if err := h.reply(ctx, conn, req.RequestID, wire.TypeMessageSent, ttl, nil); err != nil {
		return err
	}
	if err := h.push(ctx, peer, wire.TypePeerMessage, ttl, wire.EncodedPeerMessagePayload{Message: p.Message}); err != nil {
		// The peer was dropped and the sender told with session-closed.
		return err
	}
	h.cfg.Metrics.Add(CounterMessagesRelayed, "", 1)
	h.cfg.Metrics.Add(CounterBytesRelayed, "", uint64(p.Message.Len()))
	return nil
}

func (h *Handler) goodbye(ctx context.Context, conn string, req wire.Request, now time.Time) error {
	p, err := req.Goodbye()
	if err != nil {
		return h.failWire(ctx, conn, req, err)
	}
	if !ValidSessionID(p.SessionID) {
		return h.failBadID(ctx, conn, req)
	}
	// An expired session may still be closed by its members.
	s, ok, err := h.member(ctx, conn, req, p.SessionID, now, "cannot close sessions you are not a member of")
	if !ok {
		return err
	}
	if err := h.cfg.Store.Delete(ctx, s.ID, s.Initiator); err != nil {
		return h.internal(ctx, conn, req, err)
	}
	h.cfg.Metrics.Add(CounterSessionsClosed, "goodbye", 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "session closed", slog.String("conn", conn), slog.String("sid", sidHash(s.ID)), slog.String("reason", "goodbye"))
	closed := wire.SessionClosedPayload{Reason: p.Reason}
	err = h.reply(ctx, conn, req.RequestID, wire.TypeSessionClosed, nil, closed)
	// The session is gone already, so the peer must be told even if the
	// reply could not be delivered.
	if peer, _ := s.Peer(conn); peer != "" {
		err = errors.Join(err, h.push(ctx, peer, wire.TypeSessionClosed, nil, closed))
	}
	return err
}

// member fetches session id for a request from conn and checks that conn
// belongs to it. If ok is false the request has been answered (err is for
// the transport's log). The session may be expired; the caller decides.
func (h *Handler) member(ctx context.Context, conn string, req wire.Request, id string, now time.Time, notMember string) (s Session, ok bool, err error) {
	s, err = h.cfg.Store.Get(ctx, id, now)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		return s, false, h.fail(ctx, conn, req.RequestID, wire.CodeSessionNotFound, "no such session (it may have been closed)")
	case err != nil && !errors.Is(err, ErrSessionExpired):
		return s, false, h.internal(ctx, conn, req, err)
	}
	if _, member := s.Peer(conn); !member {
		return s, false, h.fail(ctx, conn, req.RequestID, wire.CodeNotSessionMember, notMember)
	}
	return s, true, nil
}

// underQuota reports whether conn may create or join one more session.
func (h *Handler) underQuota(ctx context.Context, conn string, now time.Time) (bool, error) {
	sessions, err := h.cfg.Store.SessionsOf(ctx, conn)
	if err != nil {
		return false, err
	}
	live := 0
	for _, s := range sessions {
		if !s.ExpiredAt(now) {
			live++
		}
	}
	return live < h.cfg.MaxSessionsPerConn, nil
}

// expireByID ends session id if it is expired at now (Join does not return
// the record it refused).
func (h *Handler) expireByID(ctx context.Context, id string, now time.Time) {
	if s, err := h.cfg.Store.Get(ctx, id, now); errors.Is(err, ErrSessionExpired) {
		h.endExpired(ctx, s, "")
	}
}

// endExpired ends an expired session found on read, telling its members
// except skip (who gets an error reply instead).
func (h *Handler) endExpired(ctx context.Context, s Session, skip string) {
	if err := h.cfg.Store.Delete(ctx, s.ID, s.Initiator); err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "deleting expired session", slog.String("sid", sidHash(s.ID)), slog.String("err", err.Error()))
		return
	}
	h.countExpired(ctx, s)
	for _, c := range []string{s.Initiator, s.Joiner} {
		if c != skip {
			h.notifyClosed(ctx, ReasonExpired, c)
		}
	}
}

func (h *Handler) countExpired(ctx context.Context, s Session) {
	h.cfg.Metrics.Add(CounterSessionsExpired, "", 1)
	h.cfg.Metrics.Add(CounterSessionsClosed, "expired", 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "session closed", slog.String("sid", sidHash(s.ID)), slog.String("reason", "expired"))
}

// endSession deletes s and tells the given connections it closed.
func (h *Handler) endSession(ctx context.Context, s Session, reason, metricReason string, tell ...string) error {
	if err := h.cfg.Store.Delete(ctx, s.ID, s.Initiator); err != nil {
		return fmt.Errorf("relay: deleting session: %w", err)
	}
	h.cfg.Metrics.Add(CounterSessionsClosed, metricReason, 1)
	h.log.LogAttrs(ctx, slog.LevelInfo, "session closed", slog.String("sid", sidHash(s.ID)), slog.String("reason", metricReason))
	h.notifyClosed(ctx, reason, tell...)
	return nil
}

// notifyClosed pushes session-closed with reason to each non-empty conn.
func (h *Handler) notifyClosed(ctx context.Context, reason string, conns ...string) {
	for _, c := range conns {
		if c == "" {
			continue
		}
		if err := h.push(ctx, c, wire.TypeSessionClosed, nil, wire.SessionClosedPayload{Reason: &reason}); err != nil {
			h.log.LogAttrs(ctx, slog.LevelWarn, "notify failed", slog.String("conn", c), slog.String("err", err.Error()))
		}
	}
}

// dropConn ends every session of a connection that is gone, telling the
// other members. A member that cannot be told is dropped in turn (iteratively,
// so a chain of dead connections cannot recurse deeply).
func (h *Handler) dropConn(ctx context.Context, conn string) error {
	var errs []error
	work := []string{conn}
	seen := map[string]bool{conn: true}
	for len(work) > 0 {
		c := work[len(work)-1]
		work = work[:len(work)-1]
		sessions, err := h.cfg.Store.SessionsOf(ctx, c)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay: listing sessions of %s: %w", c, err))
			continue
		}
		for _, s := range sessions {
			if err := h.cfg.Store.Delete(ctx, s.ID, s.Initiator); err != nil {
				errs = append(errs, fmt.Errorf("relay: deleting session: %w", err))
				continue
			}
			h.cfg.Metrics.Add(CounterSessionsClosed, "disconnect", 1)
			h.log.LogAttrs(ctx, slog.LevelInfo, "session closed", slog.String("conn", c), slog.String("sid", sidHash(s.ID)), slog.String("reason", "disconnect"))
			peer, _ := s.Peer(c)
			if peer == "" {
				continue
			}
			reason := ReasonPeerDisconnected
			msg, err := wire.EncodeServerMessage(nil, wire.TypeSessionClosed, nil, wire.SessionClosedPayload{Reason: &reason})
			if err != nil {
				return err
			}
			if err := h.cfg.Poster.Post(ctx, peer, msg); err != nil {
				if !errors.Is(err, ErrGone) {
					errs = append(errs, fmt.Errorf("relay: notifying %s: %w", peer, err))
					if cerr := h.cfg.Poster.Close(ctx, peer); cerr != nil {
						errs = append(errs, cerr)
					}
				}
				if !seen[peer] {
					seen[peer] = true
					work = append(work, peer)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// reply posts a reply to the requester. If the requester is gone, its
// sessions are dropped and the error is swallowed: nobody is left to answer.
func (h *Handler) reply(ctx context.Context, conn string, requestID *string, typ string, ttl *uint64, payload any) error {
	msg, err := wire.EncodeServerMessage(requestID, typ, ttl, payload)
	if err != nil {
		return err
	}
	return h.post(ctx, conn, msg)
}

// push posts a message the peer did not ask for. It never carries the other
// peer's request_id (spec §8.2.8); rcodesign only logs request ids.
func (h *Handler) push(ctx context.Context, conn, typ string, ttl *uint64, payload any) error {
	return h.reply(ctx, conn, nil, typ, ttl, payload)
}

// post delivers msg to conn. A connection that cannot be reached is treated
// as gone whatever the reason: if the Poster failed for another reason than
// ErrGone it is closed, since it missed a message it was owed (a reply it
// waits for, or a peer message its channel counter needs), and either way its
// sessions end and their other members are told. The returned error is nil
// for ErrGone, the Poster's error otherwise (for the logs).
func (h *Handler) post(ctx context.Context, conn string, msg []byte) error {
	err := h.cfg.Poster.Post(ctx, conn, msg)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrGone) {
		h.log.LogAttrs(ctx, slog.LevelWarn, "post failed; closing connection", slog.String("conn", conn), slog.String("err", err.Error()))
		if cerr := h.cfg.Poster.Close(ctx, conn); cerr != nil {
			err = errors.Join(err, cerr)
		}
	} else {
		err = nil
	}
	return errors.Join(err, h.dropConn(ctx, conn))
}

func (h *Handler) fail(ctx context.Context, conn string, requestID *string, code, msg string) error {
	h.cfg.Metrics.Add(CounterErrors, code, 1)
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.log.LogAttrs(ctx, slog.LevelDebug, "error reply", slog.String("conn", conn), slog.String("code", code))
	}
	return h.reply(ctx, conn, requestID, wire.TypeError, nil, wire.ErrorPayload{Code: code, Message: msg})
}

func (h *Handler) failWire(ctx context.Context, conn string, req wire.Request, err error) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		we = &wire.Error{Code: wire.CodeInvalidPayload, Msg: err.Error()}
	}
	return h.fail(ctx, conn, req.RequestID, we.Code, we.Msg)
}

func (h *Handler) failBadID(ctx context.Context, conn string, req wire.Request) error {
	return h.fail(ctx, conn, req.RequestID, wire.CodeInvalidSessionID,
		fmt.Sprintf("session_id must be %d to %d characters from A-Z a-z 0-9 - . _ ~", MinSessionIDLen, MaxSessionIDLen))
}

func (h *Handler) failQuota(ctx context.Context, conn string, req wire.Request) error {
	return h.fail(ctx, conn, req.RequestID, wire.CodeTooManySessions,
		fmt.Sprintf("this connection already has %d live sessions", h.cfg.MaxSessionsPerConn))
}

// internal answers INTERNAL_ERROR for a store failure and returns the failure.
func (h *Handler) internal(ctx context.Context, conn string, req wire.Request, err error) error {
	h.log.LogAttrs(ctx, slog.LevelError, "store failure", slog.String("conn", conn), slog.String("api", req.API), slog.String("err", err.Error()))
	return errors.Join(err, h.fail(ctx, conn, req.RequestID, wire.CodeInternalError, "the relay could not complete the request; try again"))
}

// remaining returns the whole seconds left in s at now, never negative.
func remaining(s Session, now time.Time) *uint64 {
	d := s.Expires.Sub(now)
	if d < 0 {
		d = 0
	}
	v := uint64(d / time.Second)
	return &v
}

// sidHash identifies a session in logs without revealing its id: knowing a
// waiting session's id is enough to join it first.
func sidHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}
