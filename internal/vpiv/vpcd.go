package vpiv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultAddr is where the vpcd driver of Debian's vsmartcard-vpcd waits for the
// first virtual card (/etc/reader.conf.d/vpcd: CHANNELID 0x8C7B = 35963). The
// driver opens a second slot on the next port; pcscd names the readers
// "Virtual PCD 00 00" and "Virtual PCD 00 01".
const DefaultAddr = "127.0.0.1:35963"

// quickAckEnabled is only ever turned off by a benchmark measuring its effect.
var quickAckEnabled = true

// vpcd control messages: a one-byte payload instead of an APDU.
const (
	ctrlPowerOff = 0
	ctrlPowerOn  = 1
	ctrlReset    = 2
	ctrlGetATR   = 4
)

// Serve answers vpcd on conn for card until the connection fails or ctx is done,
// then closes conn. The vpcd protocol frames every message with a 2-byte
// big-endian length: one-byte messages are control requests (power off/on, reset,
// get ATR), longer ones are command APDUs answered with a response APDU.
//
// Serve returns ctx.Err() after a cancellation and a descriptive error when vpcd
// goes away (pcscd stopped) or sends something that is not vpcd protocol.
func Serve(ctx context.Context, conn net.Conn, card *Card) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	var hdr [2]byte
	buf := make([]byte, 0xffff)
	for {
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return serveErr(ctx, err)
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 {
			return errors.New("vpcd sent an empty message")
		}
		msg := buf[:n]
		quickAck(conn)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return serveErr(ctx, err)
		}
		var reply []byte
		if n == 1 {
			switch msg[0] {
			case ctrlPowerOff, ctrlPowerOn, ctrlReset:
				card.Reset()
				continue
			case ctrlGetATR:
				reply = ATR
			default:
				return fmt.Errorf("vpcd sent unknown control message %#x", msg[0])
			}
		} else {
			reply = card.Transmit(msg)
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reply)), uint16(len(reply)))
		if _, err := conn.Write(append(out, reply...)); err != nil {
			return serveErr(ctx, err)
		}
	}
}

func serveErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.EOF) {
		return errors.New("vpcd closed the connection (pcscd stopped?)")
	}
	return fmt.Errorf("vpcd connection: %w", err)
}

// Runner is a card plugged into vpcd, served in a goroutine. It lets a test start
// a card, use it through PC/SC and pull it out again.
type Runner struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    error
}

// Start connects card to the vpcd slot listening at addr (DefaultAddr for the
// first slot) and serves it until Stop. To PC/SC clients this is inserting the
// card into the reader.
func Start(addr string, card *Card) (*Runner, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting the virtual card to vpcd at %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = Serve(ctx, conn, card)
		close(r.done)
	}()
	return r, nil
}

// Done is closed when the card stops being served.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Stop removes the card from the reader and waits for the serving goroutine.
// It returns the error that ended serving early, if any.
func (r *Runner) Stop() error {
	r.once.Do(r.cancel)
	<-r.done
	if errors.Is(r.err, context.Canceled) {
		return nil
	}
	return r.err
}
