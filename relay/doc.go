// Package relay is the transport-agnostic core of the farsign relay: it pairs
// an initiator and a signer in a session and forwards their end-to-end
// encrypted messages, speaking rcodesign's client<->relay protocol
// (protocol/wire).
//
// The core sees three events per connection, Connect, Message and
// Disconnect, and acts only through two interfaces: a Store for sessions and
// a Poster to reach connections. The standalone websocket server
// (relay/standalone) and the AWS Lambda adapter are thin translations of their
// transport into those calls, so both behave identically, and every reply,
// not only messages to the other peer, goes through the Poster: that is how
// the order rcodesign relies on holds everywhere.
//
// # Behaviour
//
//   - hello: greeting listing every API, with the configured MOTD (or null).
//   - create-session: the session_id must pass ValidSessionID; ttl, if given,
//     must be a positive integer and is capped at Config.MaxTTL (absent or
//     null means the maximum); an existing id is refused, never overwritten.
//     Reply session-created with ttl.
//   - join-session: fails if the session is missing, expired, already joined
//     or was created by the same connection. Reply session-joined carrying the
//     initiator's context to the joiner, then push session-joined carrying the
//     joiner's context to the initiator.
//   - send-message: only a member may send, and only once the peer has
//     joined. Reply message-sent to the sender, then push peer-message with
//     the message verbatim to the peer.
//   - goodbye: a member ends the session: it is deleted, the sender gets
//     session-closed and the peer gets session-closed with the sender's
//     reason.
//   - Disconnect: every session of the connection is deleted and the other
//     member gets session-closed {"reason":"peer disconnected"}. Sessions are
//     found through Store.SessionsOf, never a scan.
//   - Expiry is checked on every read. A request on an expired session fails
//     with SESSION_EXPIRED (or SESSION_JOIN_FAILED) and the session's other
//     member gets session-closed {"reason":"session expired"}; with a store
//     that implements Sweeper, Handler.Sweep does the same in the background.
//   - A connection that cannot be delivered to (gone, or a Poster failure) is
//     treated as disconnected; one the relay failed to deliver to for another
//     reason is closed, since it missed a message it was owed.
//
// Every request gets exactly one reply, and it is posted to the requester
// before anything caused by the request is posted to the peer, so rcodesign's
// position-based reads are never confused (spec §6.5). Replies carry the
// request's request_id; messages pushed to the other peer carry null, so one
// peer never learns the other's request ids. Every message about a live
// session carries ttl, the whole seconds remaining, never negative.
//
// # Error codes
//
// Errors are replies {"type":"error","payload":{"code":CODE,"message":TEXT}}.
// Codes are stable; messages are for people and may change.
//
//	REQUEST_JSON_PARSE    the message is not one JSON object in valid UTF-8, has
//	                      duplicate field names or trailing data
//	NO_REQUEST_ID         request_id is absent (null is accepted)
//	NO_API                api is absent, null or empty
//	UNKNOWN_API           api is not one of the five APIs
//	INVALID_REQUEST       request_id or api has the wrong type or length, or
//	                      payload is neither an object nor null
//	INVALID_PAYLOAD       a payload field is missing or has the wrong type, or
//	                      ttl is 0, negative or not an integer
//	INVALID_SESSION_ID    session_id is not 16-128 characters of A-Z a-z 0-9 - . _ ~
//	MESSAGE_TOO_LARGE     the message exceeds Config.MaxMessageSize (request_id null)
//	RATE_LIMITED          the connection exceeds Config.MessageRate (request_id
//	                      null); a connection that keeps going is closed
//	TOO_MANY_SESSIONS     the connection already has Config.MaxSessionsPerConn
//	                      live sessions
//	SESSION_EXISTS        create-session with an id that is in use
//	SESSION_JOIN_FAILED   join-session on a missing, expired, already joined or
//	                      own session (the message says which)
//	SESSION_NOT_FOUND     send-message or goodbye on a missing session
//	SESSION_EXPIRED       send-message on an expired session
//	NOT_SESSION_MEMBER    send-message or goodbye from a connection that is not
//	                      a member of the session
//	MESSAGE_SEND_FAILURE  send-message before the peer has joined
//	INTERNAL_ERROR        the Store failed; nothing was changed, try again
//
// The first seven codes are the reference relay's, with the same meaning.
// The reference relay's UNHANDLED_EXCEPTION is never sent.
package relay
