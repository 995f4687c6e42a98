package vpiv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"errors"
)

// padPIN pads a PIN or PUK to the 8-byte wire form (0xff filler, SP 800-73-4 Part 2
// §2.4.3). It reports false for values longer than 8 bytes.
func padPIN(p []byte) ([8]byte, bool) {
	var out [8]byte
	if len(p) > 8 {
		return out, false
	}
	for i := range out {
		out[i] = 0xff
	}
	copy(out[:], p)
	return out, true
}

// validNewPIN checks the 8-byte form of a new PIN/PUK the way a YubiKey does:
// 6 to 8 bytes, padding only at the end.
func validNewPIN(b []byte) bool {
	n := len(b)
	for n > 0 && b[n-1] == 0xff {
		n--
	}
	for _, c := range b[:n] {
		if c == 0xff {
			return false
		}
	}
	return n >= 6
}

func retriesStatus(left int) error {
	return statusError(swVerifyFail | uint16(min(left, 15)))
}

// verify is VERIFY (INS 20) for the PIN. An empty data field asks for the status:
// 9000 when verified, 63Cx with the retries left otherwise, 6983 when blocked.
// P1=FF resets the verification state (SP 800-73-4 Part 2 §3.2.1).
func (c *Card) verify(cmd Command) ([]byte, error) {
	if cmd.P2 != refPIN {
		return nil, statusError(swRefNotFound)
	}
	switch cmd.P1 {
	case 0x00:
	case 0xff:
		if len(cmd.Data) != 0 {
			return nil, statusError(swWrongLength)
		}
		c.pinVerified, c.pinJustNow = false, false
		return nil, nil
	default:
		return nil, statusError(swIncorrectP1P2)
	}
	if len(cmd.Data) == 0 {
		if c.pinVerified {
			return nil, nil
		}
		if c.pinLeft == 0 {
			return nil, statusError(swAuthBlocked)
		}
		return nil, retriesStatus(c.pinLeft)
	}
	if len(cmd.Data) != 8 {
		return nil, statusError(swIncorrectData)
	}
	if c.pinLeft == 0 {
		return nil, statusError(swAuthBlocked)
	}
	if subtle.ConstantTimeCompare(cmd.Data, c.pin[:]) != 1 {
		c.pinLeft--
		c.pinVerified, c.pinJustNow = false, false
		return nil, retriesStatus(c.pinLeft)
	}
	c.pinLeft = c.pinMax
	c.pinVerified, c.pinJustNow = true, true
	return nil, nil
}

// changeReference is CHANGE REFERENCE DATA (INS 24): old value then new value,
// 8 bytes each, for the PIN (P2=80) or the PUK (P2=81). A wrong old value counts
// as a failed attempt.
func (c *Card) changeReference(cmd Command) ([]byte, error) {
	if cmd.P1 != 0 {
		return nil, statusError(swIncorrectP1P2)
	}
	var value *[8]byte
	var left *int
	var max int
	var isDefault *bool
	switch cmd.P2 {
	case refPIN:
		value, left, max, isDefault = &c.pin, &c.pinLeft, c.pinMax, &c.pinDefault
	case refPUK:
		value, left, max, isDefault = &c.puk, &c.pukLeft, c.pukMax, &c.pukDefault
	default:
		return nil, statusError(swRefNotFound)
	}
	if len(cmd.Data) != 16 {
		return nil, statusError(swIncorrectData)
	}
	if *left == 0 {
		return nil, statusError(swAuthBlocked)
	}
	if subtle.ConstantTimeCompare(cmd.Data[:8], value[:]) != 1 {
		*left--
		if cmd.P2 == refPIN {
			c.pinVerified, c.pinJustNow = false, false
		}
		return nil, retriesStatus(*left)
	}
	if !validNewPIN(cmd.Data[8:]) {
		return nil, statusError(swIncorrectData)
	}
	copy(value[:], cmd.Data[8:])
	*left = max
	def := DefaultPIN
	if cmd.P2 == refPUK {
		def = DefaultPUK
	}
	p, _ := padPIN([]byte(def))
	*isDefault = *value == p
	return nil, nil
}

