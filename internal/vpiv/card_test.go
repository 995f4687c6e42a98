package vpiv

import (
	"bytes"
	"crypto"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"testing"
)

// client is a minimal PIV client speaking to the card in-process: command
// chaining for long data and GET RESPONSE for long answers, like piv-go.
type client struct {
	t    *testing.T
	card *Card
}

func newClient(t *testing.T, cfg Config) *client {
	t.Helper()
	card, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t, card}
	c.must(0xa4, 0x04, 0x00, aidPIV)
	return c
}

// send runs one command and returns data and status word.
func (c *client) send(ins, p1, p2 byte, data []byte) ([]byte, uint16) {
	for len(data) > 0xff {
		r := c.card.Transmit(append([]byte{0x10, ins, p1, p2, 0xff}, data[:0xff]...))
		if sw := binary.BigEndian.Uint16(r[len(r)-2:]); sw != swOK {
			return nil, sw
		}
		data = data[0xff:]
	}
	apdu := []byte{0x00, ins, p1, p2}
	if len(data) > 0 {
		apdu = append(append(apdu, byte(len(data))), data...)
	}
	r := c.card.Transmit(apdu)
	resp, sw := r[:len(r)-2], binary.BigEndian.Uint16(r[len(r)-2:])
	for sw>>8 == 0x61 {
		r = c.card.Transmit([]byte{0x00, 0xc0, 0x00, 0x00, 0x00})
		resp = append(resp, r[:len(r)-2]...)
		sw = binary.BigEndian.Uint16(r[len(r)-2:])
	}
	return resp, sw
}

func (c *client) must(ins, p1, p2 byte, data []byte) []byte {
	c.t.Helper()
	resp, sw := c.send(ins, p1, p2, data)
	if sw != swOK {
		c.t.Fatalf("INS %02x P1 %02x P2 %02x: status %04x", ins, p1, p2, sw)
	}
	return resp
}

func (c *client) expectSW(want uint16, ins, p1, p2 byte, data []byte) []byte {
	c.t.Helper()
	resp, sw := c.send(ins, p1, p2, data)
	if sw != want {
		c.t.Fatalf("INS %02x P1 %02x P2 %02x: status %04x, want %04x", ins, p1, p2, sw, want)
	}
	return resp
}

func pinBytes(p string) []byte {
	b, _ := padPIN([]byte(p))
	return b[:]
}

func (c *client) verifyPIN(pin string) uint16 {
	_, sw := c.send(0x20, 0x00, 0x80, pinBytes(pin))
	return sw
}

// authenticate runs 3DES mutual authentication with key.
func (c *client) authenticate(key []byte) uint16 {
	c.t.Helper()
	block, err := des.NewTripleDESCipher(key)
	if err != nil {
		c.t.Fatal(err)
	}
	resp := c.must(0x87, Alg3DES, SlotManagement, []byte{0x7c, 0x02, 0x80, 0x00})
	if len(resp) != 12 || !bytes.Equal(resp[:4], []byte{0x7c, 0x0a, 0x80, 0x08}) {
		c.t.Fatalf("witness response %x", resp)
	}
	w := make([]byte, 8)
	block.Decrypt(w, resp[4:])
	chal := []byte("8 bytes!")
	data := append(append([]byte{0x7c, 0x14, 0x80, 0x08}, w...), append([]byte{0x81, 0x08}, chal...)...)
	resp, sw := c.send(0x87, Alg3DES, SlotManagement, data)
	if sw != swOK {
		return sw
	}
	want := make([]byte, 8)
	block.Encrypt(want, chal)
	if !bytes.Equal(resp, append([]byte{0x7c, 0x0a, 0x82, 0x08}, want...)) {
		c.t.Fatalf("card's response to our challenge is wrong: %x", resp)
	}
	return sw
}

func generateTemplate(alg, pin, touch byte) []byte {
	return []byte{0xac, 0x09, 0x80, 0x01, alg, 0xaa, 0x01, pin, 0xab, 0x01, touch}
}

func signTemplate(tag byte, in []byte) []byte {
	return appendTLV(nil, 0x7c, appendTLV(appendTLV(nil, 0x82, nil), uint32(tag), in))
}

func unwrapResult(t *testing.T, resp []byte) []byte {
	t.Helper()
	outer, err := parseTLVs(resp)
	if err != nil || len(outer) != 1 || outer[0].tag != 0x7c {
		t.Fatalf("bad GENERAL AUTHENTICATE response %x", resp)
	}
	v, ok := find(mustTLVs(t, outer[0].value), 0x82)
	if !ok {
		t.Fatalf("no 82 in %x", resp)
	}
	return v
}

