// Package spake2 implements SPAKE2 over the Ed25519 group, asymmetric (A/B) mode,
// interoperable with Brian Warner's python-spake2 and the Rust spake2 crate 0.4,
// which rcodesign's sharedsecret0 scheme uses.
//
// Two parties who know the same password each send one 33-byte message and derive
// the same 32-byte key; someone who does not know the password (including the relay
// in the middle) learns nothing that lets them test more than one password guess
// per run. There is no key confirmation step: a wrong password shows up later, when
// the first message encrypted under the derived key fails to open.
//
// Parameters (identical in both reference implementations):
//
//	group      prime-order subgroup of edwards25519, generator = Ed25519 base point
//	M, N       fixed points whose discrete logs nobody knows (hex in the source)
//	w          HKDF-SHA256(salt="", ikm=password, info="SPAKE2 pw", 48 bytes),
//	           read as a big-endian integer, reduced mod L
//	A sends    'A' ‖ X, X = x·G + w·M
//	B sends    'B' ‖ Y, Y = y·G + w·N
//	K          A: x·(Y − w·N);  B: y·(X − w·M)
//	key        SHA-256(SHA-256(pw) ‖ SHA-256(idA) ‖ SHA-256(idB) ‖ X ‖ Y ‖ K)
//
// Beyond the references, Finish rejects the identity, points outside the
// prime-order subgroup, non-canonical encodings and a reflected copy of our own
// message. Honest peers never send those, so this hardening costs no
// interoperability.
package spake2

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// Side is the role letter that prefixes each message.
type Side byte

// The two asymmetric roles. In farsign the initiator is always A, the signer B.
const (
	SideA Side = 'A'
	SideB Side = 'B'
)

// MessageSize is the length of each side's message: the side letter and a point.
const MessageSize = 33

// KeySize is the length of the derived key.
const KeySize = 32

// Errors returned by Finish. All of them mean the exchange cannot continue.
var (
	ErrWrongLength = errors.New("spake2: peer message has the wrong length")
	ErrBadSide     = errors.New("spake2: peer message is from the wrong side")
	ErrCorrupt     = errors.New("spake2: peer message is not a valid point encoding")
	ErrWeakPoint   = errors.New("spake2: peer message is the identity or outside the prime-order subgroup")
	ErrReflection  = errors.New("spake2: peer message is a copy of our own")
	ErrFinished    = errors.New("spake2: Finish already called")
)

// Compressed encodings of M and N, the constants of python-spake2's Ed25519 group
// (both checked to lie in the prime-order subgroup by the package tests).
const (
	mBytes = "15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312"
	nBytes = "f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3"
)

var (
	pointM = mustPoint(mBytes)
	pointN = mustPoint(nBytes)
	// minusOne is L−1; [L−1]P + P is the identity exactly when P has order L (or 1),
	// because L ≡ 5 (mod 8) makes [L−1] act as [4] on the small-order component.
	minusOne = edwards25519.NewScalar().Negate(scalarOne())
)

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

func mustPoint(h string) *edwards25519.Point {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		panic(err)
	}
	return p
}

// State is one side of one exchange. It holds secrets: use it once, then drop it.
type State struct {
	side     Side
	w, x     edwards25519.Scalar
	pwHash   [32]byte // SHA-256(password): the transcript needs only this
	idAHash  [32]byte
	idBHash  [32]byte
	msg      [MessageSize]byte
	finished bool
}

// Start begins an exchange as side with the shared password and both identities
// (the same idA and idB on both sides, in that order). It returns the state and the
// message to send to the peer.
func Start(side Side, password, idA, idB []byte) (*State, []byte, error) {
	var seed [64]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, nil, err
	}
	x, err := edwards25519.NewScalar().SetUniformBytes(seed[:])
	clear(seed[:])
	if err != nil {
		return nil, nil, err
	}
	s, err := start(side, password, idA, idB, x)
	x.Set(edwards25519.NewScalar())
	if err != nil {
		return nil, nil, err
	}
	return s, s.Message(), nil
}