// resetRetry is RESET RETRY COUNTER (INS 2C): the PUK unblocks the PIN and sets a
// new one. A wrong PUK counts against the PUK's own retries.
func (c *Card) resetRetry(cmd Command) ([]byte, error) {
	if cmd.P1 != 0 || cmd.P2 != refPIN {
		return nil, statusError(swIncorrectP1P2)
	}
	if len(cmd.Data) != 16 {
		return nil, statusError(swIncorrectData)
	}
	if c.pukLeft == 0 {
		return nil, statusError(swAuthBlocked)
	}
	if subtle.ConstantTimeCompare(cmd.Data[:8], c.puk[:]) != 1 {
		c.pukLeft--
		return nil, retriesStatus(c.pukLeft)
	}
	if !validNewPIN(cmd.Data[8:]) {
		return nil, statusError(swIncorrectData)
	}
	c.pukLeft = c.pukMax
	copy(c.pin[:], cmd.Data[8:])
	c.pinLeft = c.pinMax
	p, _ := padPIN([]byte(DefaultPIN))
	c.pinDefault = c.pin == p
	return nil, nil
}

func newBlockCipher(alg byte, key []byte) (cipher.Block, error) {
	switch alg {
	case Alg3DES:
		if len(key) != 24 {
			return nil, errors.New("3DES key must be 24 bytes")
		}
		return des.NewTripleDESCipher(key)
	case AlgAES128, AlgAES192, AlgAES256:
		want := map[byte]int{AlgAES128: 16, AlgAES192: 24, AlgAES256: 32}[alg]
		if len(key) != want {
			return nil, errors.New("AES key length does not match the algorithm")
		}
		return aes.NewCipher(key)
	}
	return nil, errors.New("unsupported management key algorithm")
}

// managementAuthenticate runs the management-key GENERAL AUTHENTICATE (P2=9B)
// exchanges of SP 800-73-4 Part 2 Appendix A.1:
//
//   - mutual authentication, step 1: 7C{80 00} → card returns 7C{80 E(W)};
//     step 2: 7C{80 W, 81 C} → card checks W and returns 7C{82 E(C)};
//   - external authentication: 7C{81 00} → card returns 7C{81 C};
//     then 7C{82 E(C)} → card checks it.
//
// witness and challenge are the values from the immediately preceding command;
// any other command in between discards them.
func (c *Card) managementAuthenticate(cmd Command, witness, challenge []byte) ([]byte, error) {
	c.mgmAuthed = false
	if cmd.P1 != c.mgmAlg {
		return nil, statusError(swIncorrectP1P2)
	}
	block, err := newBlockCipher(c.mgmAlg, c.mgmKey)
	if err != nil {
		return nil, statusError(swConditionsNotMet)
	}
	bs := block.BlockSize()
	outer, err := parseTLVs(cmd.Data)
	if err != nil || len(outer) != 1 || outer[0].tag != 0x7c {
		return nil, statusError(swIncorrectData)
	}
	inner, err := parseTLVs(outer[0].value)
	if err != nil {
		return nil, statusError(swIncorrectData)
	}
	w, hasW := find(inner, 0x80)
	ch, hasC := find(inner, 0x81)
	r, hasR := find(inner, 0x82)
	switch {
	case hasW && len(w) == 0 && !hasC && !hasR:
		if err := c.touchForManagement(); err != nil {
			return nil, err
		}
		wit := make([]byte, bs)
		if _, err := rand.Read(wit); err != nil {
			return nil, statusError(swConditionsNotMet)
		}
		enc := make([]byte, bs)
		block.Encrypt(enc, wit)
		c.witness = wit
		return appendTLV(nil, 0x7c, appendTLV(nil, 0x80, enc)), nil

	case hasW && len(w) == bs && hasC && len(ch) == bs && !hasR:
		if witness == nil || subtle.ConstantTimeCompare(w, witness) != 1 {
			return nil, statusError(swSecurityNotSatisfied)
		}
		resp := make([]byte, bs)
		block.Encrypt(resp, ch)
		c.mgmAuthed = true
		return appendTLV(nil, 0x7c, appendTLV(nil, 0x82, resp)), nil

	case hasC && len(ch) == 0 && !hasW && !hasR:
		if err := c.touchForManagement(); err != nil {
			return nil, err
		}
		chal := make([]byte, bs)
		if _, err := rand.Read(chal); err != nil {
			return nil, statusError(swConditionsNotMet)
		}
		c.challenge = chal
		return appendTLV(nil, 0x7c, appendTLV(nil, 0x81, chal)), nil

	case hasR && len(r) == bs && !hasW && !hasC:
		if challenge == nil {
			return nil, statusError(swSecurityNotSatisfied)
		}
		want := make([]byte, bs)
		block.Encrypt(want, challenge)
		if subtle.ConstantTimeCompare(r, want) != 1 {
			return nil, statusError(swSecurityNotSatisfied)
		}
		c.mgmAuthed = true
		return nil, nil
	}
	return nil, statusError(swIncorrectData)
}

