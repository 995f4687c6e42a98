package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/testtsa"
)

func TestHTTPTimestamper(t *testing.T) {
	tsa := testtsa.New(t)
	at := time.Date(2030, 1, 2, 3, 4, 5, 250e6, time.UTC)
	tsa.SetClock(func() time.Time { return at })
	sig := []byte("a signature value")
	token, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), sig)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := parseTimeStampToken(token)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(sig)
	if ts.HashAlgorithm != crypto.SHA256 || !bytes.Equal(ts.MessageImprint, want[:]) {
		t.Errorf("imprint %v %x, want SHA-256 %x", ts.HashAlgorithm, ts.MessageImprint, want)
	}
	if !ts.GenTime.Equal(at) || ts.Accuracy != time.Second || !ts.Policy.Equal(testtsa.Policy) || ts.Nonce == nil {
		t.Errorf("gen time %v accuracy %v policy %v nonce %v", ts.GenTime, ts.Accuracy, ts.Policy, ts.Nonce)
	}
	if len(ts.Certificates) != 1 || !ts.Certificates[0].Equal(tsa.Certificate()) {
		t.Errorf("token certificates %v (certReq was true)", ts.Certificates)
	}
	// Two requests carry different nonces.
	token2, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), sig)
	if err != nil {
		t.Fatal(err)
	}
	ts2, _ := parseTimeStampToken(token2)
	if ts2.Nonce.Cmp(ts.Nonce) == 0 || ts2.SerialNumber.Cmp(ts.SerialNumber) == 0 {
		t.Error("two requests got the same nonce or serial")
	}
}

// fastRetries shortens the retry wait for a test.
func fastRetries(t *testing.T) {
	old := retryDelay
	retryDelay = time.Millisecond
	t.Cleanup(func() { retryDelay = old })
}

func TestHTTPTimestamperRetries(t *testing.T) {
	fastRetries(t)
	tsa := testtsa.New(t)
	tsa.FailNext(2)
	if _, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), []byte("sig")); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if tsa.Requests() != 3 {
		t.Errorf("%d requests, want 3", tsa.Requests())
	}
	tsa.FailNext(2)
	_, err := (&HTTPTimestamper{URL: tsa.URL(), Attempts: 2}).Timestamp(context.Background(), []byte("sig"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 503 Service Unavailable (after 2 attempts)") {
		t.Errorf("503 on every attempt: %v", err)
	}
	// A wrong reply is not retried: retrying can't make a bad server honest.
	tsa.SetFault(testtsa.WrongNonce)
	before := tsa.Requests()
	if _, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), []byte("sig")); err == nil {
		t.Fatal("wrong nonce accepted")
	}
	if n := tsa.Requests() - before; n != 1 {
		t.Errorf("a wrong reply was tried %d times", n)
	}
}

func TestHTTPTimestamperRejectsBadReplies(t *testing.T) {
	fastRetries(t)
	tsa := testtsa.New(t)
	for _, tc := range []struct {
		fault testtsa.Fault
		want  string
		is    error
	}{
		{testtsa.WrongNonce, "nonce", nil},
		{testtsa.OmitNonce, "nonce", nil},
		{testtsa.Reject, `refused: status rejection (2), failure badAlg: "farsign testtsa: request rejected on purpose"`, nil},
		{testtsa.WrongImprint, "message imprint", ErrTimestampImprint},
		{testtsa.BadSignature, "signature does not verify", ErrSignature},
		{testtsa.Garbage, "not a TimeStampResp", nil},
		{testtsa.HTTPError, "HTTP 503", nil},
	} {
		tsa.SetFault(tc.fault)
		_, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), []byte("sig"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("fault %d: err = %v, want one containing %q", tc.fault, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), tsa.URL()) {
			t.Errorf("fault %d: error %q does not name the server", tc.fault, err)
		}
	}
	tsa.SetFault(testtsa.NoFault)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(ctx, []byte("sig")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if _, err := (&HTTPTimestamper{URL: "http://127.0.0.1:1/ts", Client: client}).Timestamp(context.Background(), []byte("sig")); err == nil {
		t.Error("unreachable server: no error")
	}
	if _, err := (&HTTPTimestamper{}).Timestamp(context.Background(), []byte("sig")); err == nil {
		t.Error("empty URL: no error")
	}
}