func mustTLVs(t *testing.T, b []byte) []tlv {
	t.Helper()
	ts, err := parseTLVs(b)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func pkcs1Block(t *testing.T, digest []byte, size int) []byte {
	t.Helper()
	prefix, _ := hex.DecodeString("3031300d060960864801650304020105000420")
	d := append(prefix, digest...)
	block := []byte{0x00, 0x01}
	block = append(block, bytes.Repeat([]byte{0xff}, size-3-len(d))...)
	block = append(block, 0x00)
	return append(block, d...)
}

func TestSelectVersionSerial(t *testing.T) {
	card, err := New(Config{Serial: 4242, Version: [3]byte{5, 7, 1}})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t, card}
	c.expectSW(swINSNotSupported, 0xfd, 0, 0, nil) // nothing selected yet
	c.expectSW(swFileNotFound, 0xa4, 0x04, 0x00, []byte{0xa0, 0x00, 0x00, 0x00, 0x01})
	c.must(0xa4, 0x04, 0x00, aidPIVFull)
	if v := c.must(0xfd, 0, 0, nil); !bytes.Equal(v, []byte{5, 7, 1}) {
		t.Errorf("version %x", v)
	}
	if s := c.must(0xf8, 0, 0, nil); binary.BigEndian.Uint32(s) != 4242 {
		t.Errorf("serial %x", s)
	}
	// The OTP applet reports the serial for pre-5 clients.
	c.must(0xa4, 0x04, 0x00, aidOTP)
	if s := c.must(0x01, 0x10, 0, nil); binary.BigEndian.Uint32(s) != 4242 {
		t.Errorf("OTP serial %x", s)
	}
	c.expectSW(swINSNotSupported, 0xfd, 0, 0, nil) // PIV commands need the PIV applet
}

func TestSelectRejectsUnknownCLA(t *testing.T) {
	c := newClient(t, Config{})
	if r := c.card.Transmit([]byte{0x80, 0xfd, 0, 0}); !bytes.Equal(r, []byte{0x6e, 0x00}) {
		t.Errorf("CLA 80: %x", r)
	}
	if r := c.card.Transmit([]byte{0x00, 0xfd}); !bytes.Equal(r, []byte{0x67, 0x00}) {
		t.Errorf("truncated APDU: %x", r)
	}
}

func TestPINRetriesBlockAndUnblock(t *testing.T) {
	c := newClient(t, Config{})
	c.expectSW(0x63c3, 0x20, 0x00, 0x80, nil)
	for want := 2; want >= 0; want-- {
		if sw := c.verifyPIN("000000"); sw != 0x63c0|uint16(want) {
			t.Fatalf("wrong PIN: status %04x, want 63c%d", sw, want)
		}
	}
	if sw := c.verifyPIN(DefaultPIN); sw != swAuthBlocked {
		t.Fatalf("right PIN on blocked card: %04x", sw)
	}
	c.expectSW(swAuthBlocked, 0x20, 0x00, 0x80, nil)
	// A wrong PUK counts against the PUK.
	c.expectSW(0x63c2, 0x2c, 0x00, 0x80, append(pinBytes("00000000"), pinBytes("654321")...))
	// A too-short new PIN is refused without touching the counters.
	c.expectSW(swIncorrectData, 0x2c, 0x00, 0x80, append(pinBytes(DefaultPUK), pinBytes("123")...))
	c.must(0x2c, 0x00, 0x80, append(pinBytes(DefaultPUK), pinBytes("654321")...))
	if c.card.PINRetries() != 3 {
		t.Errorf("retries after unblock: %d", c.card.PINRetries())
	}
	if sw := c.verifyPIN("654321"); sw != swOK {
		t.Fatalf("new PIN: %04x", sw)
	}
	c.must(0x20, 0x00, 0x80, nil) // verified: status query answers 9000
	// Selecting another applet clears the PIN state; re-selecting PIV keeps it.
	c.must(0xa4, 0x04, 0x00, aidPIV)
	c.must(0x20, 0x00, 0x80, nil)
	c.must(0xa4, 0x04, 0x00, aidManagement)
	c.must(0xa4, 0x04, 0x00, aidPIV)
	c.expectSW(0x63c3, 0x20, 0x00, 0x80, nil)
	// VERIFY P1=FF also resets it.
	c.verifyPIN("654321")
	c.must(0x20, 0xff, 0x80, nil)
	c.expectSW(0x63c3, 0x20, 0x00, 0x80, nil)
}

