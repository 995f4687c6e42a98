package standalone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/farsign/farsign/relay"
)

// conn is one websocket client.
//
// Reading happens on net/http's goroutine for the connection (read). Every
// message to a client goes through its queue, and one writer at a time
// drains it, so writes to a client are strictly in Post order. The writer
// is either
//
//   - the reader goroutine of the connection whose request caused the
//     messages: after the core has handled a request, its reader drains the
//     queues the request touched (flush), the peer's first and its own
//     reply last, which keeps the ack off the forwarded message's path
//     without reordering anything (the ack was queued first); or
//   - a writer goroutine (writeLoop), started when something else posts (the
//     sweeper, a disconnect, shutdown) or when a queue still holds messages
//     after a flush. It exits when the queue is empty, so idle connections
//     cost no goroutine.
//
// A client that stops reading stalls at most the writer draining its queue,
// for at most WriteTimeout, after which it is disconnected; a client whose
// queue reaches SendQueue is disconnected at once. Pings are sent from a
// timer; gorilla allows WriteControl concurrently with the writer.
type conn struct {
	srv *Server
	id  string
	ws  *websocket.Conn

	mu        sync.Mutex
	queue     [][]byte
	writing   bool // a writeLoop goroutine is running
	closing   bool // drain the queue, then send a close frame
	closeCode int
	closeText string
	dead      bool
	ping      *time.Timer
	lastTouch time.Time // reader goroutine only
}

// batchKey marks the context of a request being handled on a reader
// goroutine; its value collects the connections posted to, for flush.
type batchKey struct{}

type batch struct{ conns []*conn }

func (b *batch) add(c *conn) {
	for _, x := range b.conns {
		if x == c {
			return
		}
	}
	b.conns = append(b.conns, c)
}

// flush drains the queues touched by one request, most recently touched
// first.
func (b *batch) flush() {
	for i := len(b.conns) - 1; i >= 0; i-- {
		b.conns[i].flush()
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
}

// bufPool holds read buffers: the core does not retain a message after
// Message returns, so one buffer serves every read.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBuf returns a read buffer to the pool, unless an unusually large message
// grew it: the pool should not pin memory for the rare big one.
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 {
		bufPool.Put(b)
	}
}

// read feeds the client's messages to the core until the connection fails
// or closes.
func (c *conn) read(ctx context.Context) {
	cfg := &c.srv.cfg
	limit := c.srv.core.MaxMessageSize()
	// Messages up to 4x the limit are read and discarded, so the client
	// gets a MESSAGE_TOO_LARGE reply; anything larger closes the connection
	// (1009), which bounds what a client can make the relay read for nothing.
	c.ws.SetReadLimit(4 * int64(limit))
	c.touch()
	c.ws.SetPongHandler(func(string) error { c.touch(); return nil })
	c.mu.Lock()
	if !c.dead {
		c.ping = time.AfterFunc(cfg.PingInterval, c.sendPing)
	}
	c.mu.Unlock()

	b := &batch{}
	bctx := context.WithValue(ctx, batchKey{}, b)
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			c.srv.log.Debug("read ended", "conn", c.id, "err", err)
			return
		}
		c.touch()
		// Hand the core at most limit+1 bytes: enough for it to see that a
		// message is too large, without buffering the rest.
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
		if err == nil && buf.Len() > limit {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			putBuf(buf)
			c.srv.log.Debug("read ended", "conn", c.id, "err", err)
			return
		}
		if err := c.srv.core.Message(bctx, c.id, buf.Bytes()); err != nil {
			c.srv.log.Warn("message handling failed", "conn", c.id, "err", err)
		}
		putBuf(buf)
		b.flush()
	}
}

// touch pushes the idle deadline forward: the client showed it is alive. To
// spare a timer update per message it moves the deadline only when an
// eighth of IdleTimeout has passed, so a silent client is dropped after 7/8
// to 8/8 of IdleTimeout.
func (c *conn) touch() {
	now := time.Now()
	if now.Sub(c.lastTouch) < c.srv.cfg.IdleTimeout/8 {
		return
	}
	c.lastTouch = now
	_ = c.ws.SetReadDeadline(now.Add(c.srv.cfg.IdleTimeout))
}

