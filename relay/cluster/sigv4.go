package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The verifier recomputes a request's SigV4 signature with the AWS SDK's own
// signer (the one that produced it in relay/apigw) rather than a second
// implementation of the canonicalization rules: given the same method, path,
// signed headers, body hash and time, the signer must produce the same
// Authorization header, and anything else is refused.

const (
	sigAlgorithm   = "AWS4-HMAC-SHA256"
	amzDateLayout  = "20060102T150405Z"
	maxAuthLen     = 2048
	maxSignedHdrs  = 24
	scopeTerminate = "aws4_request"
)

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	keyID, date, region, service string
	signedHeaders                []string
	signature                    string
}

var errAuth = errors.New("cluster: malformed Authorization header")

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b;c, Signature=HEX
//
// strictly: exactly those three parameters, once each.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	if len(h) > maxAuthLen {
		return a, errAuth
	}
	rest, ok := strings.CutPrefix(h, sigAlgorithm+" ")
	if !ok {
		return a, errAuth
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return a, errAuth
		}
		var dst *string
		switch k {
		case "Credential":
			dst = &cred
		case "SignedHeaders":
			dst = &signed
		case "Signature":
			dst = &sig
		default:
			return a, errAuth
		}
		if *dst != "" {
			return a, errAuth
		}
		*dst = v
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != scopeTerminate || len(scope[1]) != 8 {
		return a, errAuth
	}
	a.keyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	if len(a.signedHeaders) > maxSignedHdrs {
		return a, errAuth
	}
	for i, name := range a.signedHeaders {
		// The signer lists them lower-case, sorted, without duplicates.
		if name == "" || name != strings.ToLower(name) || (i > 0 && name <= a.signedHeaders[i-1]) {
			return a, errAuth
		}
	}
	if len(sig) != 64 {
		return a, errAuth
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return a, errAuth
	}
	a.signature = sig
	return a, nil
}

// verify checks that r, with body, was signed with the cluster's
// credentials within MaxClockSkew of now. The error says why not, for the
// receiver's log; the client only ever gets 403.
func (n *Node) verify(r *http.Request, body []byte, now time.Time) error {
	auths := r.Header.Values("Authorization")
	if len(auths) != 1 {
		return errors.New("cluster: request not signed")
	}
	a, err := parseAuthorization(auths[0])
	if err != nil {
		return err
	}
	if a.keyID != AccessKeyID || a.region != Region || a.service != Service {
		return errors.New("cluster: request signed for another key, region or service")
	}
	dates := r.Header.Values("X-Amz-Date")
	if len(dates) != 1 {
		return errors.New("cluster: request has no X-Amz-Date")
	}
	t, err := time.Parse(amzDateLayout, dates[0])
	if err != nil || dates[0][:8] != a.date {
		return errors.New("cluster: bad X-Amz-Date")
	}
	if d := now.Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return errors.New("cluster: request signed " + d.Round(time.Second).String() + " away from this relay's clock (check NTP on both)")
	}
	if !contains(a.signedHeaders, "host") || !contains(a.signedHeaders, "x-amz-date") {
		return errors.New("cluster: host and x-amz-date must be signed")
	}

	// Rebuild the request from exactly what was signed.
	re := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: make(http.Header, len(a.signedHeaders)),
	}
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			if r.ContentLength != int64(len(body)) {
				return errors.New("cluster: body length does not match Content-Length")
			}
			re.ContentLength = r.ContentLength
		default:
			key := textproto.CanonicalMIMEHeaderKey(name)
			vals := r.Header.Values(key)
			if len(vals) == 0 {
				return errors.New("cluster: signed header " + name + " missing")
			}
			re.Header[key] = vals
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: n.sigSecret}
	if err := n.signer.SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), Service, Region, t); err != nil {
		return err
	}
	if !hmac.Equal([]byte(re.Header.Get("Authorization")), []byte(auths[0])) {
		return errors.New("cluster: bad signature (do all relays use the same cluster secret?)")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
