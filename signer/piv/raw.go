//go:build cgo || windows

package piv

import (
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"

	ykpiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/farsign/farsign/signer/piv/scard"
)

// rawRSA runs the card's RSA private-key operation on one modulus-sized block and
// returns the block unchanged by any padding logic.
//
// piv-go cannot do this (its Decrypt strips PKCS #1 v1.5 padding by searching for
// a zero byte, which mangles an OAEP block) and exposes no raw APDU call, so for
// this one operation the piv-go connection is closed, the card is driven directly
// over PC/SC, and piv-go reconnects afterwards. The card is checked to be the same
// one (serial number) before the PIN or the ciphertext is sent.
func (k *Key) rawRSA(in []byte) (out []byte, err error) {
	alg, err := rsaAlgorithmID(k.pub.(*rsa.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := k.dev.Close(); err != nil {
		return nil, fmt.Errorf("releasing the card: %w", err)
	}
	defer func() {
		if rerr := k.reconnect(); rerr != nil {
			k.broken = fmt.Errorf("lost the connection to smart card %d: %w", k.dev.serial, rerr)
			if err == nil {
				err = k.broken
			}
		}
	}()

	card, err := scard.Connect(k.dev.reader)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	t := &rawPIV{card: card}
	if _, err := t.do(0xa4, 0x04, 0x00, aidPIV); err != nil {
		return nil, fmt.Errorf("selecting the PIV application: %w", err)
	}
	serial, err := t.do(0xf8, 0, 0, nil)
	if err != nil || len(serial) != 4 || binary.BigEndian.Uint32(serial) != k.dev.serial {
		return nil, fmt.Errorf("the card in %q is no longer smart card %d", k.dev.reader, k.dev.serial)
	}
	// A new connection may or may not keep the PIN state: ask the card.
	if k.pinPolicy == PINOnce && t.verified() {
		k.verified = true
	} else if err := k.authorize(t, true); err != nil {
		return nil, err
	}

	k.touchNotice("decryption")
	var data []byte
	data = appendTLV(data, 0x82, nil)
	data = appendTLV(data, 0x81, in)
	resp, err := t.do(0x87, alg, byte(k.slot), appendTLV(nil, 0x7c, data))
	if err != nil {
		return nil, err
	}
	k.touched()
	outer, err := readTLV(resp, 0x7c)
	if err != nil {
		return nil, err
	}
	out, err = readTLV(outer, 0x82)
	if err != nil {
		return nil, err
	}
	if len(out) > len(in) {
		return nil, errors.New("card returned an oversized RSA result")
	}
	// Left-pad to the modulus size in case the card dropped leading zeros.
	return append(make([]byte, len(in)-len(out)), out...), nil
}

// reconnect gives the card back to piv-go after a raw operation. The PIN state of
// the new connection is unknown, so a PIN-once slot re-verifies (with the PIN the
// user already gave) at the next use.
func (k *Key) reconnect() error {
	d, err := openReader(k.dev.reader)
	if err != nil {
		return err
	}
	if d.serial != k.dev.serial {
		d.Close()
		return fmt.Errorf("a different card (serial %d) is now in %q", d.serial, k.dev.reader)
	}
	k.dev.yk = d.yk
	k.verified = false
	return nil
}

func rsaAlgorithmID(pub *rsa.PublicKey) (byte, error) {
	switch pub.N.BitLen() {
	case 1024:
		return 0x06, nil
	case 2048:
		return 0x07, nil
	case 3072:
		return 0x05, nil
	case 4096:
		return 0x16, nil
	}
	return 0, fmt.Errorf("unsupported RSA key size %d", pub.N.BitLen())
}

// rawPIV speaks the PIV command set over a raw PC/SC connection: command
// chaining for long data and GET RESPONSE for long answers, as piv-go does.
type rawPIV struct{ card *scard.Card }

// statusError is a card status word other than 9000.
type statusError uint16

func (s statusError) Error() string { return fmt.Sprintf("smart card error %04x", uint16(s)) }

// Status returns the status word (the same method piv-go's errors have).
func (s statusError) Status() uint16 { return uint16(s) }

// maxRawResponse bounds what the card may send back for one command.
const maxRawResponse = 16 << 10

func (t *rawPIV) do(ins, p1, p2 byte, data []byte) ([]byte, error) {
	for len(data) > 0xff {
		if _, err := t.exchange(append([]byte{0x10, ins, p1, p2, 0xff}, data[:0xff]...)); err != nil {
			return nil, err
		}
		data = data[0xff:]
	}
	apdu := []byte{0x00, ins, p1, p2}
	if len(data) > 0 {
		apdu = append(append(apdu, byte(len(data))), data...)
	}
	resp, sw, err := t.transmit(apdu)
	for err == nil && sw>>8 == 0x61 {
		if len(resp) > maxRawResponse {
			return nil, errors.New("smart card response too long")
		}
		var more []byte
		more, sw, err = t.transmit([]byte{0x00, 0xc0, 0x00, 0x00, 0x00})
		resp = append(resp, more...)
	}
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 {
		return nil, statusError(sw)
	}
	return resp, nil
}

func (t *rawPIV) exchange(apdu []byte) ([]byte, error) {
	resp, sw, err := t.transmit(apdu)
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 {
		return nil, statusError(sw)
	}
	return resp, nil
}

func (t *rawPIV) transmit(apdu []byte) ([]byte, uint16, error) {
	r, err := t.card.Transmit(apdu)
	if err != nil {
		return nil, 0, err
	}
	if len(r) < 2 {
		return nil, 0, errors.New("smart card response too short")
	}
	n := len(r) - 2
	return r[:n], binary.BigEndian.Uint16(r[n:]), nil
}

// verified reports whether the PIN is currently verified (VERIFY with no data
// answers 9000 then).
func (t *rawPIV) verified() bool {
	_, err := t.do(0x20, 0x00, 0x80, nil)
	return err == nil
}

// VerifyPIN verifies pin, reporting failures as ykpiv.AuthErr like piv-go does.
func (t *rawPIV) VerifyPIN(pin string) error {
	if len(pin) == 0 || len(pin) > 8 {
		return errors.New("the PIN must be 1 to 8 characters")
	}
	data := []byte(pin)
	for len(data) < 8 {
		data = append(data, 0xff)
	}
	_, err := t.do(0x20, 0x00, 0x80, data)
	return authErr(err)
}

// Retries returns the PIN attempts left.
func (t *rawPIV) Retries() (int, error) {
	_, err := t.do(0x20, 0x00, 0x80, nil)
	if err == nil {
		return 0, errors.New("PIN already verified")
	}
	var ae ykpiv.AuthErr
	if errors.As(authErr(err), &ae) {
		return ae.Retries, nil
	}
	return 0, err
}

func authErr(err error) error {
	var st statusError
	if !errors.As(err, &st) {
		return err
	}
	switch {
	case st == 0x6983:
		return ykpiv.AuthErr{Retries: 0}
	case st&0xfff0 == 0x63c0:
		return ykpiv.AuthErr{Retries: int(st & 0xf)}
	}
	return err
}

// appendTLV appends a BER-TLV with a one-byte tag and a definite length.
func appendTLV(dst []byte, tag byte, value []byte) []byte {
	dst = append(dst, tag)
	switch n := len(value); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	default:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, value...)
}

// readTLV returns the value of the single TLV with a one-byte tag at the start
// of b, checking the length against b.
func readTLV(b []byte, tag byte) ([]byte, error) {
	bad := fmt.Errorf("malformed smart card response (expected tag %02x)", tag)
	if len(b) < 2 || b[0] != tag {
		return nil, bad
	}
	n, i := int(b[1]), 2
	switch b[1] {
	case 0x81:
		if len(b) < 3 {
			return nil, bad
		}
		n, i = int(b[2]), 3
	case 0x82:
		if len(b) < 4 {
			return nil, bad
		}
		n, i = int(b[2])<<8|int(b[3]), 4
	default:
		if n >= 0x80 {
			return nil, bad
		}
	}
	if n > len(b)-i {
		return nil, bad
	}
	return b[i : i+n], nil
}
