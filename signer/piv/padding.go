package piv

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// A PIV card's RSA "decrypt" is the bare private-key operation: it returns the
// encoded block, and removing the padding is the host's job. decodeOAEP does that
// in constant time with respect to the block's contents and with one
// undifferentiated error, so that whoever submits ciphertexts (in publickey0, the
// initiator, through a relay) learns nothing from how decoding fails (Manger's
// attack). PKCS #1 v1.5 decryption is deliberately not offered: nothing in
// farsign needs it, and it is the classic padding oracle (Bleichenbacher).

var errDecryption = errors.New("RSA decryption failed: the ciphertext was not encrypted for this key")

// unpad removes the RSA-OAEP padding described by opts from em, the k-byte
// output of the raw RSA operation.
func unpad(em []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok {
		return nil, fmt.Errorf("smart card keys decrypt RSA-OAEP only (got options %T)", opts)
	}
	mgf := o.MGFHash
	if mgf == 0 {
		mgf = o.Hash
	}
	return decodeOAEP(o.Hash, mgf, o.Label, em)
}

// decodeOAEP is EME-OAEP decoding (RFC 8017 §7.1.2 step 3). publickey0 uses
// SHA-256 for both the label hash and MGF1, with an empty label (spec §3.4).
func decodeOAEP(hash, mgfHash crypto.Hash, label, em []byte) ([]byte, error) {
	if !hash.Available() || !mgfHash.Available() {
		return nil, errors.New("OAEP hash function not available")
	}
	hLen := hash.Size()
	k := len(em)
	if k < 2*hLen+2 {
		return nil, errDecryption
	}
	em = append([]byte(nil), em...)
	h := hash.New()
	h.Write(label)
	lHash := h.Sum(nil)

	firstByteIsZero := subtle.ConstantTimeByteEq(em[0], 0)
	seed := em[1 : hLen+1]
	db := em[hLen+1:]
	mgf1XOR(seed, mgfHash, db)
	mgf1XOR(db, mgfHash, seed)
	lHashGood := subtle.ConstantTimeCompare(lHash, db[:hLen])

	// DB = lHash' || PS (zeros) || 0x01 || M. Find the 0x01 without branching
	// on secret data.
	rest := db[hLen:]
	lookingForIndex, index, invalid := 1, 0, 0
	for i := range rest {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, errDecryption
	}
	return rest[index+1:], nil
}

// mgf1XOR XORs out with MGF1(seed) (RFC 8017 §B.2.1).
func mgf1XOR(out []byte, hash crypto.Hash, seed []byte) {
	var counter [4]byte
	h := hash.New()
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest := h.Sum(nil)
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
}