func TestSignWithTimestamp(t *testing.T) {
	tsa := testtsa.New(t)
	id := selfSigned(t, applecert.RSA2048)
	cd := testCD(t, 500)
	der, err := Sign(context.Background(), attrsFor(t, cd), id.key, id.cert, nil, &HTTPTimestamper{URL: tsa.URL()})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.Verify(cd); err != nil {
		t.Fatal(err)
	}
	if sd.Signer.TimeStamp == nil || len(sd.Signer.UnsignedAttributes) != 1 {
		t.Fatal("no time-stamp token in the unsigned attributes")
	}
	if err := sd.VerifyTimestamp(tsa.Roots()); err != nil {
		t.Fatalf("VerifyTimestamp: %v", err)
	}
	if err := sd.VerifyTimestamp(applecert.AppleRoots()); err == nil {
		t.Error("VerifyTimestamp accepted a token that does not chain to the given roots")
	}
	if _, err := sd.VerifyChain(id.roots, sd.Signer.TimeStamp.GenTime); err != nil {
		t.Errorf("VerifyChain at the time-stamp: %v", err)
	}
	if tsa.Requests() != 1 {
		t.Errorf("%d time-stamp requests, want 1", tsa.Requests())
	}

	// Without a token, VerifyTimestamp says so.
	plain, _ := Sign(context.Background(), attrsFor(t, cd), id.key, id.cert, nil, nil)
	sdPlain, _ := Parse(plain)
	if err := sdPlain.VerifyTimestamp(tsa.Roots()); !errors.Is(err, ErrNoTimestamp) {
		t.Errorf("VerifyTimestamp without a token = %v, want ErrNoTimestamp", err)
	}
}

// A Timestamper that returns a valid token for other data must not get it embedded.
type replayTimestamper struct{ token []byte }

func (r replayTimestamper) Timestamp(context.Context, []byte) ([]byte, error) { return r.token, nil }

func TestSignRejectsForeignToken(t *testing.T) {
	tsa := testtsa.New(t)
	foreign, err := (&HTTPTimestamper{URL: tsa.URL()}).Timestamp(context.Background(), []byte("another signature"))
	if err != nil {
		t.Fatal(err)
	}
	id := selfSigned(t, applecert.ECDSAP256)
	_, err = Sign(context.Background(), attrsFor(t, testCD(t, 10)), id.key, id.cert, nil, replayTimestamper{foreign})
	if !errors.Is(err, ErrTimestampImprint) {
		t.Errorf("Sign with a replayed token = %v, want ErrTimestampImprint", err)
	}
	_, err = Sign(context.Background(), attrsFor(t, testCD(t, 10)), id.key, id.cert, nil, replayTimestamper{[]byte("junk")})
	if err == nil || !strings.Contains(err.Error(), "time-stamp token") {
		t.Errorf("Sign with a junk token = %v", err)
	}
}

func TestParseGeneralizedTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"20260921164402Z":     time.Date(2026, 9, 21, 16, 44, 2, 0, time.UTC),
		"20260921164402.5Z":   time.Date(2026, 9, 21, 16, 44, 2, 5e8, time.UTC),
		"20260921164402.125Z": time.Date(2026, 9, 21, 16, 44, 2, 125e6, time.UTC),
	} {
		got, err := parseGeneralizedTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseGeneralizedTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "20260921164402", "2026092116440Z", "20260921164402.Z", "20260921164402.50Z", "20260921164402+0100", "2026092116440x.1Z", "20261321164402Z"} {
		if _, err := parseGeneralizedTime(bad); err == nil {
			t.Errorf("parseGeneralizedTime(%q) accepted", bad)
		}
	}
}
