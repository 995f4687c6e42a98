package peer

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Exact bytes rcodesign (serde_json, compact) writes for each message.
var golden = []struct {
	name string
	msg  Message
	json string
}{
	{"ping", &Ping{}, `{"type":"ping","payload":null}`},
	{"pong", &Pong{}, `{"type":"pong","payload":null}`},
	{"request-signing-certificate", &RequestSigningCertificate{}, `{"type":"request-signing-certificate","payload":null}`},
	{"signing-certificate no chain",
		&SigningCertificate{Certificates: []CertificateInfo{{Certificate: []byte{0x30, 0x82, 1}}}},
		`{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":[]}]}}`},
	{"signing-certificate with chain",
		&SigningCertificate{Certificates: []CertificateInfo{{Certificate: []byte{0x30, 0x82, 1}, Chain: [][]byte{{0x30, 1}, {0x30, 2}}}}},
		`{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":["MAE=","MAI="]}]}}`},
	{"sign-request", &SignRequest{Message: []byte("signed attributes")},
		`{"type":"sign-request","payload":{"message":"c2lnbmVkIGF0dHJpYnV0ZXM="}}`},
	{"signature", &Signature{Message: []byte("m"), Signature: []byte{1, 2, 3}, AlgorithmOID: OIDSHA256WithRSA},
		`{"type":"signature","payload":{"message":"bQ==","signature":"AQID","algorithm_oid":"BgkqhkiG9w0BAQs="}}`},
}

func TestMarshalGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			b, err := Marshal(g.msg)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != g.json {
				t.Fatalf("Marshal =\n%s\nwant\n%s", b, g.json)
			}
			m, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, g.msg) {
				t.Fatalf("round trip: %#v, want %#v", m, g.msg)
			}
		})
	}
}

