package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/farsign/farsign/agent/cms/internal/ber"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxChain bounds the certificates Sign embeds and Parse accepts.
const maxChain = 16

// Sign signs signedAttrs (from SignedAttributes) and returns the DER ContentInfo of a
// detached SignedData, the payload of a code signature's CMS blob.
//
// The signature is made with crypto.SignMessage(signer, rand, signedAttrs,
// crypto.SHA256), so a remote crypto.MessageSigner sees the full message it signs
// and can show what it is, while local keys are plain crypto.Signers. The algorithm
// follows the certificate: RSA keys give sha256WithRSAEncryption (PKCS #1 v1.5, what
// Apple verifies), ECDSA keys give ecdsa-with-SHA256.
//
// The returned signature is VERIFIED against cert before it is used: a signer that
// answers with garbage or signs with another key is an error, never an invalid
// signature written into a binary.
//
// ts, when not nil, time-stamps the signature value (RFC 3161); the token is checked
// to cover exactly this signature before it is embedded.
//
// The certificates field holds cert and chain (leaf's issuer first is the natural
// order; the set is written sorted as DER requires). A chain certificate equal to
// cert is dropped.
func Sign(ctx context.Context, signedAttrs []byte, signer crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, ts Timestamper) ([]byte, error) {
	if signer == nil || cert == nil {
		return nil, errors.New("cms: Sign needs a signer and its certificate")
	}
	if _, err := ParseSignedAttributes(signedAttrs); err != nil {
		return nil, fmt.Errorf("cms: refusing to sign: %w", err)
	}
	if len(chain) > maxChain {
		return nil, fmt.Errorf("cms: %d chain certificates; at most %d are supported", len(chain), maxChain)
	}
	sigAlgID, err := signatureAlgorithmFor(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("cms: the signing key does not match the certificate's public key")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(signer, rand.Reader, signedAttrs, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("cms: signing: %w", err)
	}
	if err := CheckSignature(cert, signedAttrs, sig); err != nil {
		return nil, fmt.Errorf("cms: the signer returned a signature that does not verify against the certificate %q: %w", cert.Subject.CommonName, err)
	}

	var unsigned []byte
	if ts != nil {
		token, err := ts.Timestamp(ctx, sig)
		if err != nil {
			return nil, fmt.Errorf("cms: time-stamping: %w", err)
		}
		tst, err := parseTimeStampToken(token)
		if err != nil {
			return nil, fmt.Errorf("cms: time-stamp token: %w", err)
		}
		if err := tst.verifyToken(sig); err != nil {
			return nil, fmt.Errorf("cms: time-stamp token: %w", err)
		}
		unsigned = encodeAttribute(oidAttrTimeStampToken, func(b *cryptobyte.Builder) { b.AddBytes(tst.Token) })
		if unsigned == nil {
			return nil, errors.New("cms: encoding the time-stamp attribute failed")
		}
	}

	certs := [][]byte{cert.Raw}
	for _, c := range chain {
		if c == nil {
			return nil, errors.New("cms: nil certificate in chain")
		}
		if bytes.Equal(c.Raw, cert.Raw) {
			continue
		}
		certs = append(certs, c.Raw)
	}
	certSet, err := encodeSetOf(dedupe(certs))
	if err != nil {
		return nil, err
	}

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					addAlgorithmIdentifier(b, oidSHA256, true)
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // encapContentInfo, detached
					b.AddASN1ObjectIdentifier(oidData)
				})
				// certificates [0] IMPLICIT: the SET's content under a [0] tag.
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddBytes(setContent(certSet))
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerAndSerialNumber
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						addAlgorithmIdentifier(b, oidSHA256, true)
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							b.AddBytes(setContent(signedAttrs))
						})
						addAlgorithmIdentifier(b, sigAlgID.oid, sigAlgID.nullParams)
						b.AddASN1OctetString(sig)
						if unsigned != nil {
							b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddBytes(unsigned)
							})
						}
					})
				})
			})
		})
	})
	return b.Bytes()
}

