// Package peer defines the messages the initiator and the signer exchange inside
// the encrypted channel, in the exact compact JSON rcodesign writes and reads:
//
//	{"type":"ping","payload":null}
//	{"type":"signing-certificate","payload":{"certificates":[{"certificate":"…","chain":[]}]}}
//
// Marshal output is byte-identical to rcodesign's. Unmarshal is strict where
// rcodesign is strict (an unknown type is an error; binary fields must be standard,
// padded base64) and tolerant where it is tolerant (unknown fields are ignored; a
// missing payload is fine for payload-less types; a missing "chain" is read as
// empty, which rcodesign's initiator does not do, so our signer always sends
// "chain":[]). Beyond rcodesign, keys match case-sensitively, a duplicated key is
// an error, and sizes and counts are bounded.
package peer

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxSize bounds an encoded message (the channel's plaintext limit).
const MaxSize = 64 << 10

// Limits on the certificate message, far above real chains (leaf + 2 or 3 CAs).
const (
	MaxCertificates = 8
	MaxChain        = 16
)

// Message types, exactly as on the wire.
const (
	TypePing                      = "ping"
	TypePong                      = "pong"
	TypeRequestSigningCertificate = "request-signing-certificate"
	TypeSigningCertificate        = "signing-certificate"
	TypeSignRequest               = "sign-request"
	TypeSignature                 = "signature"
)

// ErrInvalid is wrapped by every Unmarshal error.
var ErrInvalid = errors.New("invalid peer message")

// Message is one of *Ping, *Pong, *RequestSigningCertificate, *SigningCertificate,
// *SignRequest or *Signature.
type Message interface {
	// Type returns the wire type string.
	Type() string
	payload() (any, error)
}

// Ping opens the handshake; each side sends one first.
type Ping struct{}

// Pong answers a ping; each side sends one after the ping round.
type Pong struct{}

// RequestSigningCertificate asks the signer for its certificate (initiator → signer).
type RequestSigningCertificate struct{}

// SigningCertificate carries the signer's certificate (signer → initiator).
type SigningCertificate struct {
	// Certificates has one entry in practice; the initiator uses the first.
	Certificates []CertificateInfo
}

// CertificateInfo is a signing certificate and its issuers.
type CertificateInfo struct {
	// Certificate is the DER leaf certificate the signature verifies against.
	Certificate []byte
	// Chain holds DER issuer certificates, leaf's issuer first, root last. It is
	// always encoded, as [] when empty, because rcodesign's initiator requires it.
	Chain [][]byte
}

// SignRequest asks for a signature over Message, the raw bytes to sign (for code
// signing, the DER of the CMS signed attributes), not a digest.
type SignRequest struct {
	Message []byte
}

// Signature answers a SignRequest.
type Signature struct {
	// Message echoes the signed bytes (rcodesign's initiator ignores it).
	Message []byte
	// Signature is PKCS#1 v1.5 for RSA, ASN.1 DER for ECDSA, 64 raw bytes for Ed25519.
	Signature []byte
	// AlgorithmOID is the signature algorithm, carried as a base64 DER OID TLV.
	AlgorithmOID asn1.ObjectIdentifier
}

// Type implements Message.
func (*Ping) Type() string { return TypePing }

// Type implements Message.
func (*Pong) Type() string { return TypePong }

// Type implements Message.
func (*RequestSigningCertificate) Type() string { return TypeRequestSigningCertificate }

// Type implements Message.
func (*SigningCertificate) Type() string { return TypeSigningCertificate }

// Type implements Message.
func (*SignRequest) Type() string { return TypeSignRequest }

// Type implements Message.
func (*Signature) Type() string { return TypeSignature }

func (*Ping) payload() (any, error)                      { return nil, nil }
func (*Pong) payload() (any, error)                      { return nil, nil }
func (*RequestSigningCertificate) payload() (any, error) { return nil, nil }

// JSON shapes, field order as rcodesign's serde structs.
type (
	certPayload struct {
		Certificates []certJSON `json:"certificates"`
	}
	certJSON struct {
		Certificate []byte   `json:"certificate"`
		Chain       [][]byte `json:"chain"`
	}
	signRequestPayload struct {
		Message []byte `json:"message"`
	}
	signaturePayload struct {
		Message      []byte `json:"message"`
		Signature    []byte `json:"signature"`
		AlgorithmOID []byte `json:"algorithm_oid"`
	}
)

func (m *SigningCertificate) payload() (any, error) {
	if len(m.Certificates) == 0 || len(m.Certificates) > MaxCertificates {
		return nil, fmt.Errorf("signing-certificate needs 1 to %d certificates, has %d", MaxCertificates, len(m.Certificates))
	}
	p := certPayload{Certificates: make([]certJSON, len(m.Certificates))}
	for i, c := range m.Certificates {
		if len(c.Certificate) == 0 {
			return nil, fmt.Errorf("signing-certificate entry %d has no certificate", i)
		}
		if len(c.Chain) > MaxChain {
			return nil, fmt.Errorf("signing-certificate entry %d has %d chain certificates, limit %d", i, len(c.Chain), MaxChain)
		}
		p.Certificates[i] = certJSON{Certificate: c.Certificate, Chain: append([][]byte{}, c.Chain...)}
	}
	return p, nil
}

func (m *SignRequest) payload() (any, error) {
	if len(m.Message) == 0 {
		return nil, errors.New("sign-request with an empty message")
	}
	return signRequestPayload{Message: m.Message}, nil
}

func (m *Signature) payload() (any, error) {
	oid, err := MarshalOID(m.AlgorithmOID)
	if err != nil {
		return nil, err
	}
	if len(m.Signature) == 0 {
		return nil, errors.New("signature message with an empty signature")
	}
	return signaturePayload{Message: nonNil(m.Message), Signature: m.Signature, AlgorithmOID: oid}, nil
}

// nonNil keeps an absent byte field encoding as "" rather than null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Marshal returns the compact JSON rcodesign writes for m.
func Marshal(m Message) ([]byte, error) {
	p, err := m.payload()
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	b, err := json.Marshal(struct {
		Type    string `json:"type"`
		Payload any    `json:"payload"`
	}{m.Type(), p})
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("peer: %s message of %d bytes exceeds the %d-byte limit", m.Type(), len(b), MaxSize)
	}
	return b, nil
}

