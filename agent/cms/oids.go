package cms

import (
	"crypto"
	"encoding/asn1"
)

// Object identifiers used by Apple code signatures and RFC 3161 tokens.
var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}

	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	// Apple's cdhashes: 9.1 is an XML plist of truncated hashes, 9.2 carries the
	// full digests with their algorithm.
	oidAttrAppleCDHashesPlist = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 9, 1}
	oidAttrAppleCDHashes      = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 9, 2}
	oidAttrTimeStampToken     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	oidAttrSigningCertificate = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidAttrSigningCertV2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// digestOIDs maps the digest algorithms CMS verification accepts. SHA-1 is here only
// because real time-stamp authorities (Apple's among them) still sign tokens with it.
var digestOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{oidSHA1, crypto.SHA1},
	{oidSHA256, crypto.SHA256},
	{oidSHA384, crypto.SHA384},
	{oidSHA512, crypto.SHA512},
}

func hashForOID(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, d := range digestOIDs {
		if d.oid.Equal(oid) {
			return d.hash, true
		}
	}
	return 0, false
}

func oidForHash(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	for _, d := range digestOIDs {
		if d.hash == h {
			return d.oid, true
		}
	}
	return nil, false
}

// sigAlg describes a signature algorithm identifier found in a SignerInfo.
type sigAlg struct {
	oid  asn1.ObjectIdentifier
	kind keyKind
	// hash is the digest the algorithm implies; 0 means "take it from the
	// SignerInfo's digestAlgorithm" (plain rsaEncryption, as Apple's TSA writes).
	hash crypto.Hash
	name string
}

type keyKind int

const (
	keyRSA keyKind = iota + 1
	keyECDSA
	keyEd25519
)

var sigAlgs = []sigAlg{
	{oidRSAEncryption, keyRSA, 0, "rsaEncryption"},
	{oidSHA1WithRSA, keyRSA, crypto.SHA1, "sha1WithRSAEncryption"},
	{oidSHA256WithRSA, keyRSA, crypto.SHA256, "sha256WithRSAEncryption"},
	{oidSHA384WithRSA, keyRSA, crypto.SHA384, "sha384WithRSAEncryption"},
	{oidSHA512WithRSA, keyRSA, crypto.SHA512, "sha512WithRSAEncryption"},
	{oidECDSAWithSHA1, keyECDSA, crypto.SHA1, "ecdsa-with-SHA1"},
	{oidECDSAWithSHA256, keyECDSA, crypto.SHA256, "ecdsa-with-SHA256"},
	{oidECDSAWithSHA384, keyECDSA, crypto.SHA384, "ecdsa-with-SHA384"},
	{oidECDSAWithSHA512, keyECDSA, crypto.SHA512, "ecdsa-with-SHA512"},
	{oidEd25519, keyEd25519, 0, "Ed25519"},
}

func sigAlgForOID(oid asn1.ObjectIdentifier) (sigAlg, bool) {
	for _, a := range sigAlgs {
		if a.oid.Equal(oid) {
			return a, true
		}
	}
	return sigAlg{}, false
}