func dedupe(elems [][]byte) [][]byte {
	var out [][]byte
	for _, e := range elems {
		dup := false
		for _, o := range out {
			if bytes.Equal(e, o) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// setContent strips the tag and length of a DER SET built by this package.
func setContent(set []byte) []byte {
	s := cryptobyte.String(set)
	var content cryptobyte.String
	if !s.ReadASN1(&content, cbasn1.SET) {
		panic("cms: internal error: not a SET")
	}
	return content
}

// addAlgorithmIdentifier writes AlgorithmIdentifier with NULL parameters when
// nullParams is set: Apple and rcodesign write NULL for SHA-256 and RSA, and
// byte-compatibility with rcodesign's output needs them.
func addAlgorithmIdentifier(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, nullParams bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if nullParams {
			b.AddASN1NULL()
		}
	})
}

type signatureAlgorithmID struct {
	oid        asn1.ObjectIdentifier
	nullParams bool
}

// signatureAlgorithmFor picks the CMS signature algorithm for a certificate's key.
func signatureAlgorithmFor(pub crypto.PublicKey) (signatureAlgorithmID, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return signatureAlgorithmID{}, fmt.Errorf("cms: %d-bit RSA key; Apple code signing needs at least 2048 bits", k.N.BitLen())
		}
		return signatureAlgorithmID{oidSHA256WithRSA, true}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return signatureAlgorithmID{}, fmt.Errorf("cms: ECDSA curve %s is not supported (use P-256)", k.Curve.Params().Name)
		}
		// RFC 5758 §3.2: the parameters field of ecdsa-with-SHA256 MUST be absent.
		return signatureAlgorithmID{oidECDSAWithSHA256, false}, nil
	case ed25519.PublicKey:
		return signatureAlgorithmID{}, errors.New("cms: Ed25519 keys are not supported by Apple code signing (use RSA-2048 or ECDSA P-256)")
	default:
		return signatureAlgorithmID{}, fmt.Errorf("cms: unsupported public key type %T", pub)
	}
}

// SignatureAlgorithmOID returns the signature algorithm Sign uses for a certificate's
// public key (sha256WithRSAEncryption or ecdsa-with-SHA256): what a remote signer
// reports as its algorithm_oid.
func SignatureAlgorithmOID(pub crypto.PublicKey) (asn1.ObjectIdentifier, error) {
	a, err := signatureAlgorithmFor(pub)
	if err != nil {
		return nil, err
	}
	return a.oid, nil
}

// CheckSignature reports whether signature is a valid SHA-256 signature of message
// by cert's key, in the form Sign produces (RSA PKCS #1 v1.5, or ASN.1 ECDSA). An
// initiator uses it on every signature a remote signer returns.
func CheckSignature(cert *x509.Certificate, message, signature []byte) error {
	if cert == nil {
		return errors.New("no certificate")
	}
	if _, err := signatureAlgorithmFor(cert.PublicKey); err != nil {
		return err
	}
	digest := sha256.Sum256(message)
	return verifyDigest(cert.PublicKey, crypto.SHA256, digest[:], signature)
}

// verifyDigest checks a signature over a precomputed digest.
func verifyDigest(pub crypto.PublicKey, h crypto.Hash, digest, signature []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, h, digest, signature); err != nil {
			return errors.New("RSA PKCS #1 v1.5 signature does not verify")
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, signature) {
			return errors.New("ECDSA signature does not verify")
		}
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// verifyMessage checks a signature over message with the given key and algorithm.
func verifyMessage(pub crypto.PublicKey, alg sigAlg, h crypto.Hash, message, signature []byte) error {
	if alg.kind == keyEd25519 {
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("signature algorithm %s but the certificate has a %T key", alg.name, pub)
		}
		if !ed25519.Verify(k, message, signature) {
			return errors.New("Ed25519 signature does not verify")
		}
		return nil
	}
	switch pub.(type) {
	case *rsa.PublicKey:
		if alg.kind != keyRSA {
			return fmt.Errorf("signature algorithm %s but the certificate has an RSA key", alg.name)
		}
	case *ecdsa.PublicKey:
		if alg.kind != keyECDSA {
			return fmt.Errorf("signature algorithm %s but the certificate has an ECDSA key", alg.name)
		}
	}
	if !h.Available() {
		return fmt.Errorf("digest %v unavailable", h)
	}
	d := h.New()
	d.Write(message)
	return verifyDigest(pub, h, d.Sum(nil), signature)
}

// normalize turns BER into DER; see package ber.
func normalize(b []byte) ([]byte, error) { return ber.ToDER(b) }
