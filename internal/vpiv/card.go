// Package vpiv is a virtual PIV smart card: the subset of the YubiKey 5 PIV applet
// that go-piv/piv-go and Yubico's yubico-piv-tool use, served to a real PC/SC stack
// through vsmartcard's vpcd reader driver.
//
// farsign's signer talks to YubiKeys through pcscd. A test that mocks piv-go would
// prove nothing about that path, and CI has no YubiKey to plug in. A virtual card
// behind the real pcscd does: piv-go, yubico-piv-tool and the signer open it exactly
// as they would open a YubiKey, so every byte they send goes through libpcsclite,
// pcscd and the vpcd driver before it reaches this package.
//
// The card implements: SELECT (PIV, plus the YubiKey management and OTP applets
// clients select to read the serial or to clear the PIN state), GET VERSION, GET
// SERIAL, VERIFY with a retry counter and blocking, CHANGE REFERENCE and RESET RETRY
// (PIN/PUK), management-key mutual authentication (3DES and AES-128/192/256),
// SET MANAGEMENT KEY, GENERATE ASYMMETRIC KEY PAIR (RSA-1024/2048, P-256, P-384),
// IMPORT KEY, GENERAL AUTHENTICATE (RSA raw private operation for signing and
// decryption, ECDSA, ECDH), GET/PUT DATA, GET METADATA, ATTEST, SET PIN RETRIES
// and RESET, with command chaining and GET RESPONSE. PIN and touch policies are
// stored, reported and enforced; a touch is simulated through Config.Touch.
//
// Keys live in memory only. This is test infrastructure: the private-key arithmetic
// is math/big and not constant time. Never put a real key in it.
package vpiv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// Algorithm identifiers (NIST SP 800-78-4 Table 6-2 and 6-3).
const (
	Alg3DES    byte = 0x03
	AlgRSA1024 byte = 0x06
	AlgRSA2048 byte = 0x07
	AlgAES128  byte = 0x08
	AlgAES192  byte = 0x0a
	AlgAES256  byte = 0x0c
	AlgECCP256 byte = 0x11
	AlgECCP384 byte = 0x14
)

// PIN and touch policy values (Yubico PIV extensions).
const (
	PINPolicyDefault   byte = 0x00
	PINPolicyNever     byte = 0x01
	PINPolicyOnce      byte = 0x02
	PINPolicyAlways    byte = 0x03
	TouchPolicyDefault byte = 0x00
	TouchPolicyNever   byte = 0x01
	TouchPolicyAlways  byte = 0x02
	TouchPolicyCached  byte = 0x03
)

// Key references.
const (
	SlotAuthentication     byte = 0x9a
	SlotManagement         byte = 0x9b
	SlotSignature          byte = 0x9c
	SlotKeyManagement      byte = 0x9d
	SlotCardAuthentication byte = 0x9e
	SlotAttestation        byte = 0xf9
	refPIN                 byte = 0x80
	refPUK                 byte = 0x81
)

// PIN and PUK of a factory-fresh YubiKey.
const (
	DefaultPIN = "123456"
	DefaultPUK = "12345678"
)

// Defaults of a factory-fresh YubiKey 5 (before firmware 5.7).
var (
	DefaultManagementKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	}
	// DefaultVersion is YubiKey firmware 5.4.3: new enough that piv-go reads PIN
	// policies and the management key type from GET METADATA, old enough that the
	// default management key is still 3DES (which yubico-piv-tool 2.2 requires).
	DefaultVersion = [3]byte{5, 4, 3}
)

// ATR is the answer-to-reset of a YubiKey 5 over USB (CCID). It advertises T=1,
// which piv-go insists on, and yubico-piv-tool recognises it as a YubiKey 5.
var ATR = []byte{
	0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0,
	0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
}

// Application identifiers the card answers SELECT for.
var (
	aidPIV        = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	aidPIVFull    = []byte{0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}
	aidManagement = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}
	aidOTP        = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01}
)

// Size bounds. A real YubiKey 5 stores objects up to about 3 KB; the command
// buffer must hold one such object plus its tags.
const (
	maxObjectSize  = 3072
	maxCommandData = maxObjectSize + 64
	touchCacheTime = 15 * time.Second
)

// Config sets up a new card. The zero value is a factory-fresh YubiKey 5.4.3 with
// a random serial number.
type Config struct {
	// Serial is the device serial number; 0 picks a random 8-digit one.
	Serial uint32
	// Version is the firmware version reported by GET VERSION; zero means
	// DefaultVersion.
	Version [3]byte
	// PIN, PUK default to DefaultPIN and DefaultPUK; PINRetries and PUKRetries
	// (1-15) to 3.
	PIN, PUK               string
	PINRetries, PUKRetries int
	// ManagementKey and ManagementKeyAlgorithm (Alg3DES, AlgAES128/192/256) default
	// to DefaultManagementKey with 3DES.
	ManagementKey          []byte
	ManagementKeyAlgorithm byte
	// Touch is called when a key whose touch policy requires it is used, standing
	// in for the user touching the device. Returning an error refuses the operation
	// as a real card does when the touch times out. Nil approves every touch.
	// It is called with the card locked and must not call the Card's methods.
	Touch func(slot byte) error
}

