//go:build cgo && (linux || darwin || freebsd || openbsd)

// Package scard is the few PC/SC calls farsign needs beyond go-piv/piv-go:
// whether a reader holds a card, and raw APDU exchange inside an exclusive
// transaction.
//
// Two piv-go limitations make it necessary. piv-go's RSA Decrypt strips PKCS #1
// v1.5 padding from the card's output in a way that destroys an OAEP-encoded
// block, and piv-go has no raw APDU API, so the RSA operation for publickey0
// session joining goes through this package. And piv.Open leaks its exclusive
// connection when the card does not answer the PIV SELECT (a non-PIV card, or a
// card pulled out mid-open), locking the reader for the rest of the process, so
// callers probe a reader with this package before handing it to piv-go.
package scard

// #cgo linux pkg-config: libpcsclite
// #cgo darwin LDFLAGS: -framework PCSC
// #cgo freebsd CFLAGS: -I/usr/local/include/ -I/usr/local/include/PCSC
// #cgo freebsd LDFLAGS: -L/usr/local/lib/ -lpcsclite
// #cgo openbsd CFLAGS: -I/usr/local/include/ -I/usr/local/include/PCSC
// #cgo openbsd LDFLAGS: -L/usr/local/lib/ -lpcsclite
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// maxResponse is the largest response libpcsclite returns for one exchange.
const maxResponse = C.MAX_BUFFER_SIZE_EXTENDED

// Card is an exclusive connection to the card in one reader, inside a PC/SC
// transaction so no other process interleaves commands.
type Card struct {
	ctx C.SCARDCONTEXT
	h   C.SCARDHANDLE
}

// Connect opens reader exclusively with protocol T=1 (what YubiKeys speak and
// what piv-go uses) and begins a transaction.
func Connect(reader string) (*Card, error) {
	var ctx C.SCARDCONTEXT
	if err := check(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)); err != nil {
		return nil, fmt.Errorf("connecting to the PC/SC daemon: %w", err)
	}
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	var h C.SCARDHANDLE
	var proto C.DWORD
	if err := check(C.SCardConnect(ctx, name, C.SCARD_SHARE_EXCLUSIVE, C.SCARD_PROTOCOL_T1, &h, &proto)); err != nil {
		C.SCardReleaseContext(ctx)
		return nil, fmt.Errorf("connecting to smart card in %q: %w", reader, err)
	}
	if err := check(C.SCardBeginTransaction(h)); err != nil {
		C.SCardDisconnect(h, C.SCARD_LEAVE_CARD)
		C.SCardReleaseContext(ctx)
		return nil, fmt.Errorf("beginning smart card transaction: %w", err)
	}
	return &Card{ctx: ctx, h: h}, nil
}

// Transmit sends one command APDU and returns the response APDU including the
// status word.
func (c *Card) Transmit(apdu []byte) ([]byte, error) {
	if len(apdu) == 0 {
		return nil, errors.New("empty APDU")
	}
	resp := make([]byte, maxResponse)
	n := C.DWORD(len(resp))
	rc := C.SCardTransmit(c.h, C.SCARD_PCI_T1,
		(*C.BYTE)(unsafe.Pointer(&apdu[0])), C.DWORD(len(apdu)), nil,
		(*C.BYTE)(unsafe.Pointer(&resp[0])), &n)
	if err := check(rc); err != nil {
		return nil, fmt.Errorf("transmitting to smart card: %w", err)
	}
	if int(n) > len(resp) {
		return nil, errors.New("smart card response overflow")
	}
	return resp[:n], nil
}

// Close ends the transaction and releases the card without resetting it.
func (c *Card) Close() error {
	err1 := check(C.SCardEndTransaction(c.h, C.SCARD_LEAVE_CARD))
	err2 := check(C.SCardDisconnect(c.h, C.SCARD_LEAVE_CARD))
	err3 := check(C.SCardReleaseContext(c.ctx))
	return errors.Join(err1, err2, err3)
}

// ListReaders returns the names of the smart card readers pcscd knows, empty
// when there are none.
func ListReaders() ([]string, error) {
	var ctx C.SCARDCONTEXT
	if err := check(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)); err != nil {
		return nil, fmt.Errorf("connecting to the PC/SC daemon: %w", err)
	}
	defer C.SCardReleaseContext(ctx)
	var n C.DWORD
	rc := C.SCardListReaders(ctx, nil, nil, &n)
	if Error(uint32(rc)) == noReaders {
		return nil, nil
	}
	if err := check(rc); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if n == 0 {
		return nil, nil
	}
	rc = C.SCardListReaders(ctx, nil, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	if Error(uint32(rc)) == noReaders {
		return nil, nil
	}
	if err := check(rc); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range strings.Split(string(buf[:n]), "\x00") {
		if r != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// Present reports whether pcscd sees a card in reader, without connecting to it
// (so it neither waits for nor disturbs a program using the card).
func Present(reader string) (bool, error) {
	var ctx C.SCARDCONTEXT
	if err := check(C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)); err != nil {
		return false, fmt.Errorf("connecting to the PC/SC daemon: %w", err)
	}
	defer C.SCardReleaseContext(ctx)
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	var st C.SCARD_READERSTATE
	st.szReader = name
	st.dwCurrentState = C.SCARD_STATE_UNAWARE
	if err := check(C.SCardGetStatusChange(ctx, 0, &st, 1)); err != nil {
		return false, fmt.Errorf("reading the state of %q: %w", reader, err)
	}
	return st.dwEventState&C.SCARD_STATE_PRESENT != 0, nil
}

func check(rc C.LONG) error {
	if rc == C.SCARD_S_SUCCESS {
		return nil
	}
	return Error(uint32(rc))
}
