package vpiv

import (
	"encoding/binary"
	"errors"
)

// Command is one parsed command APDU (ISO/IEC 7816-4 §5.1).
type Command struct {
	CLA, INS, P1, P2 byte
	// Data is the command data field (Lc bytes), nil when absent.
	Data []byte
	// Ne is the maximum number of response bytes the client accepts: 256 for a
	// short APDU with Le=00 or without Le (PIV clients omit Le and rely on 61xx +
	// GET RESPONSE), up to 65536 for an extended one.
	Ne int
	// Extended reports the extended-length form (3-byte Lc / 2- or 3-byte Le).
	Extended bool
}

// Chained reports the command-chaining bit (CLA b5): more data follows in the
// next command, as piv-go and yubico-piv-tool send data longer than 255 bytes.
func (c Command) Chained() bool { return c.CLA&0x10 != 0 }

var errMalformedAPDU = errors.New("malformed command APDU")

// ParseCommand decodes the four ISO 7816-3 cases in short and extended form. It
// never panics and rejects trailing or missing bytes, because a card that guesses
// at a malformed command is a card that can be confused into doing the wrong thing.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, errMalformedAPDU
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Ne: 256}
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, nil
	case len(body) == 1: // case 2S
		c.Ne = shortLe(body[0])
		return c, nil
	case body[0] != 0: // case 3S or 4S
		lc := int(body[0])
		switch len(body) {
		case 1 + lc:
		case 2 + lc:
			c.Ne = shortLe(body[1+lc])
		default:
			return Command{}, errMalformedAPDU
		}
		c.Data = body[1 : 1+lc]
		return c, nil
	}
	// Extended length: body[0] == 0.
	c.Extended = true
	if len(body) == 3 { // case 2E
		c.Ne = extLe(body[1:3])
		return c, nil
	}
	if len(body) < 3 {
		return Command{}, errMalformedAPDU
	}
	lc := int(binary.BigEndian.Uint16(body[1:3]))
	if lc == 0 {
		return Command{}, errMalformedAPDU
	}
	rest := body[3:]
	switch len(rest) {
	case lc: // case 3E
	case lc + 2: // case 4E
		c.Ne = extLe(rest[lc:])
	default:
		return Command{}, errMalformedAPDU
	}
	c.Data = rest[:lc]
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return 256
	}
	return int(b)
}

func extLe(b []byte) int {
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 {
		return 65536
	}
	return n
}

// Status words the applet answers with (ISO 7816-4 §5.6 and NIST SP 800-73-4 Part 2).
const (
	swOK                   = 0x9000
	swMoreData             = 0x6100 // | remaining (00 = 256 or more)
	swVerifyFail           = 0x63c0 // | retries left
	swWrongLength          = 0x6700
	swSecurityNotSatisfied = 0x6982
	swAuthBlocked          = 0x6983
	swConditionsNotMet     = 0x6985
	swLastCmdExpected      = 0x6883
	swIncorrectData        = 0x6a80
	swFileNotFound         = 0x6a82
	swNotEnoughMemory      = 0x6a84
	swIncorrectP1P2        = 0x6a86
	swRefNotFound          = 0x6a88
	swWrongP1P2            = 0x6b00
	swINSNotSupported      = 0x6d00
	swCLANotSupported      = 0x6e00
)

// statusError lets handlers return an ISO status word as an error.
type statusError uint16

func (s statusError) Error() string { return "status " + hex4(uint16(s)) }

func hex4(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&0xf], digits[v>>4&0xf], digits[v&0xf]})
}
