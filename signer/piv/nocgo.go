//go:build !cgo && !windows

package piv

import (
	"context"
	"crypto"
	"crypto/x509"

	"github.com/farsign/farsign/signer/keysource"
)

// This build has no PC/SC access (piv-go needs cgo outside Windows). The API is
// the same so the signer still compiles, for example when cross-compiling with
// CGO_ENABLED=0; every entry point reports ErrUnsupported.

// Open reports ErrUnsupported.
func Open(context.Context, Options) (keysource.Key, error) { return nil, ErrUnsupported }

// Scan reports ErrUnsupported.
func Scan() ([]DeviceInfo, error) { return nil, ErrUnsupported }

// Device is unavailable in this build.
type Device struct{}

// OpenDevice reports ErrUnsupported.
func OpenDevice(uint32) (*Device, error) { return nil, ErrUnsupported }

// Reader is unavailable in this build.
func (*Device) Reader() string { return "" }

// Serial is unavailable in this build.
func (*Device) Serial() uint32 { return 0 }

// Version is unavailable in this build.
func (*Device) Version() string { return "" }

// Close does nothing.
func (*Device) Close() error { return nil }

// SlotInfo reports ErrUnsupported.
func (*Device) SlotInfo(Slot) (SlotInfo, error) { return SlotInfo{}, ErrUnsupported }

// GenerateKey reports ErrUnsupported.
func (*Device) GenerateKey([]byte, Slot, Algorithm, PINPolicy, TouchPolicy) (crypto.PublicKey, error) {
	return nil, ErrUnsupported
}

// ImportKey reports ErrUnsupported.
func (*Device) ImportKey([]byte, Slot, crypto.Signer, PINPolicy, TouchPolicy) error {
	return ErrUnsupported
}

// SetCertificate reports ErrUnsupported.
func (*Device) SetCertificate([]byte, Slot, *x509.Certificate) error { return ErrUnsupported }

// Signer reports ErrUnsupported.
func (*Device) Signer(context.Context, Slot, crypto.PublicKey, Options) (crypto.Signer, error) {
	return nil, ErrUnsupported
}

// VerifyPIN reports ErrUnsupported.
func (*Device) VerifyPIN(string) error { return ErrUnsupported }

// PINRetries reports -1.
func (*Device) PINRetries() int { return -1 }
