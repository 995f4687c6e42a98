// Package testtsa is a real RFC 3161 time-stamp authority for tests: an HTTP server
// (httptest) with its own CA and a TSA certificate carrying the critical
// timeStamping extended key usage, answering TimeStampReq with tokens that
// `openssl ts -verify` accepts.
//
// It is written independently of agent/cms (its own DER encoding, from the RFCs), so
// a test of the client against it checks two implementations against each other
// rather than one against itself. Faults can be switched on to test that clients
// reject bad replies.
package testtsa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Fault makes the server misbehave in one specific way.
type Fault int

const (
	// NoFault: a correct time-stamp authority.
	NoFault Fault = iota
	// WrongNonce echoes a different nonce than the request's.
	WrongNonce
	// OmitNonce leaves the nonce out of the token.
	OmitNonce
	// Reject answers with status rejection (badAlg) and a status text.
	Reject
	// WrongImprint time-stamps a different digest than the one requested.
	WrongImprint
	// BadSignature corrupts the TSA's signature over the token.
	BadSignature
	// Garbage answers HTTP 200 with bytes that are not a TimeStampResp.
	Garbage
	// HTTPError answers HTTP 503.
	HTTPError
)

// Policy is the TSA policy OID the server puts in its tokens (an OID under the
// example arc reserved for documentation, 1.3.6.1.4.1.32473).
var Policy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}

// Server is a running time-stamp authority.
type Server struct {
	srv     *httptest.Server
	ca      *x509.Certificate
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	mu      sync.Mutex
	fault   Fault
	clock   func() time.Time
	serial  int64
	handled int
	failing int
}

// New starts a time-stamp authority and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := newServer()
	if err != nil {
		t.Fatalf("testtsa: %v", err)
	}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the address to POST time-stamp requests to.
func (s *Server) URL() string { return s.srv.URL }

// Roots returns a new pool holding the server's CA certificate.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.ca)
	return p
}

// CACertificate returns the CA that issued the TSA certificate.
func (s *Server) CACertificate() *x509.Certificate { return s.ca }

// Certificate returns the TSA's own certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// SetFault switches a misbehaviour on (NoFault switches it off).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// FailNext makes the next n requests fail with HTTP 503, as an overloaded server
// does, before the server answers normally again.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = n
}

// SetClock replaces the clock that sets the tokens' genTime.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// Requests reports how many time-stamp requests the server has answered.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled
}

func newServer() (*Server, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "farsign test TSA root", Organization: []string{"farsign tests"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	// RFC 3161 §2.3: the TSA certificate has exactly one extended key usage,
	// timeStamping, marked critical.
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(2),
		Subject:         pkix.Name{CommonName: "farsign test TSA", Organization: []string{"farsign tests"}},
		NotBefore:       now.Add(-24 * time.Hour),
		NotAfter:        now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Server{ca: ca, cert: cert, key: key, clock: time.Now}, nil
}

// ServeHTTP answers one RFC 3161 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a TimeStampReq", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/timestamp-query" {
		http.Error(w, "want Content-Type application/timestamp-query", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	fault, now := s.fault, s.clock()
	s.serial++
	serial := s.serial
	s.handled++
	if s.failing > 0 {
		s.failing--
		fault = HTTPError
	}
	s.mu.Unlock()

	var resp []byte
	switch fault {
	case HTTPError:
		http.Error(w, "time-stamp service unavailable", http.StatusServiceUnavailable)
		return
	case Garbage:
		resp = []byte("this is not a TimeStampResp")
	case Reject:
		resp = rejection(0, "farsign testtsa: request rejected on purpose")
	default:
		resp, err = s.respond(body, fault, now, serial)
		if err != nil {
			resp = rejection(2, err.Error()) // badRequest
		}
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}

type request struct {
	imprintAlg asn1.ObjectIdentifier
	imprint    []byte
	nonce      *big.Int
	certReq    bool
}

var (
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA1       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidECDSA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidCT         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMD         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningT   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSignCertV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
)

func imprintSize(oid asn1.ObjectIdentifier) int {
	switch {
	case oid.Equal(oidSHA1):
		return 20
	case oid.Equal(oidSHA256):
		return 32
	case oid.Equal(oidSHA384):
		return 48
	case oid.Equal(oidSHA512):
		return 64
	}
	return 0
}

func parseRequest(der []byte) (*request, error) {
	in := cryptobyte.String(der)
	var req, imprint, alg cryptobyte.String
	var version int64
	r := &request{}
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() || !req.ReadASN1Integer(&version) || version != 1 ||
		!req.ReadASN1(&imprint, cbasn1.SEQUENCE) || !imprint.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&r.imprintAlg) || !imprint.ReadASN1Bytes(&r.imprint, cbasn1.OCTET_STRING) || !imprint.Empty() {
		return nil, errors.New("malformed TimeStampReq")
	}
	if n := imprintSize(r.imprintAlg); n == 0 || n != len(r.imprint) {
		return nil, fmt.Errorf("unsupported or inconsistent message imprint (%v, %d bytes)", r.imprintAlg, len(r.imprint))
	}
	if req.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		var policy asn1.ObjectIdentifier
		if !req.ReadASN1ObjectIdentifier(&policy) || !policy.Equal(Policy) {
			return nil, errors.New("unaccepted policy")
		}
	}
	if req.PeekASN1Tag(cbasn1.INTEGER) {
		r.nonce = new(big.Int)
		if !req.ReadASN1Integer(r.nonce) {
			return nil, errors.New("malformed nonce")
		}
	}
	if req.PeekASN1Tag(cbasn1.BOOLEAN) && !req.ReadASN1Boolean(&r.certReq) {
		return nil, errors.New("malformed certReq")
	}
	if !req.Empty() {
		return nil, errors.New("extensions are not supported")
	}
	return r, nil
}