// Card is the state of one virtual YubiKey. It is safe for concurrent use: the
// vpcd connection drives it while a test inspects it.
type Card struct {
	mu sync.Mutex

	serial  uint32
	version [3]byte
	touch   func(slot byte) error

	// Persistent state, kept across resets like a card's EEPROM.
	pin, puk               [8]byte
	pinMax, pukMax         int
	pinLeft, pukLeft       int
	pinDefault, pukDefault bool
	mgmKey                 []byte
	mgmAlg                 byte
	mgmDefault             bool
	mgmTouch               bool
	keys                   map[byte]*slotKey
	objects                map[uint32][]byte
	attestKey              *ecdsa.PrivateKey
	attestCert             *x509.Certificate
	touches                int
	lastTouch              map[byte]time.Time

	// Transient state, cleared by a reset or by selecting another applet.
	selected     []byte
	pinVerified  bool
	pinJustNow   bool // PIN verified and not yet consumed by a PIN-always operation
	mgmAuthed    bool
	witness      []byte // expected decrypted witness during mutual authentication
	challenge    []byte // challenge given in single-step authentication
	chain        *Command
	pendingReply []byte
}

// New returns a factory-fresh card configured by cfg.
func New(cfg Config) (*Card, error) {
	c := &Card{
		serial:     cfg.Serial,
		version:    cfg.Version,
		touch:      cfg.Touch,
		pinMax:     cfg.PINRetries,
		pukMax:     cfg.PUKRetries,
		mgmAlg:     cfg.ManagementKeyAlgorithm,
		keys:       make(map[byte]*slotKey),
		objects:    make(map[uint32][]byte),
		lastTouch:  make(map[byte]time.Time),
		pinDefault: cfg.PIN == "" || cfg.PIN == DefaultPIN,
		pukDefault: cfg.PUK == "" || cfg.PUK == DefaultPUK,
	}
	if c.serial == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		c.serial = 10_000_000 + binary.BigEndian.Uint32(b[:])%90_000_000
	}
	if c.version == [3]byte{} {
		c.version = DefaultVersion
	}
	if c.pinMax == 0 {
		c.pinMax = 3
	}
	if c.pukMax == 0 {
		c.pukMax = 3
	}
	if c.pinMax < 1 || c.pinMax > 15 || c.pukMax < 1 || c.pukMax > 15 {
		return nil, errors.New("vpiv: PIN and PUK retries must be 1-15")
	}
	c.pinLeft, c.pukLeft = c.pinMax, c.pukMax
	pin, puk := cfg.PIN, cfg.PUK
	if pin == "" {
		pin = DefaultPIN
	}
	if puk == "" {
		puk = DefaultPUK
	}
	var ok bool
	if c.pin, ok = padPIN([]byte(pin)); !ok || len(pin) < 6 {
		return nil, errors.New("vpiv: PIN must be 6-8 bytes")
	}
	if c.puk, ok = padPIN([]byte(puk)); !ok || len(puk) < 6 {
		return nil, errors.New("vpiv: PUK must be 6-8 bytes")
	}
	if c.mgmAlg == 0 {
		c.mgmAlg = Alg3DES
	}
	c.mgmKey = cfg.ManagementKey
	if c.mgmKey == nil {
		c.mgmKey = DefaultManagementKey
	}
	c.mgmKey = append([]byte(nil), c.mgmKey...)
	if _, err := newBlockCipher(c.mgmAlg, c.mgmKey); err != nil {
		return nil, fmt.Errorf("vpiv: management key: %w", err)
	}
	c.mgmDefault = c.mgmAlg == Alg3DES && string(c.mgmKey) == string(DefaultManagementKey)
	if err := c.newAttestationKey(); err != nil {
		return nil, err
	}
	return c, nil
}

// Serial returns the card's serial number.
func (c *Card) Serial() uint32 { return c.serial }

// PINRetries returns the PIN attempts left before the PIN blocks.
func (c *Card) PINRetries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinLeft
}

// Touches returns how many times a touch was requested (and approved or refused).
func (c *Card) Touches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.touches
}

// AttestationCertificate returns the certificate of the card's attestation key
// (slot f9). It plays the role of Yubico's per-device attestation certificate and
// is self-signed, so tests can use it as the root when verifying attestations.
func (c *Card) AttestationCertificate() *x509.Certificate { return c.attestCert }

