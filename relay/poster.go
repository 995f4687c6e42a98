package relay

import (
	"context"
	"errors"
)

// ErrGone is returned by a Poster for a connection that no longer exists (API
// Gateway's GoneException, a closed websocket, a client too slow to keep up).
// The core treats it exactly like a disconnect of that connection: the other
// member of its sessions is told with session-closed and the sessions are
// deleted.
var ErrGone = errors.New("relay: connection gone")

// Poster delivers server messages to connections: the standalone server writes
// them to its websockets, the Lambda posts them to API Gateway's @connections
// management API.
//
// The core sends everything through the Poster, replies included, never as a
// return value. That is what lets it guarantee the order rcodesign depends on
// in every deployment: the requester's reply is posted, and Post has returned,
// before anything is posted to its peer.
//
// Implementations must be safe for concurrent use.
type Poster interface {
	// Post sends msg, one complete JSON text message, to conn. Messages posted
	// to one connection are delivered in the order the Post calls returned:
	// an implementation may queue msg and return before it is on the wire,
	// but must not reorder. The core never modifies msg after posting it, so
	// an implementation may keep it without copying.
	//
	// It returns an error wrapping ErrGone if conn does not exist any more
	// (or the implementation had to drop it, e.g. because its send queue is
	// full), and any other error for a transient failure.
	Post(ctx context.Context, conn string, msg []byte) error

	// Close disconnects conn from the server side. The transport then reports
	// the disconnect through Handler.Disconnect, as for a client that hung up.
	// Closing a connection that is already gone returns nil.
	Close(ctx context.Context, conn string) error
}
