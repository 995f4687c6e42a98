package cms

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/testtsa"
)

// FuzzParse feeds Parse arbitrary DER and BER. The seed corpus in
// testdata/fuzz/FuzzParse holds Apple's BER CMS from node and Sign outputs (RSA,
// ECDSA with a chain, RSA with a time-stamp token).
func FuzzParse(f *testing.F) {
	f.Add(readTestdata(f, "node-cms.der"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := Parse(data)
		if err != nil {
			return
		}
		// Parsing the DER form again gives the same DER: the BER conversion is
		// idempotent and Parse keeps nothing it could not re-read.
		again, err := Parse(sd.Raw)
		if err != nil {
			t.Fatalf("Parse accepted input whose DER form it rejects: %v", err)
		}
		if !bytes.Equal(again.Raw, sd.Raw) {
			t.Fatal("DER form not stable")
		}
		if sd.Signer == nil || sd.Signer.SignedAttrs.Raw[0] != 0x31 || sd.Signer.MessageDigest == nil {
			t.Fatal("parsed SignedData without a usable signer")
		}
		// The verifiers must fail cleanly, never panic, on whatever parsed.
		_ = sd.Verify([]byte("content"))
		_ = sd.VerifyTimestamp(x509.NewCertPool())
		_, _ = sd.VerifyChain(x509.NewCertPool(), time.Unix(0, 0))
	})
}

// FuzzParseTimeStampResponse feeds the parser of what a time-stamp server sends back.
// Seeds: testtsa's granted and rejected replies, and Apple's token from node wrapped
// in a granted reply.
func FuzzParseTimeStampResponse(f *testing.F) {
	tsa := testtsa.New(f)
	digest := sha256.Sum256([]byte("signature"))
	req, err := timeStampRequest(crypto.SHA256, digest[:], big.NewInt(42))
	if err != nil {
		f.Fatal(err)
	}
	post := func() []byte {
		resp, err := http.Post(tsa.URL(), "application/timestamp-query", bytes.NewReader(req))
		if err != nil {
			f.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	f.Add(post())
	tsa.SetFault(testtsa.Reject)
	f.Add(post())
	sd, err := Parse(readTestdata(f, "node-cms.der"))
	if err != nil {
		f.Fatal(err)
	}
	granted := append([]byte{0x30, 0x05, 0x02, 0x01, 0x00}, sd.Signer.TimeStamp.Token...)
	f.Add(append([]byte{0x30, 0x82, byte(len(granted) >> 8), byte(len(granted))}, granted...))

	f.Fuzz(func(t *testing.T, body []byte) {
		ts, err := parseTimeStampResponse(body)
		if err != nil {
			return
		}
		again, err := parseTimeStampToken(ts.Token)
		if err != nil {
			t.Fatalf("accepted a reply whose token does not re-parse: %v", err)
		}
		if !again.GenTime.Equal(ts.GenTime) || !bytes.Equal(again.MessageImprint, ts.MessageImprint) || len(ts.MessageImprint) != ts.HashAlgorithm.Size() {
			t.Fatal("token fields unstable or inconsistent")
		}
		_ = ts.verifyToken([]byte("signature"))
	})
}