// Reset clears the transient security state the way a real card loses it when
// power is cycled (vpcd's power off, power on and reset all land here): no
// applet selected, PIN not verified, management key not authenticated. Keys,
// certificates, PIN, PUK and retry counters persist.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetTransient()
	c.selected = nil
}

func (c *Card) resetTransient() {
	c.pinVerified, c.pinJustNow, c.mgmAuthed = false, false, false
	c.witness, c.challenge, c.chain, c.pendingReply = nil, nil, nil, nil
}

// Transmit processes one command APDU and returns the response APDU (data
// followed by the two status bytes). It never returns an error: problems are
// status words, as on a card.
func (c *Card) Transmit(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, sw := c.transmit(apdu)
	return binary.BigEndian.AppendUint16(data, sw)
}

func (c *Card) transmit(apdu []byte) ([]byte, uint16) {
	cmd, err := ParseCommand(apdu)
	if err != nil {
		c.chain, c.pendingReply = nil, nil
		return nil, swWrongLength
	}
	if cmd.CLA&^0x10 != 0 {
		c.chain, c.pendingReply = nil, nil
		return nil, swCLANotSupported
	}
	if cmd.INS == 0xc0 { // GET RESPONSE
		if c.pendingReply == nil || cmd.P1 != 0 || cmd.P2 != 0 {
			return nil, swConditionsNotMet
		}
		pending := c.pendingReply
		c.pendingReply = nil
		return c.reply(pending, cmd.Ne)
	}
	c.pendingReply = nil

	// Command chaining: collect the data of every link, answer 9000 to all but
	// the last, then run the command once with the whole data field.
	if c.chain != nil {
		prev := c.chain
		if prev.INS != cmd.INS || prev.P1 != cmd.P1 || prev.P2 != cmd.P2 {
			c.chain = nil
			return nil, swLastCmdExpected
		}
		if len(prev.Data)+len(cmd.Data) > maxCommandData {
			c.chain = nil
			return nil, swWrongLength
		}
		cmd.Data = append(prev.Data, cmd.Data...)
	}
	if cmd.Chained() {
		if len(cmd.Data) > maxCommandData {
			c.chain = nil
			return nil, swWrongLength
		}
		saved := cmd
		saved.Data = append([]byte(nil), cmd.Data...)
		c.chain = &saved
		return nil, swOK
	}
	c.chain = nil

	resp, err := c.dispatch(cmd)
	if err != nil {
		var se statusError
		if errors.As(err, &se) {
			return nil, uint16(se)
		}
		return nil, swIncorrectData
	}
	return c.reply(resp, cmd.Ne)
}

// reply sends at most ne bytes and keeps the rest for GET RESPONSE, announcing it
// with 61xx (xx = bytes left, 00 meaning 256 or more) as a YubiKey does.
func (c *Card) reply(resp []byte, ne int) ([]byte, uint16) {
	ne = min(ne, 0xffff-2) // a vpcd frame carries at most 65535 bytes
	if len(resp) <= ne {
		return resp, swOK
	}
	rest := resp[ne:]
	c.pendingReply = rest
	n := len(rest)
	if n > 0xff {
		n = 0
	}
	// Cap the capacity: Transmit appends the status word, which must not
	// overwrite the start of the pending part.
	return resp[:ne:ne], swMoreData | uint16(n)
}

func (c *Card) dispatch(cmd Command) ([]byte, error) {
	if cmd.INS == 0xa4 { // SELECT
		return c.selectApplet(cmd)
	}
	switch {
	case bytesEqual(c.selected, aidPIV):
		return c.pivCommand(cmd)
	case bytesEqual(c.selected, aidManagement):
		return c.managementCommand(cmd)
	case bytesEqual(c.selected, aidOTP):
		return c.otpCommand(cmd)
	}
	return nil, statusError(swINSNotSupported)
}

func (c *Card) selectApplet(cmd Command) ([]byte, error) {
	if cmd.P1 != 0x04 {
		return nil, statusError(swIncorrectP1P2)
	}
	var aid []byte
	for _, a := range [][]byte{aidPIVFull, aidManagement, aidOTP} {
		// ISO 7816-4 allows selection by a leading part of the AID; PIV clients
		// send the 5-byte prefix of the full PIV AID.
		if len(cmd.Data) >= 5 && bytesHasPrefix(a, cmd.Data) {
			aid = a
			break
		}
	}
	if aid == nil {
		return nil, statusError(swFileNotFound)
	}
	if bytesEqual(aid, aidPIVFull) {
		aid = aidPIV
	}
	// Selecting another applet deselects PIV and clears its security state;
	// re-selecting the current applet keeps it, as on a YubiKey (yubico-piv-tool
	// selects the management applet precisely to "unverify" the PIN).
	if !bytesEqual(aid, c.selected) {
		c.resetTransient()
	}
	c.selected = aid
	switch {
	case bytesEqual(aid, aidPIV):
		// Application property template: AID and coexistent tag allocation authority.
		var apt []byte
		apt = appendTLV(apt, 0x4f, []byte{0x00, 0x00, 0x10, 0x00, 0x01, 0x00})
		apt = appendTLV(apt, 0x79, appendTLV(nil, 0x4f, aidPIV))
		return appendTLV(nil, 0x61, apt), nil
	case bytesEqual(aid, aidManagement):
		return []byte(fmt.Sprintf("Virtual mgr - FW version %d.%d.%d", c.version[0], c.version[1], c.version[2])), nil
	}
	return []byte{c.version[0], c.version[1], c.version[2]}, nil
}