func (c *conn) sendPing() {
	cfg := &c.srv.cfg
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
		c.kill()
		return
	}
	c.mu.Lock()
	if !c.dead {
		c.ping.Reset(cfg.PingInterval)
	}
	c.mu.Unlock()
}

var errQueueFull = errors.New("send queue full")

// enqueue queues msg. Posted while a request is handled (ctx carries a
// batch), the request's reader flushes it; otherwise a writer goroutine is
// started unless one is running.
func (c *conn) enqueue(ctx context.Context, msg []byte) error {
	c.mu.Lock()
	if c.dead || c.closing {
		c.mu.Unlock()
		return fmt.Errorf("standalone: connection %s closed: %w", c.id, relay.ErrGone)
	}
	if len(c.queue) >= c.srv.cfg.SendQueue {
		c.mu.Unlock()
		c.srv.log.Warn("disconnecting slow client", "conn", c.id, "queued", c.srv.cfg.SendQueue)
		c.kill()
		return fmt.Errorf("standalone: connection %s: %w: %w", c.id, errQueueFull, relay.ErrGone)
	}
	c.queue = append(c.queue, msg)
	if !c.writing {
		if b, ok := ctx.Value(batchKey{}).(*batch); ok {
			c.mu.Unlock()
			b.add(c)
			return nil
		}
		c.writing = true
		go c.writeLoop()
	}
	c.mu.Unlock()
	return nil
}

// flush writes what is queued now on the calling goroutine, unless another
// writer is at work. Anything queued meanwhile goes to a writer goroutine,
// so a flush does a bounded amount of work.
func (c *conn) flush() {
	c.mu.Lock()
	if c.writing || c.dead || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.writing = true
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	if !c.write(batch) {
		return
	}
	c.mu.Lock()
	if len(c.queue) > 0 || c.closing {
		go c.writeLoop() // c.writing stays true: the goroutine owns the queue
	} else {
		c.writing = false
	}
	c.mu.Unlock()
}

// write writes msgs, under one deadline. On failure it kills the connection,
// releases the queue and reports false.
func (c *conn) write(msgs [][]byte) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	for _, m := range msgs {
		if err := c.ws.WriteMessage(websocket.TextMessage, m); err != nil {
			c.srv.log.Debug("write failed", "conn", c.id, "err", err)
			c.kill()
			c.mu.Lock()
			c.queue, c.writing = nil, false
			c.mu.Unlock()
			return false
		}
	}
	return true
}

// writeLoop writes queued messages in order until the queue is empty. The
// caller has set c.writing.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if c.dead {
			c.queue, c.writing = nil, false
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			closing, code, text := c.closing, c.closeCode, c.closeText
			c.mu.Unlock()
			if closing {
				c.sendClose(code, text)
			}
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		if !c.write(batch) {
			return
		}
	}
}

// sendClose sends a close frame and gives the client a moment to answer it
// before the read deadline ends the connection.
func (c *conn) sendClose(code int, text string) {
	deadline := time.Now().Add(time.Second)
	if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline); err != nil {
		c.kill()
		return
	}
	_ = c.ws.SetReadDeadline(deadline.Add(time.Second))
}

// drainAndClose lets queued messages go out, then closes with code.
func (c *conn) drainAndClose(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.closing {
		return
	}
	c.closing, c.closeCode, c.closeText = true, code, text
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// closeWith closes now, with a close frame, dropping anything queued.
func (c *conn) closeWith(code int, text string) {
	c.mu.Lock()
	dead := c.dead
	c.mu.Unlock()
	if !dead {
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	}
	c.kill()
}

// kill closes the network connection at once. The reader then fails and the
// handler reports the disconnect to the core. Idempotent.
func (c *conn) kill() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	if c.ping != nil {
		c.ping.Stop()
	}
	c.mu.Unlock()
	_ = c.ws.Close()
}