func TestUnmarshalTolerates(t *testing.T) {
	cases := map[string]struct {
		in   string
		want Message
	}{
		"missing payload":       {`{"type":"ping"}`, &Ping{}},
		"non-null ping payload": {`{"type":"pong","payload":{"x":1}}`, &Pong{}},
		"unknown fields":        {`{"payload":null,"extra":[1,2],"type":"request-signing-certificate"}`, &RequestSigningCertificate{}},
		"whitespace":            {" {\"type\" : \"ping\" ,\n\"payload\": null}\n", &Ping{}},
		"missing chain (rcodesign signer, empty chain)": {
			`{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB"}]}}`,
			&SigningCertificate{Certificates: []CertificateInfo{{Certificate: []byte{0x30, 0x82, 1}}}}},
		"null chain": {
			`{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":null,"x":0}]}}`,
			&SigningCertificate{Certificates: []CertificateInfo{{Certificate: []byte{0x30, 0x82, 1}}}}},
		"unknown payload fields": {
			`{"type":"sign-request","payload":{"message":"AQ==","digest":"x"}}`, &SignRequest{Message: []byte{1}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := Unmarshal([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, c.want) {
				t.Fatalf("got %#v, want %#v", m, c.want)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	cases := map[string]string{
		"empty":                   ``,
		"not an object":           `["ping"]`,
		"unknown type":            `{"type":"goodbye","payload":null}`,
		"type case":               `{"type":"Ping","payload":null}`,
		"key case":                `{"Type":"ping","payload":null}`,
		"missing type":            `{"payload":null}`,
		"type not string":         `{"type":1}`,
		"duplicate key":           `{"type":"ping","type":"sign-request","payload":{"message":"AQ=="}}`,
		"trailing data":           `{"type":"ping","payload":null}{}`,
		"truncated":               `{"type":"ping","payload":nu`,
		"sign-request no payload": `{"type":"sign-request","payload":null}`,
		"sign-request empty":      `{"type":"sign-request","payload":{"message":""}}`,
		"sign-request url b64":    `{"type":"sign-request","payload":{"message":"-_8="}}`,
		"sign-request unpadded":   `{"type":"sign-request","payload":{"message":"AQ"}}`,
		"sign-request not canon":  `{"type":"sign-request","payload":{"message":"AR=="}}`,
		"sign-request number":     `{"type":"sign-request","payload":{"message":5}}`,
		"no certificates":         `{"type":"signing-certificate","payload":{"certificates":[]}}`,
		"certificates missing":    `{"type":"signing-certificate","payload":{}}`,
		"certificate missing":     `{"type":"signing-certificate","payload":{"certificates":[{"chain":[]}]}}`,
		"chain not array":         `{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":"MIIB"}]}}`,
		"chain bad entry":         `{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":[1]}]}}`,
		"too many certificates":   `{"type":"signing-certificate","payload":{"certificates":[` + strings.Repeat(`{"certificate":"MIIB"},`, MaxCertificates) + `{"certificate":"MIIB"}]}}`,
		"chain too long":          `{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB","chain":[` + strings.Repeat(`"MIIB",`, MaxChain) + `"MIIB"]}]}}`,
		"signature missing oid":   `{"type":"signature","payload":{"message":"bQ==","signature":"AQID"}}`,
		"signature bad oid":       `{"type":"signature","payload":{"message":"bQ==","signature":"AQID","algorithm_oid":"AQID"}}`,
		"signature oid trailing":  `{"type":"signature","payload":{"message":"bQ==","signature":"AQID","algorithm_oid":"BgMrZXAA"}}`,
		"signature empty":         `{"type":"signature","payload":{"message":"bQ==","signature":"","algorithm_oid":"BgMrZXA="}}`,
		"oversized":               `{"type":"ping","payload":null,"pad":"` + strings.Repeat("x", MaxSize) + `"}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := Unmarshal([]byte(in))
			if !errors.Is(err, ErrInvalid) || m != nil {
				t.Fatalf("Unmarshal = %#v, %v; want ErrInvalid", m, err)
			}
		})
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	for name, m := range map[string]Message{
		"no certificate":        &SigningCertificate{},
		"empty certificate":     &SigningCertificate{Certificates: []CertificateInfo{{}}},
		"empty sign request":    &SignRequest{},
		"signature without oid": &Signature{Signature: []byte{1}},
		"signature empty":       &Signature{AlgorithmOID: OIDEd25519},
	} {
		if b, err := Marshal(m); err == nil {
			t.Errorf("%s: Marshal = %s, want error", name, b)
		}
	}
	big := &SignRequest{Message: make([]byte, MaxSize)}
	if _, err := Marshal(big); err == nil {
		t.Error("oversized sign-request marshaled")
	}
}

// The algorithm_oid strings of spec §6.2.
func TestAlgorithmOIDs(t *testing.T) {
	table := []struct {
		alg x509.SignatureAlgorithm
		b64 string
	}{
		{x509.SHA256WithRSA, "BgkqhkiG9w0BAQs="},
		{x509.SHA1WithRSA, "BgkqhkiG9w0BAQU="},
		{x509.SHA384WithRSA, "BgkqhkiG9w0BAQw="},
		{x509.SHA512WithRSA, "BgkqhkiG9w0BAQ0="},
		{x509.ECDSAWithSHA256, "BggqhkjOPQQDAg=="},
		{x509.ECDSAWithSHA384, "BggqhkjOPQQDAw=="},
		{x509.PureEd25519, "BgMrZXA="},
	}
	for _, c := range table {
		oid, err := AlgorithmOID(c.alg)
		if err != nil {
			t.Fatal(err)
		}
		der, err := MarshalOID(oid)
		if err != nil {
			t.Fatal(err)
		}
		if got := base64.StdEncoding.EncodeToString(der); got != c.b64 {
			t.Errorf("%v: %s, want %s", c.alg, got, c.b64)
		}
		raw, _ := base64.StdEncoding.DecodeString(c.b64)
		back, err := ParseOID(raw)
		if err != nil || SignatureAlgorithm(back) != c.alg {
			t.Errorf("%s parses to %v (%v), want %v", c.b64, back, err, c.alg)
		}
	}
	if _, err := AlgorithmOID(x509.SHA256WithRSAPSS); err == nil {
		t.Error("RSA-PSS has no OID in the protocol but was accepted")
	}
	if SignatureAlgorithm(asn1.ObjectIdentifier{1, 2, 3}) != x509.UnknownSignatureAlgorithm {
		t.Error("unknown OID mapped to an algorithm")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, g := range golden {
		f.Add([]byte(g.json))
	}
	f.Add([]byte(`{"type":"signing-certificate","payload":{"certificates":[{"certificate":"MIIB"}]}}`))
	f.Add([]byte(`{"type":"ping","type":"pong"}`))
	f.Add([]byte(`{"type":"signature","payload":{"message":"bQ==","signature":"AQID","algorithm_oid":"BgMrZXAA"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if m != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v with message %#v", err, m)
			}
			return
		}
		// Anything accepted re-encodes to a canonical form that decodes to the same
		// message, and that form is stable.
		enc, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted %q but cannot re-encode %#v: %v", b, m, err)
		}
		m2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-encoded form rejected: %s: %v", enc, err)
		}
		enc2, _ := Marshal(m2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding: %s vs %s", enc, enc2)
		}
	})
}
