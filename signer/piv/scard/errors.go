package scard

import (
	"errors"
	"fmt"
)

// ErrUnsupported is returned where raw PC/SC access is not built in (no cgo, or
// Windows, where piv-go has its own PC/SC code and this package has none).
var ErrUnsupported = errors.New("raw smart card access is not available in this build (it needs cgo and libpcsclite)")

// Error is a PC/SC return code.
type Error uint32

func (e Error) Error() string {
	if s, ok := messages[uint32(e)]; ok {
		return s
	}
	return fmt.Sprintf("PC/SC error 0x%08x", uint32(e))
}

// PC/SC return codes callers distinguish.
const (
	SharingViolation Error = 0x8010000B
	NoSmartcard      Error = 0x8010000C
	NoService        Error = 0x8010001D
	noReaders        Error = 0x8010002E
)

var messages = map[uint32]string{
	0x80100002: "the action was cancelled",
	0x80100009: "unknown reader",
	0x8010000B: "the card is in use by another program (sharing violation)",
	0x8010000C: "no smart card in the reader",
	0x8010001D: "the PC/SC service (pcscd) is not running",
	0x8010002E: "no smart card readers are available",
	0x80100069: "the card was removed",
	0x80100068: "the card was reset",
}
