package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Timestamper obtains an RFC 3161 time-stamp token over a signature value. Sign calls
// it after the signature is known; the token goes into the unsigned attributes, so
// it does not change what the (remote) signer signed.
type Timestamper interface {
	// Timestamp returns the DER ContentInfo of a time-stamp token whose message
	// imprint covers signature.
	Timestamp(ctx context.Context, signature []byte) (token []byte, err error)
}

// DefaultTimestampURL is Apple's time-stamp server, rcodesign's default.
const DefaultTimestampURL = "http://timestamp.apple.com/ts01"

// HTTPTimestamper speaks RFC 3161 over HTTP: a TimeStampReq with messageImprint =
// SHA-256 of the signature value, a random 64-bit nonce and certReq true, POSTed as
// application/timestamp-query. The reply must have status granted (or granted with
// modifications), echo the nonce, cover the signature and carry a token whose
// signature verifies; anything else is an error naming the server and what was wrong.
//
// Network errors and HTTP 5xx/429 answers are retried (public time-stamp servers,
// Apple's included, fail now and then); a reply that arrives but is wrong is not.
type HTTPTimestamper struct {
	// URL is the time-stamp server, e.g. DefaultTimestampURL.
	URL string
	// Client sends the request; nil means a client with a one-minute timeout.
	Client *http.Client
	// Attempts bounds the tries for transient failures; 0 means 3.
	Attempts int
}

var defaultTimestampClient = &http.Client{Timeout: time.Minute}

// retryDelay is the wait before the second attempt; it doubles after each failure.
var retryDelay = time.Second

// maxTimestampReply bounds the reply read from the server (Apple's is about 4.5 KB).
const maxTimestampReply = 256 << 10

// transientError marks a failure worth retrying.
type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

// Timestamp implements Timestamper.
func (h *HTTPTimestamper) Timestamp(ctx context.Context, signature []byte) ([]byte, error) {
	if h.URL == "" {
		return nil, errors.New("no time-stamp server URL")
	}
	digest := sha256.Sum256(signature)
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return nil, err
	}
	nonce := new(big.Int).SetBytes(nb[:])
	req, err := timeStampRequest(crypto.SHA256, digest[:], nonce)
	if err != nil {
		return nil, err
	}
	attempts := h.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	delay := retryDelay
	for attempt := 1; ; attempt++ {
		token, err := h.exchange(ctx, req, nonce, signature)
		if err == nil {
			return token, nil
		}
		var te transientError
		if !errors.As(err, &te) || attempt == attempts || ctx.Err() != nil {
			if attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return nil, fmt.Errorf("time-stamp server %s: %w", h.URL, err)
		}
		select {
		case <-time.After(delay):
			delay *= 2
		case <-ctx.Done():
			return nil, fmt.Errorf("time-stamp server %s: %w", h.URL, ctx.Err())
		}
	}
}

// exchange sends one request and checks the reply.
func (h *HTTPTimestamper) exchange(ctx context.Context, req []byte, nonce *big.Int, signature []byte) ([]byte, error) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	httpReq.Header.Set("Content-Type", "application/timestamp-query")
	httpReq.Header.Set("Accept", "application/timestamp-reply")
	client := h.Client
	if client == nil {
		client = defaultTimestampClient
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		return nil, transientError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTimestampReply+1))
	if err != nil {
		return nil, transientError{fmt.Errorf("reading reply: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("HTTP %s", resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, transientError{err}
		}
		return nil, err
	}
	if len(body) > maxTimestampReply {
		return nil, fmt.Errorf("reply larger than %d bytes", maxTimestampReply)
	}
	tst, err := parseTimeStampResponse(body)
	if err != nil {
		return nil, err
	}
	if tst.Nonce == nil || tst.Nonce.Cmp(nonce) != 0 {
		return nil, errors.New("the token does not echo the request's nonce (possible replay)")
	}
	if tst.SignedData.Signer.SignerCertificate == nil {
		return nil, errors.New("the token does not include the TSA certificate although it was requested")
	}
	if err := tst.verifyToken(signature); err != nil {
		return nil, err
	}
	return tst.Token, nil
}

// timeStampRequest encodes TimeStampReq (RFC 3161 §2.4.1), hash algorithm with NULL
// parameters as rcodesign sends it.
func timeStampRequest(h crypto.Hash, digest []byte, nonce *big.Int) ([]byte, error) {
	oid, ok := oidForHash(h)
	if !ok {
		return nil, fmt.Errorf("unsupported imprint hash %v", h)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addAlgorithmIdentifier(b, oid, true)
			b.AddASN1OctetString(digest)
		})
		b.AddASN1BigInt(nonce)
		b.AddASN1Boolean(true)
	})
	return b.Bytes()
}

// PKI status values of a TimeStampResp (RFC 3161 §2.4.2).
var pkiStatusNames = map[int64]string{
	0: "granted", 1: "grantedWithMods", 2: "rejection", 3: "waiting",
	4: "revocationWarning", 5: "revocationNotification",
}