// rejection encodes a TimeStampResp with status rejection, one failure bit and text.
func rejection(failBit int, text string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(text)) })
			})
			bits := make([]byte, failBit/8+1)
			bits[failBit/8] = 0x80 >> (failBit % 8)
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
				b.AddUint8(uint8(7 - failBit%8))
				b.AddBytes(bits)
			})
		})
	})
	return b.BytesOrPanic()
}

func (s *Server) respond(body []byte, fault Fault, now time.Time, serial int64) ([]byte, error) {
	req, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	imprint := req.imprint
	if fault == WrongImprint {
		imprint = append([]byte(nil), imprint...)
		imprint[0] ^= 0xff
	}
	nonce := req.nonce
	switch fault {
	case WrongNonce:
		if nonce != nil {
			nonce = new(big.Int).Add(nonce, big.NewInt(1))
		}
	case OmitNonce:
		nonce = nil
	}

	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1ObjectIdentifier(Policy)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(req.imprintAlg) })
			b.AddASN1OctetString(imprint)
		})
		b.AddASN1Int64(serial)
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(genTime(now))) })
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(1) }) // accuracy: 1 s
		if nonce != nil {
			b.AddASN1BigInt(nonce)
		}
	})
	tstInfo, err := tb.Bytes()
	if err != nil {
		return nil, err
	}

	mdTST := sha256.Sum256(tstInfo)
	certHash := sha256.Sum256(s.cert.Raw)
	attrs := [][]byte{
		attribute(oidCT, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) }),
		attribute(oidSigningT, func(b *cryptobyte.Builder) { b.AddASN1UTCTime(now.UTC().Truncate(time.Second)) }),
		attribute(oidMD, func(b *cryptobyte.Builder) { b.AddASN1OctetString(mdTST[:]) }),
		attribute(oidSignCertV2, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2, sha256 by default
						b.AddASN1OctetString(certHash[:])
					})
				})
			})
		}),
	}
	sort.Slice(attrs, func(i, j int) bool { return bytes.Compare(attrs[i], attrs[j]) < 0 })
	var ab cryptobyte.Builder
	ab.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	signedAttrs := ab.BytesOrPanic()
	var setContent cryptobyte.String
	sa := cryptobyte.String(signedAttrs)
	sa.ReadASN1(&setContent, cbasn1.SET)
	digest := sha256.Sum256(signedAttrs)
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if fault == BadSignature {
		sig[len(sig)/2] ^= 0x01
	}

	var rb cryptobyte.Builder
	rb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TimeStampResp
		// status: granted
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
			b.AddASN1ObjectIdentifier(oidSignedData)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
					b.AddASN1Int64(3)
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSHA256) })
					})
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidTSTInfo)
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddASN1OctetString(tstInfo)
						})
					})
					if req.certReq {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddBytes(s.cert.Raw)
						})
					}
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
							b.AddASN1Int64(1)
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(s.cert.RawIssuer)
								b.AddASN1BigInt(s.cert.SerialNumber)
							})
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSHA256) })
							b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddBytes(setContent) // [0] IMPLICIT: same content as the signed SET
							})
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidECDSA256) })
							b.AddASN1OctetString(sig)
						})
					})
				})
			})
		})
	})
	return rb.Bytes()
}

func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, value)
	})
	return b.BytesOrPanic()
}

// genTime formats a GeneralizedTime in UTC with millisecond precision and no
// trailing zeros in the fraction, as RFC 3161 §2.4.2 requires.
func genTime(t time.Time) string {
	t = t.UTC().Truncate(time.Millisecond)
	s := t.Format("20060102150405.000")
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	return s + "Z"
}