func TestChangePIN(t *testing.T) {
	c := newClient(t, Config{})
	c.expectSW(0x63c2, 0x24, 0x00, 0x80, append(pinBytes("999999"), pinBytes("11223344")...))
	c.must(0x24, 0x00, 0x80, append(pinBytes(DefaultPIN), pinBytes("11223344")...))
	if sw := c.verifyPIN(DefaultPIN); sw != 0x63c2 {
		t.Errorf("old PIN after change: %04x", sw)
	}
	if sw := c.verifyPIN("11223344"); sw != swOK {
		t.Errorf("new PIN: %04x", sw)
	}
	md := mustTLVs(t, c.must(0xf7, 0x00, refPIN, nil))
	if v, _ := find(md, 0x05); !bytes.Equal(v, []byte{0}) {
		t.Errorf("PIN still reported as default: %x", v)
	}
}

func TestManagementKeyAuthentication(t *testing.T) {
	c := newClient(t, Config{})
	// Everything that changes keys needs the management key.
	c.expectSW(swSecurityNotSatisfied, 0x47, 0x00, SlotSignature, generateTemplate(AlgECCP256, 0, 0))
	wrong := bytes.Repeat([]byte{0x42}, 24)
	if sw := c.authenticate(wrong); sw != swSecurityNotSatisfied {
		t.Fatalf("wrong management key accepted: %04x", sw)
	}
	c.expectSW(swSecurityNotSatisfied, 0x47, 0x00, SlotSignature, generateTemplate(AlgECCP256, 0, 0))
	// A response without a preceding witness request is refused.
	c.expectSW(swSecurityNotSatisfied, 0x87, Alg3DES, SlotManagement,
		append(append([]byte{0x7c, 0x14, 0x80, 0x08}, make([]byte, 8)...), append([]byte{0x81, 0x08}, make([]byte, 8)...)...))
	if sw := c.authenticate(DefaultManagementKey); sw != swOK {
		t.Fatalf("default management key: %04x", sw)
	}
	c.must(0x47, 0x00, SlotSignature, generateTemplate(AlgECCP256, 0, 0))
}

func TestAESManagementKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 16)
	c := newClient(t, Config{ManagementKey: key, ManagementKeyAlgorithm: AlgAES128})
	md := mustTLVs(t, c.must(0xf7, 0x00, SlotManagement, nil))
	if v, _ := find(md, 0x01); !bytes.Equal(v, []byte{AlgAES128}) {
		t.Fatalf("metadata algorithm %x", v)
	}
	// 3DES is refused outright for an AES key.
	c.expectSW(swIncorrectP1P2, 0x87, Alg3DES, SlotManagement, []byte{0x7c, 0x02, 0x80, 0x00})
	// External authentication: challenge, then its encryption.
	resp := c.must(0x87, AlgAES128, SlotManagement, []byte{0x7c, 0x02, 0x81, 0x00})
	chal := resp[4:]
	block, _ := newBlockCipher(AlgAES128, key)
	enc := make([]byte, 16)
	block.Encrypt(enc, chal)
	c.must(0x87, AlgAES128, SlotManagement, append([]byte{0x7c, 0x12, 0x82, 0x10}, enc...))
	// Set a new 3DES key and check the old one no longer works.
	newKey := bytes.Repeat([]byte{9}, 24)
	c.must(0xff, 0xff, 0xff, append([]byte{Alg3DES, SlotManagement, 24}, newKey...))
	c.must(0xa4, 0x04, 0x00, aidManagement)
	c.must(0xa4, 0x04, 0x00, aidPIV)
	if sw := c.authenticate(newKey); sw != swOK {
		t.Fatalf("new management key: %04x", sw)
	}
}