var pkiFailureNames = map[int]string{
	0: "badAlg", 2: "badRequest", 5: "badDataFormat", 14: "timeNotAvailable",
	15: "unacceptedPolicy", 16: "unacceptedExtension", 17: "addInfoNotAvailable",
	25: "systemFailure",
}

// parseTimeStampResponse parses a TimeStampResp and requires a granted token.
func parseTimeStampResponse(body []byte) (*TimeStamp, error) {
	der, err := normalize(body)
	if err != nil {
		return nil, fmt.Errorf("reply is not a TimeStampResp: %w", err)
	}
	in := cryptobyte.String(der)
	var resp, statusInfo cryptobyte.String
	var status int64
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() ||
		!resp.ReadASN1(&statusInfo, cbasn1.SEQUENCE) || !statusInfo.ReadASN1Integer(&status) {
		return nil, errors.New("reply is not a TimeStampResp")
	}
	var texts []string
	if statusInfo.PeekASN1Tag(cbasn1.SEQUENCE) {
		var free cryptobyte.String
		statusInfo.ReadASN1(&free, cbasn1.SEQUENCE)
		for !free.Empty() {
			var s cryptobyte.String
			if !free.ReadASN1(&s, cbasn1.UTF8String) {
				break
			}
			texts = append(texts, strconv.Quote(string(s)))
		}
	}
	var failures []string
	if statusInfo.PeekASN1Tag(cbasn1.BIT_STRING) {
		var bits asn1.BitString
		if statusInfo.ReadASN1BitString(&bits) {
			for i := 0; i < bits.BitLength; i++ {
				if bits.At(i) == 1 {
					name, ok := pkiFailureNames[i]
					if !ok {
						name = "failure bit " + strconv.Itoa(i)
					}
					failures = append(failures, name)
				}
			}
		}
	}
	if status != 0 && status != 1 {
		name, ok := pkiStatusNames[status]
		if !ok {
			name = "unknown"
		}
		msg := fmt.Sprintf("time-stamp request refused: status %s (%d)", name, status)
		if len(failures) > 0 {
			msg += ", failure " + strings.Join(failures, "+")
		}
		if len(texts) > 0 {
			msg += ": " + strings.Join(texts, " ")
		}
		return nil, errors.New(msg)
	}
	var token cryptobyte.String
	if !resp.ReadASN1Element(&token, cbasn1.SEQUENCE) || !resp.Empty() {
		return nil, errors.New("reply grants the request but carries no token")
	}
	return parseTimeStampToken(token)
}

// TimeStamp is a parsed RFC 3161 time-stamp token.
type TimeStamp struct {
	// Token is the DER ContentInfo as embedded in the unsigned attribute.
	Token []byte
	// SignedData is the token's own SignedData (its signer is the TSA).
	SignedData *SignedData
	// TSTInfo is the raw DER TSTInfo the TSA signed.
	TSTInfo []byte
	// Policy is the TSA policy under which the token was issued.
	Policy asn1.ObjectIdentifier
	// HashAlgorithm and MessageImprint are what was time-stamped: for code
	// signatures, the SHA-256 of the CMS signature value.
	HashAlgorithm  crypto.Hash
	MessageImprint []byte
	// SerialNumber is the token's serial number.
	SerialNumber *big.Int
	// GenTime is when the TSA issued the token.
	GenTime time.Time
	// Accuracy is the TSA's stated accuracy of GenTime (0 if not stated).
	Accuracy time.Duration
	// Nonce echoes the request's nonce, nil when absent.
	Nonce *big.Int
	// Certificates are the certificates in the token (the TSA's, when requested).
	Certificates []*x509.Certificate
}

// parseTimeStampToken parses a TimeStampToken ContentInfo (BER accepted).
func parseTimeStampToken(token []byte) (*TimeStamp, error) {
	sd, err := parseContentInfo(token)
	if err != nil {
		return nil, err
	}
	if !sd.ContentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("token content type %v, not TSTInfo", sd.ContentType)
	}
	if sd.Content == nil {
		return nil, errors.New("token has no TSTInfo")
	}
	ts := &TimeStamp{Token: sd.Raw, SignedData: sd, TSTInfo: sd.Content, Certificates: sd.Certificates}
	if err := ts.parseTSTInfo(sd.Content); err != nil {
		return nil, err
	}
	return ts, nil
}