func (c *Card) touchForManagement() error {
	if !c.mgmTouch {
		return nil
	}
	return c.requestTouch(SlotManagement)
}

// requestTouch stands in for the user touching the device.
func (c *Card) requestTouch(slot byte) error {
	c.touches++
	if c.touch != nil {
		if err := c.touch(slot); err != nil {
			// A YubiKey whose touch times out answers "security status not satisfied".
			return statusError(swSecurityNotSatisfied)
		}
	}
	return nil
}

// setManagementKey is the Yubico SET MANAGEMENT KEY extension (INS FF):
// data = algorithm, 9B, length, key; P2=FE additionally requires touch to use it.
func (c *Card) setManagementKey(cmd Command) ([]byte, error) {
	if !c.mgmAuthed {
		return nil, statusError(swSecurityNotSatisfied)
	}
	if cmd.P1 != 0xff || (cmd.P2 != 0xff && cmd.P2 != 0xfe) {
		return nil, statusError(swIncorrectP1P2)
	}
	d := cmd.Data
	if len(d) < 3 || d[1] != SlotManagement || int(d[2]) != len(d)-3 {
		return nil, statusError(swIncorrectData)
	}
	alg, key := d[0], d[3:]
	if alg != Alg3DES && c.version[0] < 5 || alg != Alg3DES && c.version[0] == 5 && c.version[1] < 4 {
		return nil, statusError(swIncorrectData) // AES management keys arrived in 5.4
	}
	if _, err := newBlockCipher(alg, key); err != nil {
		return nil, statusError(swIncorrectData)
	}
	c.mgmAlg, c.mgmKey = alg, append([]byte(nil), key...)
	c.mgmTouch = cmd.P2 == 0xfe
	c.mgmDefault = alg == Alg3DES && string(key) == string(DefaultManagementKey)
	return nil, nil
}

// setRetries is the Yubico SET PIN RETRIES extension (INS FA, P1 = PIN tries,
// P2 = PUK tries). It needs both the management key and the PIN, and it resets
// PIN and PUK to their defaults, as on a YubiKey.
func (c *Card) setRetries(cmd Command) ([]byte, error) {
	if !c.mgmAuthed || !c.pinVerified {
		return nil, statusError(swSecurityNotSatisfied)
	}
	if cmd.P1 == 0 || cmd.P2 == 0 || cmd.P1 > 15 || cmd.P2 > 15 {
		return nil, statusError(swIncorrectP1P2)
	}
	c.pinMax, c.pukMax = int(cmd.P1), int(cmd.P2)
	c.pinLeft, c.pukLeft = c.pinMax, c.pukMax
	c.pin, _ = padPIN([]byte(DefaultPIN))
	c.puk, _ = padPIN([]byte(DefaultPUK))
	c.pinDefault, c.pukDefault = true, true
	c.pinVerified, c.pinJustNow = false, false
	return nil, nil
}

// factoryReset is the Yubico RESET extension (INS FB). It only works once both
// PIN and PUK are blocked, so that nobody who knows either can wipe the card by
// accident; it destroys every key and object.
func (c *Card) factoryReset(cmd Command) ([]byte, error) {
	if c.pinLeft != 0 || c.pukLeft != 0 {
		return nil, statusError(swConditionsNotMet)
	}
	c.keys = make(map[byte]*slotKey)
	c.objects = make(map[uint32][]byte)
	c.pinMax, c.pukMax = 3, 3
	c.pinLeft, c.pukLeft = 3, 3
	c.pin, _ = padPIN([]byte(DefaultPIN))
	c.puk, _ = padPIN([]byte(DefaultPUK))
	c.pinDefault, c.pukDefault = true, true
	c.mgmAlg, c.mgmKey, c.mgmDefault, c.mgmTouch = Alg3DES, append([]byte(nil), DefaultManagementKey...), true, false
	c.resetTransient()
	c.storeAttestationObject()
	return nil, nil
}