// Unmarshal decodes one message. Every error wraps ErrInvalid.
func Unmarshal(b []byte) (Message, error) {
	m, err := unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, nil
}

func unmarshal(b []byte) (Message, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", len(b), MaxSize)
	}
	top, err := object(b)
	if err != nil {
		return nil, err
	}
	var typ string
	if err := str(top, "type", &typ); err != nil {
		return nil, err
	}
	payload, hasPayload := top["payload"]
	if hasPayload && string(payload) == "null" {
		hasPayload = false
	}
	switch typ {
	case TypePing:
		return &Ping{}, nil
	case TypePong:
		return &Pong{}, nil
	case TypeRequestSigningCertificate:
		return &RequestSigningCertificate{}, nil
	case TypeSigningCertificate, TypeSignRequest, TypeSignature:
	default:
		return nil, fmt.Errorf("unknown message type %s", quote(typ))
	}
	if !hasPayload {
		return nil, fmt.Errorf("%s message has no payload", quote(typ))
	}
	p, err := object(payload)
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", quote(typ), err)
	}
	switch typ {
	case TypeSigningCertificate:
		return decodeSigningCertificate(p)
	case TypeSignRequest:
		var m SignRequest
		if err := b64(p, "message", &m.Message); err != nil {
			return nil, err
		}
		if len(m.Message) == 0 {
			return nil, errors.New("sign-request with an empty message")
		}
		return &m, nil
	case TypeSignature:
		var m Signature
		var oid []byte
		if err := b64(p, "message", &m.Message); err != nil {
			return nil, err
		}
		if err := b64(p, "signature", &m.Signature); err != nil {
			return nil, err
		}
		if len(m.Signature) == 0 {
			return nil, errors.New("signature message with an empty signature")
		}
		if err := b64(p, "algorithm_oid", &oid); err != nil {
			return nil, err
		}
		if m.AlgorithmOID, err = ParseOID(oid); err != nil {
			return nil, fmt.Errorf("algorithm_oid: %w", err)
		}
		return &m, nil
	}
	return nil, fmt.Errorf("unknown message type %s", quote(typ))
}