// managementCommand answers READ CONFIG (0x1d) of the YubiKey management applet,
// which piv-go uses to read the form factor.
func (c *Card) managementCommand(cmd Command) ([]byte, error) {
	if cmd.INS != 0x1d {
		return nil, statusError(swINSNotSupported)
	}
	var info []byte
	info = appendTLV(info, 0x02, binary.BigEndian.AppendUint32(nil, c.serial))
	info = appendTLV(info, 0x04, []byte{0x01}) // USB-A keychain
	info = appendTLV(info, 0x05, c.version[:])
	return append([]byte{byte(len(info))}, info...), nil
}

// otpCommand answers the serial-number request of the OTP applet, which clients
// use on YubiKeys older than 5.
func (c *Card) otpCommand(cmd Command) ([]byte, error) {
	if cmd.INS == 0x01 && cmd.P1 == 0x10 {
		return binary.BigEndian.AppendUint32(nil, c.serial), nil
	}
	return nil, statusError(swINSNotSupported)
}

func (c *Card) pivCommand(cmd Command) ([]byte, error) {
	// A management-key challenge is only good for the very next command.
	witness, challenge := c.witness, c.challenge
	c.witness, c.challenge = nil, nil
	switch cmd.INS {
	case 0x20:
		return c.verify(cmd)
	case 0x24:
		return c.changeReference(cmd)
	case 0x2c:
		return c.resetRetry(cmd)
	case 0x47:
		return c.generate(cmd)
	case 0x87:
		if cmd.P2 == SlotManagement {
			return c.managementAuthenticate(cmd, witness, challenge)
		}
		return c.generalAuthenticate(cmd)
	case 0xcb:
		return c.getData(cmd)
	case 0xdb:
		return c.putData(cmd)
	case 0xf7:
		return c.metadata(cmd)
	case 0xf8:
		return binary.BigEndian.AppendUint32(nil, c.serial), nil
	case 0xf9:
		return c.attest(cmd)
	case 0xfa:
		return c.setRetries(cmd)
	case 0xfb:
		return c.factoryReset(cmd)
	case 0xfd:
		return c.version[:], nil
	case 0xfe:
		return c.importKey(cmd)
	case 0xff:
		return c.setManagementKey(cmd)
	}
	return nil, statusError(swINSNotSupported)
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func bytesHasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

// Big-endian fixed-width encoding of a non-negative integer.
func fixedBytes(n *big.Int, size int) []byte {
	return n.FillBytes(make([]byte, size))
}

// resolvePolicies turns "default" into the YubiKey's per-slot defaults: the
// signature slot asks for the PIN before every use, the card-authentication slot
// never, the others once per session; no slot requires touch by default.
func resolvePolicies(slot, pin, touch byte) (byte, byte, error) {
	if pin == PINPolicyDefault {
		switch slot {
		case SlotSignature:
			pin = PINPolicyAlways
		case SlotCardAuthentication:
			pin = PINPolicyNever
		default:
			pin = PINPolicyOnce
		}
	}
	if touch == TouchPolicyDefault {
		touch = TouchPolicyNever
	}
	if pin > PINPolicyAlways || touch > TouchPolicyCached {
		return 0, 0, statusError(swIncorrectData)
	}
	return pin, touch, nil
}

// validKeySlot reports whether slot may hold an asymmetric key: the four PIV slots
// and the twenty retired key-management slots 82-95.
func validKeySlot(slot byte) bool {
	switch slot {
	case SlotAuthentication, SlotSignature, SlotKeyManagement, SlotCardAuthentication:
		return true
	}
	return slot >= 0x82 && slot <= 0x95
}

// newECKey and newRSAKey generate a key for a PIV algorithm identifier.
func newECKey(alg byte) (*ecdsa.PrivateKey, error) {
	switch alg {
	case AlgECCP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgECCP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, statusError(swIncorrectData)
}

func newRSAKey(alg byte) (*rsa.PrivateKey, error) {
	switch alg {
	case AlgRSA1024:
		return rsa.GenerateKey(rand.Reader, 1024)
	case AlgRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, statusError(swIncorrectData)
}