func TestRSASignAndDecryptWithPINAlways(t *testing.T) {
	c := newClient(t, Config{})
	c.authenticate(DefaultManagementKey)
	resp := c.must(0x47, 0x00, SlotSignature, generateTemplate(AlgRSA2048, 0, 0))
	top := mustTLVs(t, resp)
	if len(top) != 1 || top[0].tag != 0x7f49 {
		t.Fatalf("generate response %x", resp[:8])
	}
	inner := mustTLVs(t, top[0].value)
	n, _ := find(inner, 0x81)
	e, _ := find(inner, 0x82)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() != 2048 || pub.E != 65537 {
		t.Fatalf("public key %d bits, e=%d", pub.N.BitLen(), pub.E)
	}
	digest := sha256.Sum256([]byte("hello"))
	block := pkcs1Block(t, digest[:], 256)

	// 9c defaults to PIN-always: no PIN, no signature.
	c.expectSW(swSecurityNotSatisfied, 0x87, AlgRSA2048, SlotSignature, signTemplate(0x81, block))
	c.verifyPIN(DefaultPIN)
	sig := unwrapResult(t, c.must(0x87, AlgRSA2048, SlotSignature, signTemplate(0x81, block)))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	// The verification was used up by that signature.
	c.expectSW(swSecurityNotSatisfied, 0x87, AlgRSA2048, SlotSignature, signTemplate(0x81, block))

	// Raw decryption returns the OAEP block intact.
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("sixteen byte key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.verifyPIN(DefaultPIN)
	em := unwrapResult(t, c.must(0x87, AlgRSA2048, SlotSignature, signTemplate(0x81, ct)))
	if len(em) != 256 || em[0] != 0 {
		t.Fatalf("raw RSA output: %d bytes, first %02x", len(em), em[0])
	}
	// Wrong algorithm and oversized input are refused.
	c.verifyPIN(DefaultPIN)
	c.expectSW(swIncorrectP1P2, 0x87, AlgRSA1024, SlotSignature, signTemplate(0x81, block))
	c.verifyPIN(DefaultPIN)
	c.expectSW(swIncorrectData, 0x87, AlgRSA2048, SlotSignature, signTemplate(0x81, bytes.Repeat([]byte{0xff}, 256)))
}

func TestECDSAAndECDHWithPINOnce(t *testing.T) {
	c := newClient(t, Config{})
	c.authenticate(DefaultManagementKey)
	resp := c.must(0x47, 0x00, SlotAuthentication, generateTemplate(AlgECCP256, PINPolicyOnce, TouchPolicyNever))
	point, _ := find(mustTLVs(t, mustTLVs(t, resp)[0].value), 0x86)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	c.expectSW(swSecurityNotSatisfied, 0x87, AlgECCP256, SlotAuthentication, signTemplate(0x81, digest[:]))
	c.verifyPIN(DefaultPIN)
	for range 2 { // PIN-once: good for several operations
		sig := unwrapResult(t, c.must(0x87, AlgECCP256, SlotAuthentication, signTemplate(0x81, digest[:])))
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	}
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	shared := unwrapResult(t, c.must(0x87, AlgECCP256, SlotAuthentication, signTemplate(0x85, peer.PublicKey().Bytes())))
	cardPub, _ := pub.ECDH()
	want, _ := peer.ECDH(cardPub)
	if !bytes.Equal(shared, want) {
		t.Fatal("ECDH secrets differ")
	}
}

func TestTouchPolicy(t *testing.T) {
	refuse := false
	var touched []byte
	c := newClient(t, Config{Touch: func(slot byte) error {
		touched = append(touched, slot)
		if refuse {
			return errTestTouch
		}
		return nil
	}})
	c.authenticate(DefaultManagementKey)
	c.must(0x47, 0x00, SlotKeyManagement, generateTemplate(AlgECCP256, PINPolicyNever, TouchPolicyAlways))
	digest := sha256.Sum256(nil)
	c.must(0x87, AlgECCP256, SlotKeyManagement, signTemplate(0x81, digest[:]))
	refuse = true
	c.expectSW(swSecurityNotSatisfied, 0x87, AlgECCP256, SlotKeyManagement, signTemplate(0x81, digest[:]))
	if !bytes.Equal(touched, []byte{SlotKeyManagement, SlotKeyManagement}) || c.card.Touches() != 2 {
		t.Errorf("touches %x (%d)", touched, c.card.Touches())
	}
	md := mustTLVs(t, c.must(0xf7, 0x00, SlotKeyManagement, nil))
	if v, _ := find(md, 0x02); !bytes.Equal(v, []byte{PINPolicyNever, TouchPolicyAlways}) {
		t.Errorf("policy metadata %x", v)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTestTouch = testErr("no touch")

func TestImportKeys(t *testing.T) {
	c := newClient(t, Config{})
	c.authenticate(DefaultManagementKey)

	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rk.Precompute()
	var data []byte
	for i, v := range []*big.Int{rk.Primes[0], rk.Primes[1], rk.Precomputed.Dp, rk.Precomputed.Dq, rk.Precomputed.Qinv} {
		data = appendTLV(data, uint32(i+1), fixedBytes(v, 128))
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1 // corrupt qInv
	c.expectSW(swIncorrectData, 0xfe, AlgRSA2048, SlotAuthentication, bad)
	c.must(0xfe, AlgRSA2048, SlotAuthentication, append(data, 0xaa, 0x01, PINPolicyNever))
	digest := sha256.Sum256([]byte("imported"))
	sig := unwrapResult(t, c.must(0x87, AlgRSA2048, SlotAuthentication, signTemplate(0x81, pkcs1Block(t, digest[:], 256))))
	if err := rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatal(err)
	}
	md := mustTLVs(t, c.must(0xf7, 0x00, SlotAuthentication, nil))
	if v, _ := find(md, 0x03); !bytes.Equal(v, []byte{originImported}) {
		t.Errorf("origin %x", v)
	}
	// Imported keys cannot be attested.
	c.expectSW(swIncorrectData, 0xf9, SlotAuthentication, 0x00, nil)

	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d, _ := ek.Bytes()
	c.must(0xfe, AlgECCP256, SlotCardAuthentication, appendTLV(nil, 0x06, d))
	sig = unwrapResult(t, c.must(0x87, AlgECCP256, SlotCardAuthentication, signTemplate(0x81, digest[:])))
	if !ecdsa.VerifyASN1(&ek.PublicKey, digest[:], sig) {
		t.Fatal("imported ECDSA key signature does not verify")
	}
}

func TestDataObjectsChainingAndGetResponse(t *testing.T) {
	c := newClient(t, Config{})
	obj := []byte{0x5c, 0x03, 0x5f, 0xc1, 0x0a}
	c.expectSW(swFileNotFound, 0xcb, 0x3f, 0xff, obj)
	big := bytes.Repeat([]byte("certificate bytes "), 160) // ~2.9 KB: chained PUT, 61xx GET
	content := certificateObject(big)
	c.expectSW(swSecurityNotSatisfied, 0xdb, 0x3f, 0xff, append(append([]byte(nil), obj...), appendTLV(nil, 0x53, content)...))
	c.authenticate(DefaultManagementKey)
	c.must(0xdb, 0x3f, 0xff, append(append([]byte(nil), obj...), appendTLV(nil, 0x53, content)...))
	got := c.must(0xcb, 0x3f, 0xff, obj)
	if !bytes.Equal(got, appendTLV(nil, 0x53, content)) {
		t.Fatalf("object round trip: got %d bytes, want %d", len(got), len(content)+4)
	}
	// Oversized objects are refused; empty content deletes.
	huge := appendTLV(nil, 0x53, make([]byte, maxObjectSize+1))
	if _, sw := c.send(0xdb, 0x3f, 0xff, append(append([]byte(nil), obj...), huge...)); sw != swWrongLength && sw != swNotEnoughMemory {
		t.Errorf("oversized object: %04x", sw)
	}
	c.must(0xdb, 0x3f, 0xff, append(append([]byte(nil), obj...), 0x53, 0x00))
	c.expectSW(swFileNotFound, 0xcb, 0x3f, 0xff, obj)
	// Printed information needs the PIN.
	printed := []byte{0x5c, 0x03, 0x5f, 0xc1, 0x09}
	c.must(0xdb, 0x3f, 0xff, append(append([]byte(nil), printed...), 0x53, 0x02, 0x88, 0x00))
	c.expectSW(swSecurityNotSatisfied, 0xcb, 0x3f, 0xff, printed)
	c.verifyPIN(DefaultPIN)
	c.must(0xcb, 0x3f, 0xff, printed)
	// A chain interrupted by another instruction is refused.
	c.card.Transmit(append([]byte{0x10, 0xdb, 0x3f, 0xff, 0x02}, 0x5c, 0x03))
	if r := c.card.Transmit([]byte{0x00, 0xfd, 0x00, 0x00}); !bytes.Equal(r, []byte{0x68, 0x83}) {
		t.Errorf("interrupted chain: %x", r)
	}
	// GET RESPONSE with nothing pending.
	if r := c.card.Transmit([]byte{0x00, 0xc0, 0x00, 0x00, 0x00}); !bytes.Equal(r, []byte{0x69, 0x85}) {
		t.Errorf("GET RESPONSE without data: %x", r)
	}
}

func TestAttestation(t *testing.T) {
	c := newClient(t, Config{Serial: 777})
	c.authenticate(DefaultManagementKey)
	c.must(0x47, 0x00, SlotSignature, generateTemplate(AlgECCP256, PINPolicyOnce, TouchPolicyCached))
	der := c.must(0xf9, SlotSignature, 0x00, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(c.card.AttestationCertificate()); err != nil {
		t.Fatalf("attestation not signed by the attestation key: %v", err)
	}
	var policy []byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidPolicy) {
			policy = e.Value
		}
	}
	if !bytes.Equal(policy, []byte{PINPolicyOnce, TouchPolicyCached}) {
		t.Errorf("policy extension %x", policy)
	}
	if cert.Subject.CommonName != "YubiKey PIV Attestation 9c" {
		t.Errorf("subject %q", cert.Subject.CommonName)
	}
}

func TestFactoryResetNeedsBlockedPINAndPUK(t *testing.T) {
	c := newClient(t, Config{})
	c.authenticate(DefaultManagementKey)
	c.must(0x47, 0x00, SlotSignature, generateTemplate(AlgECCP256, 0, 0))
	c.expectSW(swConditionsNotMet, 0xfb, 0, 0, nil)
	for range 3 {
		c.verifyPIN("000000")
	}
	for range 3 {
		c.send(0x24, 0x00, 0x81, append(pinBytes("00000000"), pinBytes("00000000")...))
	}
	c.must(0xfb, 0, 0, nil)
	c.expectSW(swRefNotFound, 0xf7, 0x00, SlotSignature, nil)
	if sw := c.verifyPIN(DefaultPIN); sw != swOK {
		t.Errorf("default PIN after reset: %04x", sw)
	}
}

func TestSetPINRetries(t *testing.T) {
	c := newClient(t, Config{PIN: "87654321"})
	c.authenticate(DefaultManagementKey)
	c.expectSW(swSecurityNotSatisfied, 0xfa, 5, 4, nil)
	c.verifyPIN("87654321")
	c.must(0xfa, 5, 4, nil)
	c.expectSW(0x63c5, 0x20, 0x00, 0x80, nil)
	if sw := c.verifyPIN(DefaultPIN); sw != swOK {
		t.Errorf("PIN not reset to default: %04x", sw)
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		lc   int
		ne   int
		ext  bool
	}{
		{"case1", "00a40400", true, 0, 256, false},
		{"case2S", "00c0000010", true, 0, 16, false},
		{"case2S Le=00", "00c0000000", true, 0, 256, false},
		{"case3S", "00a4040002a000", true, 2, 256, false},
		{"case4S", "00a4040002a00020", true, 2, 32, false},
		{"case2E", "00c0000000ffff", true, 0, 65535, true},
		{"case3E", "00db3fff000002aabb", true, 2, 256, true},
		{"case4E", "00db3fff000002aabb0000", true, 2, 65536, true},
		{"short header", "00a404", false, 0, 0, false},
		{"Lc too long", "00a4040003a000", false, 0, 0, false},
		{"Lc too short", "00a4040001a00000ff", false, 0, 0, false},
		{"ext zero Lc", "00db3fff000000aa", false, 0, 0, false},
		{"ext 6 bytes", "00db3fff0000", false, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tt.in)
			cmd, err := ParseCommand(b)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if len(cmd.Data) != tt.lc || cmd.Ne != tt.ne || cmd.Extended != tt.ext {
				t.Errorf("got Lc=%d Ne=%d ext=%v", len(cmd.Data), cmd.Ne, cmd.Extended)
			}
		})
	}
}

func TestTLV(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 3000} {
		v := bytes.Repeat([]byte{0xab}, n)
		for _, tag := range []uint32{0x53, 0x7f49, 0x5fc105} {
			b := appendTLV(nil, tag, v)
			ts, err := parseTLVs(b)
			if err != nil || len(ts) != 1 || ts[0].tag != tag || !bytes.Equal(ts[0].value, v) {
				t.Fatalf("tag %x len %d: round trip failed (%v)", tag, n, err)
			}
		}
	}
	for _, bad := range []string{"53", "5305aabb", "5f", "5fc1", "53800000", "5384000000000000", "53820100"} {
		b, _ := hex.DecodeString(bad)
		if _, err := parseTLVs(b); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