func decodeSigningCertificate(p map[string]json.RawMessage) (*SigningCertificate, error) {
	raw, ok := p["certificates"]
	if !ok {
		return nil, errors.New(`signing-certificate: missing field "certificates"`)
	}
	entries, err := array(raw, MaxCertificates)
	if err != nil {
		return nil, fmt.Errorf("signing-certificate: certificates: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("signing-certificate carries no certificate")
	}
	var m SigningCertificate
	for i, e := range entries {
		obj, err := object(e)
		if err != nil {
			return nil, fmt.Errorf("signing-certificate: certificates[%d]: %w", i, err)
		}
		var ci CertificateInfo
		if err := b64(obj, "certificate", &ci.Certificate); err != nil {
			return nil, fmt.Errorf("signing-certificate: certificates[%d]: %w", i, err)
		}
		if len(ci.Certificate) == 0 {
			return nil, fmt.Errorf("signing-certificate: certificates[%d]: empty certificate", i)
		}
		if rawChain, ok := obj["chain"]; ok && string(rawChain) != "null" {
			chain, err := array(rawChain, MaxChain)
			if err != nil {
				return nil, fmt.Errorf("signing-certificate: certificates[%d].chain: %w", i, err)
			}
			for j, c := range chain {
				der, err := b64String(c)
				if err != nil || len(der) == 0 {
					return nil, fmt.Errorf("signing-certificate: certificates[%d].chain[%d]: not a base64 certificate", i, j)
				}
				ci.Chain = append(ci.Chain, der)
			}
		}
		m.Certificates = append(m.Certificates, ci)
	}
	return &m, nil
}

// object decodes a JSON object into its members, matching keys exactly and
// rejecting duplicates and trailing data.
func object(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		key, _ := tok.(string)
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("duplicate field %s", quote(key))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		m[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

// array decodes a JSON array of at most max elements.
func array(b []byte, max int) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil || a == nil {
		return nil, errors.New("not a JSON array")
	}
	if len(a) > max {
		return nil, fmt.Errorf("%d entries, limit %d", len(a), max)
	}
	return a, nil
}

func str(obj map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := obj[key]
	if !ok {
		return fmt.Errorf("missing field %s", quote(key))
	}
	if err := json.Unmarshal(raw, dst); err != nil || (len(raw) > 0 && raw[0] != '"') {
		return fmt.Errorf("field %s is not a string", quote(key))
	}
	return nil
}

func b64(obj map[string]json.RawMessage, key string, dst *[]byte) error {
	raw, ok := obj[key]
	if !ok {
		return fmt.Errorf("missing field %s", quote(key))
	}
	b, err := b64String(raw)
	if err != nil {
		return fmt.Errorf("field %s: %v", quote(key), err)
	}
	*dst = b
	return nil
}

// strictStd is the standard padded alphabet with canonical trailing bits, what
// rcodesign's base64 STANDARD engine accepts.
var strictStd = base64.StdEncoding.Strict()

func b64String(raw json.RawMessage) ([]byte, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, errors.New("not a string")
	}
	b, err := strictStd.DecodeString(s)
	if err != nil {
		return nil, errors.New("not standard padded base64")
	}
	return b, nil
}

// quote renders attacker-supplied text short and escaped for error messages.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}