func (ts *TimeStamp) parseTSTInfo(der []byte) error {
	in := cryptobyte.String(der)
	var s, imprint cryptobyte.String
	var version int64
	if !in.ReadASN1(&s, cbasn1.SEQUENCE) || !in.Empty() || !s.ReadASN1Integer(&version) || version != 1 {
		return errors.New("malformed TSTInfo")
	}
	if !s.ReadASN1ObjectIdentifier(&ts.Policy) || !s.ReadASN1(&imprint, cbasn1.SEQUENCE) {
		return errors.New("malformed TSTInfo")
	}
	hashOID, err := readAlgorithmOID(&imprint)
	if err != nil {
		return fmt.Errorf("TSTInfo messageImprint: %w", err)
	}
	h, ok := hashForOID(hashOID)
	if !ok {
		return fmt.Errorf("TSTInfo messageImprint uses unsupported hash %v", hashOID)
	}
	ts.HashAlgorithm = h
	if !imprint.ReadASN1Bytes(&ts.MessageImprint, cbasn1.OCTET_STRING) || !imprint.Empty() || len(ts.MessageImprint) != h.Size() {
		return errors.New("malformed TSTInfo messageImprint")
	}
	ts.SerialNumber = new(big.Int)
	var gen cryptobyte.String
	if !s.ReadASN1Integer(ts.SerialNumber) || !s.ReadASN1(&gen, cbasn1.GeneralizedTime) {
		return errors.New("malformed TSTInfo")
	}
	if ts.GenTime, err = parseGeneralizedTime(string(gen)); err != nil {
		return fmt.Errorf("TSTInfo genTime: %w", err)
	}
	if s.PeekASN1Tag(cbasn1.SEQUENCE) {
		var acc cryptobyte.String
		s.ReadASN1(&acc, cbasn1.SEQUENCE)
		var secs, millis, micros int64
		if acc.PeekASN1Tag(cbasn1.INTEGER) && !acc.ReadASN1Integer(&secs) {
			return errors.New("malformed TSTInfo accuracy")
		}
		if !acc.ReadOptionalASN1Integer(&millis, cbasn1.Tag(0).ContextSpecific(), int64(0)) ||
			!acc.ReadOptionalASN1Integer(&micros, cbasn1.Tag(1).ContextSpecific(), int64(0)) || !acc.Empty() {
			return errors.New("malformed TSTInfo accuracy")
		}
		if secs < 0 || secs > 1<<31 || millis < 0 || millis > 999 || micros < 0 || micros > 999 {
			return errors.New("TSTInfo accuracy out of range")
		}
		ts.Accuracy = time.Duration(secs)*time.Second + time.Duration(millis)*time.Millisecond + time.Duration(micros)*time.Microsecond
	}
	if s.PeekASN1Tag(cbasn1.BOOLEAN) {
		var ordering bool
		if !s.ReadASN1Boolean(&ordering) {
			return errors.New("malformed TSTInfo ordering")
		}
	}
	if s.PeekASN1Tag(cbasn1.INTEGER) {
		ts.Nonce = new(big.Int)
		if !s.ReadASN1Integer(ts.Nonce) {
			return errors.New("malformed TSTInfo nonce")
		}
	}
	// tsa [0] and extensions [1] are informational and not interpreted.
	return nil
}

// parseGeneralizedTime parses a DER GeneralizedTime, which for RFC 3161 genTime may
// carry fractional seconds ("20260921164402.25Z").
func parseGeneralizedTime(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") || len(s) < 15 {
		return time.Time{}, fmt.Errorf("malformed GeneralizedTime %q", s)
	}
	body := strings.TrimSuffix(s, "Z")
	layout := "20060102150405"
	if i := strings.IndexByte(body, '.'); i >= 0 {
		frac := body[i+1:]
		if i != 14 || len(frac) == 0 || len(frac) > 9 || strings.HasSuffix(frac, "0") {
			return time.Time{}, fmt.Errorf("malformed GeneralizedTime %q", s)
		}
		layout += "." + strings.Repeat("9", len(frac))
	} else if len(body) != 14 {
		return time.Time{}, fmt.Errorf("malformed GeneralizedTime %q", s)
	}
	t, err := time.Parse(layout, body)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed GeneralizedTime %q", s)
	}
	return t.UTC(), nil
}

// verifyToken checks everything about a token but the TSA's chain: it time-stamps
// exactly signature, it is a TSTInfo signed by the TSA certificate it carries, and
// its ESS signing-certificate attribute (if any) names that certificate.
func (ts *TimeStamp) verifyToken(signature []byte) error {
	if err := ts.checkImprint(signature); err != nil {
		return err
	}
	tsd := ts.SignedData
	if !tsd.Signer.ContentType.Equal(oidTSTInfo) {
		return fmt.Errorf("time-stamp token: content-type attribute %v, not TSTInfo", tsd.Signer.ContentType)
	}
	if err := tsd.verifySignerInfo(tsd.Content); err != nil {
		return fmt.Errorf("time-stamp token: %w", err)
	}
	if err := checkESSCertID(tsd.Signer, tsd.Signer.SignerCertificate); err != nil {
		return fmt.Errorf("time-stamp token: %w", err)
	}
	return nil
}

// checkImprint reports whether the token time-stamps exactly signature.
func (ts *TimeStamp) checkImprint(signature []byte) error {
	if !ts.HashAlgorithm.Available() {
		return fmt.Errorf("imprint hash %v unavailable", ts.HashAlgorithm)
	}
	h := ts.HashAlgorithm.New()
	h.Write(signature)
	if !bytes.Equal(h.Sum(nil), ts.MessageImprint) {
		return fmt.Errorf("%w: the token's message imprint is not the %v of this signature", ErrTimestampImprint, ts.HashAlgorithm)
	}
	return nil
}