// start is Start with the ephemeral scalar supplied, for the test vectors.
func start(side Side, password, idA, idB []byte, x *edwards25519.Scalar) (*State, error) {
	if side != SideA && side != SideB {
		return nil, fmt.Errorf("spake2: invalid side %q", byte(side))
	}
	s := &State{side: side}
	if err := passwordScalar(&s.w, password); err != nil {
		return nil, err
	}
	s.x.Set(x)
	s.pwHash = sha256.Sum256(password)
	s.idAHash = sha256.Sum256(idA)
	s.idBHash = sha256.Sum256(idB)
	blind := pointM
	if side == SideB {
		blind = pointN
	}
	var p, wb edwards25519.Point
	p.ScalarBaseMult(&s.x)
	p.Add(&p, wb.ScalarMult(&s.w, blind))
	s.msg[0] = byte(side)
	copy(s.msg[1:], p.Bytes())
	return s, nil
}

// passwordScalar sets w to the password scalar: 48 bytes of HKDF output read as a
// big-endian integer mod L. SetUniformBytes reduces a 64-byte little-endian
// integer, so the bytes are reversed into a zero-padded buffer.
func passwordScalar(w *edwards25519.Scalar, password []byte) error {
	okm, err := hkdf.Key(sha256.New, password, nil, "SPAKE2 pw", 48)
	if err != nil {
		return err
	}
	var wide [64]byte
	for i, b := range okm {
		wide[len(okm)-1-i] = b
	}
	_, err = w.SetUniformBytes(wide[:])
	clear(okm)
	clear(wide[:])
	return err
}

// Message returns a copy of the message this side sends.
func (s *State) Message() []byte { return append([]byte(nil), s.msg[:]...) }

// Finish processes the peer's message and returns the shared key. It may be called
// once; the state's secrets are erased afterwards, whatever the outcome.
func (s *State) Finish(peer []byte) ([]byte, error) {
	if s.finished {
		return nil, ErrFinished
	}
	s.finished = true
	defer s.erase()

	if len(peer) != MessageSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrWrongLength, len(peer), MessageSize)
	}
	other, unblind := SideB, pointN
	if s.side == SideB {
		other, unblind = SideA, pointM
	}
	if Side(peer[0]) != other {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrBadSide, peer[0], byte(other))
	}
	var p edwards25519.Point
	if _, err := p.SetBytes(peer[1:]); err != nil {
		return nil, ErrCorrupt
	}
	if string(p.Bytes()) != string(peer[1:]) {
		return nil, fmt.Errorf("%w (non-canonical)", ErrCorrupt)
	}
	if !inPrimeOrderSubgroup(&p) {
		return nil, ErrWeakPoint
	}
	if string(peer[1:]) == string(s.msg[1:]) {
		return nil, ErrReflection
	}

	// K = x·(P − w·unblind)
	var k, wu edwards25519.Point
	wu.ScalarMult(&s.w, unblind)
	k.Subtract(&p, &wu)
	k.ScalarMult(&s.x, &k)

	X, Y := s.msg[1:], peer[1:]
	if s.side == SideB {
		X, Y = peer[1:], s.msg[1:]
	}
	return transcriptKey(&s.pwHash, &s.idAHash, &s.idBHash, X, Y, k.Bytes()), nil
}

// transcriptKey is the key both sides output. X is always A's element and Y B's,
// whichever side computes it.
func transcriptKey(pwHash, idAHash, idBHash *[32]byte, X, Y, K []byte) []byte {
	h := sha256.New()
	h.Write(pwHash[:])
	h.Write(idAHash[:])
	h.Write(idBHash[:])
	h.Write(X)
	h.Write(Y)
	h.Write(K)
	return h.Sum(nil)
}

// inPrimeOrderSubgroup reports whether p is in the order-L subgroup and is not the
// identity.
func inPrimeOrderSubgroup(p *edwards25519.Point) bool {
	id := edwards25519.NewIdentityPoint()
	if p.Equal(id) == 1 {
		return false
	}
	var q edwards25519.Point
	q.ScalarMult(minusOne, p)
	q.Add(&q, p)
	return q.Equal(id) == 1
}

func (s *State) erase() {
	zero := edwards25519.NewScalar()
	s.x.Set(zero)
	s.w.Set(zero)
	clear(s.pwHash[:])
}
