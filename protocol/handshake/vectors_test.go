package handshake

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/farsign/farsign/protocol/channel"
	"github.com/farsign/farsign/protocol/sjs"
)

const (
	ping = `{"type":"ping","payload":null}`
	pong = `{"type":"pong","payload":null}`
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seq(from, to byte) []byte {
	var b []byte
	for c := int(from); c <= int(to); c++ {
		b = append(b, byte(c))
	}
	return b
}

// fixedSPAKE stands in for a spake2.State with the spec's fixed ephemeral scalar:
// the SPAKE2 arithmetic behind these values is checked against the same vectors in
// package spake2 (TestVectorA2SharedSecret0SPAKE2); here they feed the layers above.
type fixedSPAKE struct {
	t          testing.TB
	msg, key   []byte
	expectPeer []byte
}

func (f *fixedSPAKE) Message() []byte { return bytes.Clone(f.msg) }
func (f *fixedSPAKE) Finish(peer []byte) ([]byte, error) {
	if !bytes.Equal(peer, f.expectPeer) {
		return nil, errors.New("unexpected peer message")
	}
	return bytes.Clone(f.key), nil
}

// sealB64 seals msg and returns the std base64 the relay would carry.
func sealB64(t testing.TB, ch *channel.Channel, msg string) string {
	t.Helper()
	ct, err := ch.Seal([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func openB64(t testing.TB, ch *channel.Channel, b64, want string) {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := ch.Open(ct)
	if err != nil || string(pt) != want {
		t.Fatalf("Open(%s) = %q, %v; want %q", b64, pt, err, want)
	}
}

func checkHex(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s =\n  %x\nwant\n  %s", what, got, want)
	}
}

// Appendix A.2, sharedsecret0.
func TestVectorA2SharedSecret0(t *testing.T) {
	const (
		sessionID = "0b6a4a3c-5d1e-4f2a-9b3c-7d8e9f0a1b2c"
		idAHex    = "413a30623661346133632d356431652d346632612d396233632d3764386539663061316232633a000102030405060708090a0b0c0d0e0f"
		aMsg      = "41c90b892258994d12c051f689d5ba7ec375b1805aa2d27ffaae66616e90dc135b"
		bMsg      = "42de384ab3d62cab8379b73c309eb919c3deaa9a79837ce8c5df703cc988bc9c9c"
		joinCtx   = "Qt44SrPWLKuDebc8MJ65GcPeqpp5g3zoxd9wPMmIvJyc"
		spakeKey  = "e1ceb9a4573452fab5bad63b7ac7234724cda24b48e88add2b18098fcf9b30db"
		sjsHex    = "826d7368617265647365637265743083782430623661346133632d356431652d346632612d396233632d37643865396630613162326350000102030405060708090a0b0c0d0e0f582141c90b892258994d12c051f689d5ba7ec375b1805aa2d27ffaae66616e90dc135bffff"
		sjsLine   = "gm1zaGFyZWRzZWNyZXQwg3gkMGI2YTRhM2MtNWQxZS00ZjJhLTliM2MtN2Q4ZTlmMGExYjJjUAABAgMEBQYHCAkKCwwNDg9YIUHJC4kiWJlNEsBR9onVun7DdbGAWqLSf_quZmFukNwTW___"
		sjsPEM    = "-----BEGIN SESSION JOIN STRING-----\r\n" +
			"gm1zaGFyZWRzZWNyZXQwg3gkMGI2YTRhM2MtNWQxZS00ZjJhLTliM2MtN2Q4ZTlm\r\n" +
			"MGExYjJjUAABAgMEBQYHCAkKCwwNDg9YIUHJC4kiWJlNEsBR9onVun7DdbGAWqLS\r\n" +
			"f/quZmFukNwTW///\r\n" +
			"-----END SESSION JOIN STRING-----\r\n"
		prk   = "9b162669feb7c7f06936adf8b3f58af12c10823662ea4e19bafae23fa433a04a"
		keyA  = "b219e14d2b114a8f652ad03960d780054e8fc87875d10e4b7f92f1ee570ee4fd"
		keyB  = "36e764392db13cf5a6b9dad73b8d1523399e61c2507f07cda40ce61a2816c401"
		pingA = "lki6TB6oDpiAL9XCEA6BY9UdhxTnpBNaMpNB65liWvReQgACDdzixAoZ8ZPZgQ=="
		pingB = "MAT4GDxp9EmDMmQj/DQ7FPCX8VHe3co5YU6x2P1LkdUHJaaa4YqW+DCKJnQn8w=="
		pongA = "Ddt82rGgm2+iiyMpgmC8OUdpFkg2gfwMuTQYJSUlKc+W95G4PzeNC/i1JWHDIg=="
	)
	extra := seq(0x00, 0x0f)

	checkHex(t, "idA", []byte(info('A', sessionID, extra)), idAHex)
	checkHex(t, "idB", []byte(info('B', sessionID, extra)), "42"+idAHex[2:])

	gotPRK, gotA, gotB, err := deriveKeys(unhex(t, spakeKey), sessionID, extra)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "PRK", gotPRK, prk)
	checkHex(t, "KeyA", gotA, keyA)
	checkHex(t, "KeyB", gotB, keyB)

	// Initiator: join string in all three forms, then the channel.
	init, err := newSharedSecret0(sessionID, extra, &fixedSPAKE{t: t, msg: unhex(t, aMsg), key: unhex(t, spakeKey), expectPeer: unhex(t, bMsg)})
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "SJS", init.JoinString(), sjsHex)
	if len(init.JoinString()) != 108 {
		t.Errorf("SJS is %d bytes, want 108", len(init.JoinString()))
	}
	if init.Line() != sjsLine {
		t.Errorf("line = %s\nwant   %s", init.Line(), sjsLine)
	}
	if init.PEM() != sjsPEM {
		t.Errorf("PEM = %q\nwant  %q", init.PEM(), sjsPEM)
	}
	if init.SessionID() != sessionID || init.Scheme() != sjs.SchemeSharedSecret0 {
		t.Errorf("session %q scheme %q", init.SessionID(), init.Scheme())
	}
	chA, err := init.Finish(joinCtx)
	if err != nil {
		t.Fatal(err)
	}

	// Signer: from the printed line (and the PEM, which must decode identically).
	for _, text := range []string{sjsLine, sjsPEM} {
		js, err := sjs.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		ss := js.(*sjs.SharedSecret0)
		j, err := joinSharedSecret0(ss, &fixedSPAKE{t: t, msg: unhex(t, bMsg), key: unhex(t, spakeKey), expectPeer: unhex(t, aMsg)})
		if err != nil {
			t.Fatal(err)
		}
		if j.JoinContext() != joinCtx || j.SessionID() != sessionID || j.ServerURL() != "" {
			t.Errorf("joiner: context %q session %q url %q", j.JoinContext(), j.SessionID(), j.ServerURL())
		}
		chB, err := j.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if text == sjsLine {
			if got := sealB64(t, chA, ping); got != pingA {
				t.Errorf("A ping = %s, want %s", got, pingA)
			}
		}
		if got := sealB64(t, chB, ping); got != pingB {
			t.Errorf("B ping = %s, want %s", got, pingB)
		}
		openB64(t, chB, pingA, ping)
		if text == sjsLine {
			openB64(t, chA, pingB, ping)
			if got := sealB64(t, chA, pong); got != pongA {
				t.Errorf("A pong = %s, want %s", got, pongA)
			}
		}
	}
}

// Appendix A.2, publickey0. OAEP is randomized, so the RSA layer is checked by
// decrypting what we produced; everything else is compared byte for byte.
func TestVectorA2PublicKey0(t *testing.T) {
	const (
		sessionID  = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
		serverURL  = "wss://ws.codesign.gregoryszorc.com/"
		aPub       = "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"
		bPub       = "5869aff450549732cbaaed5e5df9b30a6da31cb0e5742bad5ad4a1a768f1a67b"
		joinCtx    = "WGmv9FBUlzLLqu1eXfmzCm2jHLDldCutWtShp2jxpns="
		inner      = "8478237773733a2f2f77732e636f64657369676e2e677265676f7279737a6f72632e636f6d2f782433663235303465302d346638392d343164332d396130632d303330356538326333333031982018a018a118a218a318a418a518a618a718a818a918aa18ab18ac18ad18ae18af18b018b118b218b318b418b518b618b718b818b918ba18bb18bc18bd18be18bf98200718a3187c18bc141820189318c818b7185518dc181b1018e8186c18b418261837184a18d1186a18a8185318ed0b18df18c018b218b8186d181c187c"
		sealed     = "e240f42945261086680cf682e133b32ed8efd3ea4ccebf312ca2224186aabebc0c037dad59f172a983e9dd5e9150f07838abc4643e22ed7f1201901f0a3a3b5e4ccdec16c88ebb19a6ee64cc213fb23a8c83b3341d6c85abf72364a8318d6cd12cbf353f582ffa0945c7e8b8de06dff10428d580af80e5aeb1b59836a88a87ad91b6287edd5a16a28125d3223f30a97c03a498154fb663767d104a1e58cb4480e99e161b87ba7b1602517abc1dd2964d48a731af763ec93d1767d25312c66bcd52887a156d834edc8c223dc8ac620eb035e9ba743bb6995f7de87730"
		shared     = "a84dc7c3c8f058b1b2dc4cd1e9b5dc0a7987f88b6a9564cde3391fc421159e77"
		prk        = "bb2c1125af44e0cb04e706021e2a958df43506ddd204c8ff28da2745db360e6d"
		keyA       = "fb1f38b0c5904b554155157b0eb19420432fca92e9fc0a986b0593b8f31a93a4"
		keyB       = "c755a561246c1d5b591b0ee7d1c67f9a0f2d67ba44be8886a671b6fd93f85501"
		pingA      = "3sIbyIjOWcvjZEx+TJCHEvhkZztXDmzPFoM2YI/A3JL30fjCv4rjESi+tW1vnQ=="
		pingB      = "n4/T1TQPjCWJG7wfjXwJrPzmBi0r84J7pHX7MmZIagu7pi0h9BDBIjTG/8a1vA=="
		noURLStart = "84f6782433663235"
	)
	challenge, aesKey := seq(0xa0, 0xbf), seq(0x00, 0x0f)
	aPriv, err := ecdh.X25519().NewPrivateKey(seq(0x01, 0x20))
	if err != nil {
		t.Fatal(err)
	}
	bPriv, err := ecdh.X25519().NewPrivateKey(seq(0x21, 0x40))
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "A pub", aPriv.PublicKey().Bytes(), aPub)
	checkHex(t, "B pub", bPriv.PublicKey().Bytes(), bPub)
	s, _ := aPriv.ECDH(bPriv.PublicKey())
	checkHex(t, "X25519 shared", s, shared)

	gotPRK, gotA, gotB, err := deriveKeys(unhex(t, shared), sessionID, challenge)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "PRK", gotPRK, prk)
	checkHex(t, "KeyA", gotA, keyA)
	checkHex(t, "KeyB", gotB, keyB)

	noURL, err := sjs.MarshalPublicKey0Message(&sjs.PublicKey0Message{SessionID: sessionID, Challenge: challenge, AgreementPublic: unhex(t, aPub)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hex.EncodeToString(noURL), noURLStart) {
		t.Errorf("inner plaintext without URL starts %x, want %s", noURL[:8], noURLStart)
	}

	key := testKey(t, 0)
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	init, err := newPublicKey0(spki, serverURL, sessionID, challenge, aesKey, aPriv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(init.Line(), "gmpwdWJsaWNrZXkwg") || !bytes.HasSuffix(init.JoinString(), []byte{0xff, 0xff}) {
		t.Errorf("join string framing: %s… / %x", init.Line()[:20], init.JoinString()[len(init.JoinString())-2:])
	}
	js, err := sjs.Unmarshal(init.JoinString())
	if err != nil {
		t.Fatal(err)
	}
	pk := js.(*sjs.PublicKey0)
	checkHex(t, "message_ciphertext", pk.EncryptedMessage, sealed)
	if !bytes.Equal(pk.SignerPublicKey, spki) {
		t.Error("b_public is not the signer SPKI")
	}
	if len(pk.EncryptedKey) != 256 {
		t.Errorf("RSA-2048 ciphertext is %d bytes", len(pk.EncryptedKey))
	}
	// RSA layer by round trip: the AES key comes back, and the plaintext is the vector.
	gotKey, err := key.Decrypt(nil, pk.EncryptedKey, oaepOptions)
	if err != nil || !bytes.Equal(gotKey, aesKey) {
		t.Fatalf("RSA-OAEP round trip: %x, %v", gotKey, err)
	}
	gcm, _ := newGCM(aesKey)
	pt, err := gcm.Open(nil, gcmNonce, pk.EncryptedMessage, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "inner plaintext", pt, inner)

	// Signer side, through both printed forms.
	for _, text := range []string{init.Line(), init.PEM()} {
		js, err := sjs.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		j, err := joinPublicKey0(js.(*sjs.PublicKey0), key, bPriv)
		if err != nil {
			t.Fatal(err)
		}
		if j.JoinContext() != joinCtx || j.SessionID() != sessionID || j.ServerURL() != serverURL {
			t.Errorf("joiner: context %q session %q url %q", j.JoinContext(), j.SessionID(), j.ServerURL())
		}
		chB, _ := j.Finish()
		if got := sealB64(t, chB, ping); got != pingB {
			t.Errorf("B ping = %s, want %s", got, pingB)
		}
		openB64(t, chB, pingA, ping)
	}
	chA, err := init.Finish(joinCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got := sealB64(t, chA, ping); got != pingA {
		t.Errorf("A ping = %s, want %s", got, pingA)
	}
	openB64(t, chA, pingB, ping)
}

// oaepCard is a crypto.Decrypter that, like a PIV card, holds an RSA key it never
// exposes, and checks it is asked for exactly RSA-OAEP-SHA256/MGF1-SHA256.
type oaepCard struct {
	t     testing.TB
	key   *rsa.PrivateKey
	calls int
}

func (c *oaepCard) Public() crypto.PublicKey { return c.key.Public() }
func (c *oaepCard) Decrypt(_ io.Reader, ct []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	c.calls++
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || o.Hash.String() != "SHA-256" || o.MGFHash.String() != "SHA-256" || len(o.Label) != 0 {
		c.t.Errorf("Decrypt called with %#v, want OAEP SHA-256/MGF1-SHA-256, no label", opts)
	}
	return rsa.DecryptOAEP(o.Hash.New(), nil, c.key, ct, nil)
}
