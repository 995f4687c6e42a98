// Package cms builds, parses and verifies the CMS (PKCS #7) SignedData inside an
// Apple code signature: the blob in slot 0x10000 that binds a CodeDirectory to a
// certificate.
//
// Signing is split in two so the private key can live elsewhere:
//
//	attrs, _ := cms.SignedAttributes(primaryCD, cdhashes, time.Now()) // the message
//	der, _ := cms.Sign(ctx, attrs, signer, cert, chain, timestamper)   // signer may be remote
//
// attrs is exactly what the signer signs (RFC 5652 §5.4: the DER of the signed
// attributes as a universal SET), and it is byte-identical to what Apple's codesign
// produces for the same CodeDirectory and time; the SignedData around it has Apple's
// layout field for field (both are tested against the real signature of a published
// Developer ID binary, testdata/node-cms.der). Sign calls
// crypto.SignMessage, so a remote crypto.MessageSigner receives the full message and
// can describe it (ParseSignedAttributes, SignedAttrs.Describe) before signing; and
// Sign verifies the returned signature before it embeds it.
//
// Parsing accepts Apple's BER (indefinite lengths) as well as DER, keeps the signed
// attributes' original bytes, and bounds everything it reads. Verification is split by
// question: Verify (does the signature cover this CodeDirectory?), VerifyTimestamp (is
// the RFC 3161 token genuine and over this signature?) and VerifyChain (is the
// certificate trusted, at a time of the caller's choosing, usually the token's
// GenTime?).
package cms
