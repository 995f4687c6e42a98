//go:build cgo || windows

package piv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	ykpiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/farsign/farsign/signer/piv/scard"
)

// Device is an open PIV card, held exclusively until Close (as piv-go does, so
// no other program can interleave commands with a signature in progress).
type Device struct {
	reader  string
	serial  uint32
	version ykpiv.Version
	yk      *ykpiv.YubiKey
}

func openReader(reader string) (*Device, error) {
	if err := probePIV(reader); err != nil {
		return nil, err
	}
	yk, err := ykpiv.Open(reader)
	if err != nil {
		return nil, err
	}
	serial, err := yk.Serial()
	if err != nil {
		yk.Close()
		return nil, fmt.Errorf("reading serial number: %w", err)
	}
	return &Device{reader: reader, serial: serial, version: yk.Version(), yk: yk}, nil
}

// OpenDevice opens the PIV card with the given serial number, or the only
// connected card when serial is 0.
func OpenDevice(serial uint32) (*Device, error) {
	readers, err := ykpiv.Cards()
	if err != nil {
		return nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	var found []*Device
	var busy []string
	for _, r := range readers {
		d, err := openReader(r)
		if err != nil {
			if errors.Is(err, scard.SharingViolation) || strings.Contains(err.Error(), "other connections outstanding") {
				busy = append(busy, r)
			}
			continue
		}
		if serial != 0 && d.serial != serial {
			d.Close()
			continue
		}
		found = append(found, d)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var hint string
		if len(busy) > 0 {
			hint = fmt.Sprintf(" (the card in %q is in use by another program: close YubiKey Manager, gpg-agent/scdaemon or any other signer)", strings.Join(busy, `", "`))
		}
		if serial != 0 {
			return nil, fmt.Errorf("no smart card with serial %d is connected%s", serial, hint)
		}
		if hint != "" {
			return nil, errors.New(ErrNoDevice.Error() + hint)
		}
		return nil, ErrNoDevice
	}
	e := &MultipleDevicesError{}
	for _, d := range found {
		e.Serials = append(e.Serials, d.serial)
		d.Close()
	}
	return nil, e
}

// Scan describes every connected card: serial, firmware version, and for each of
// the four PIV slots its certificate and key metadata. A reader whose card cannot
// be read as a PIV device is listed with Err set.
func Scan() ([]DeviceInfo, error) {
	readers, err := ykpiv.Cards()
	if err != nil {
		return nil, fmt.Errorf("listing smart card readers: %w", err)
	}
	var out []DeviceInfo
	for _, r := range readers {
		d, err := openReader(r)
		if errors.Is(err, scard.NoSmartcard) {
			continue // an empty reader is not a device
		}
		if err != nil {
			out = append(out, DeviceInfo{Reader: r, Err: err})
			continue
		}
		info := DeviceInfo{Reader: r, Serial: d.serial, Version: d.Version()}
		for _, s := range Slots {
			si, err := d.SlotInfo(s)
			if err != nil {
				si = SlotInfo{Slot: s, CertificateErr: err}
			}
			info.Slots = append(info.Slots, si)
		}
		d.Close()
		out = append(out, info)
	}
	return out, nil
}

// probePIV checks that reader holds a card answering the PIV SELECT before piv-go
// opens it: piv.Open leaks an exclusive connection when that SELECT fails, which
// would lock the reader (a bank card, a card being pulled out) until the process
// exits.
func probePIV(reader string) error {
	card, err := scard.Connect(reader)
	if errors.Is(err, scard.ErrUnsupported) {
		return nil // Windows: piv-go's own PC/SC code, no probe available
	}
	if err != nil {
		return err
	}
	defer card.Close()
	if _, err := (&rawPIV{card}).do(0xa4, 0x04, 0x00, aidPIV); err != nil {
		return fmt.Errorf("not a PIV card: %w", err)
	}
	return nil
}

var aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}

// Reader returns the PC/SC reader name of the card.
func (d *Device) Reader() string { return d.reader }

// Serial returns the card's serial number.
func (d *Device) Serial() uint32 { return d.serial }

// Version returns the PIV applet (YubiKey firmware) version.
func (d *Device) Version() string {
	return fmt.Sprintf("%d.%d.%d", d.version.Major, d.version.Minor, d.version.Patch)
}

// Close releases the card.
func (d *Device) Close() error {
	if d.yk == nil {
		return nil
	}
	err := d.yk.Close()
	d.yk = nil
	return err
}

func (d *Device) open() (*ykpiv.YubiKey, error) {
	if d.yk == nil {
		return nil, errors.New("smart card connection is closed")
	}
	return d.yk, nil
}

func (s Slot) piv() ykpiv.Slot {
	switch s {
	case SlotAuthentication:
		return ykpiv.SlotAuthentication
	case SlotSignature:
		return ykpiv.SlotSignature
	case SlotKeyManagement:
		return ykpiv.SlotKeyManagement
	case SlotCardAuthentication:
		return ykpiv.SlotCardAuthentication
	}
	return ykpiv.Slot{Key: uint32(s)}
}

// SlotInfo reads a slot's certificate and key metadata. An empty slot is not an
// error: Certificate and Key are nil.
func (d *Device) SlotInfo(s Slot) (SlotInfo, error) {
	yk, err := d.open()
	if err != nil {
		return SlotInfo{}, err
	}
	si := SlotInfo{Slot: s}
	cert, err := yk.Certificate(s.piv())
	switch {
	case err == nil:
		si.Certificate = cert
	case errors.Is(err, ykpiv.ErrNotFound):
	default:
		si.CertificateErr = err
	}
	si.Key, _ = d.keyInfo(s)
	return si, nil
}

// keyInfo returns the slot's key metadata from GET METADATA (YubiKey 5.3+), or
// the policies recorded in an attestation (4.3+). It returns nil, nil when the
// slot is empty, and an error when the card cannot say.
func (d *Device) keyInfo(s Slot) (*KeyInfo, error) {
	yk, err := d.open()
	if err != nil {
		return nil, err
	}
	ki, err := yk.KeyInfo(s.piv())
	if err == nil {
		return &KeyInfo{
			Algorithm:   algorithmName(ki.Algorithm),
			PINPolicy:   pinPolicyName(ki.PINPolicy),
			TouchPolicy: touchPolicyName(ki.TouchPolicy),
			Generated:   ki.Origin == ykpiv.OriginGenerated,
			Public:      ki.PublicKey,
		}, nil
	}
	if errors.Is(err, ykpiv.ErrNotFound) {
		return nil, nil
	}
	// Older firmware: the attestation certificate carries the policies.
	att, aerr := yk.Attest(s.piv())
	if aerr != nil {
		if errors.Is(aerr, ykpiv.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading key metadata: %w", err)
	}
	ki2 := &KeyInfo{Generated: true, Public: att.PublicKey, Algorithm: publicKeyAlgorithm(att.PublicKey)}
	for _, ext := range att.Extensions {
		if ext.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}) && len(ext.Value) == 2 {
			ki2.PINPolicy = pinPolicyName(map[byte]ykpiv.PINPolicy{1: ykpiv.PINPolicyNever, 2: ykpiv.PINPolicyOnce, 3: ykpiv.PINPolicyAlways}[ext.Value[0]])
			ki2.TouchPolicy = touchPolicyName(map[byte]ykpiv.TouchPolicy{1: ykpiv.TouchPolicyNever, 2: ykpiv.TouchPolicyAlways, 3: ykpiv.TouchPolicyCached}[ext.Value[1]])
		}
	}
	return ki2, nil
}

// VerifyPIN checks pin with the card now, so a command can fail before it
// changes anything. A wrong PIN is a *WrongPINError with the attempts left; a
// blocked one wraps ErrPINBlocked.
func (d *Device) VerifyPIN(pin string) error {
	yk, err := d.open()
	if err != nil {
		return err
	}
	if err := yk.VerifyPIN(pin); err != nil {
		var ae ykpiv.AuthErr
		if errors.As(err, &ae) {
			if ae.Retries == 0 {
				return fmt.Errorf("smart card %d: %w", d.serial, ErrPINBlocked)
			}
			return &WrongPINError{Retries: ae.Retries}
		}
		return err
	}
	return nil
}

// PINRetries returns the PIN attempts left, or -1 when the card does not say
// (it answers "already verified" instead while the PIN is verified).
func (d *Device) PINRetries() int {
	yk, err := d.open()
	if err != nil {
		return -1
	}
	n, err := yk.Retries()
	if err != nil {
		return -1
	}
	return n
}

// GenerateKey creates a new key pair in slot on the card, replacing any key
// there, and returns its public key. mgmKey is the management key (nil for the
// factory default).
func (d *Device) GenerateKey(mgmKey []byte, s Slot, alg Algorithm, pin PINPolicy, touch TouchPolicy) (crypto.PublicKey, error) {
	yk, err := d.open()
	if err != nil {
		return nil, err
	}
	var a ykpiv.Algorithm
	switch alg {
	case RSA2048:
		a = ykpiv.AlgorithmRSA2048
	case P256:
		a = ykpiv.AlgorithmEC256
	default:
		return nil, fmt.Errorf("unsupported algorithm %q: use rsa2048 or p256", alg)
	}
	pp, tp := policies(s, pin, touch)
	pub, err := yk.GenerateKey(mgmKeyOrDefault(mgmKey), s.piv(), ykpiv.Key{Algorithm: a, PINPolicy: pp, TouchPolicy: tp})
	if err != nil {
		return nil, mgmErr("generating a key", err)
	}
	return pub, nil
}

// ImportKey stores an existing private key (RSA-2048 or ECDSA P-256) in slot.
// The key can then never be exported again, but it also existed outside the card
// before: prefer GenerateKey where the certificate authority allows it.
func (d *Device) ImportKey(mgmKey []byte, s Slot, key crypto.Signer, pin PINPolicy, touch TouchPolicy) error {
	yk, err := d.open()
	if err != nil {
		return err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() != 2048 {
			return fmt.Errorf("cannot import a %d-bit RSA key: PIV cards take RSA-2048", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("cannot import an ECDSA %s key: use P-256", k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("cannot import a %T key into a smart card: use RSA-2048 or ECDSA P-256", key)
	}
	pp, tp := policies(s, pin, touch)
	if err := yk.SetPrivateKeyInsecure(mgmKeyOrDefault(mgmKey), s.piv(), key, ykpiv.Key{PINPolicy: pp, TouchPolicy: tp}); err != nil {
		return mgmErr("importing the key", err)
	}
	return nil
}

// SetCertificate stores cert as the slot's certificate.
func (d *Device) SetCertificate(mgmKey []byte, s Slot, cert *x509.Certificate) error {
	yk, err := d.open()
	if err != nil {
		return err
	}
	if err := yk.SetCertificate(mgmKeyOrDefault(mgmKey), s.piv(), cert); err != nil {
		return mgmErr("storing the certificate", err)
	}
	return nil
}

func mgmKeyOrDefault(k []byte) []byte {
	if k == nil {
		return DefaultManagementKey
	}
	return k
}

// mgmErr explains a failed management-key authentication, the usual reason a
// card refuses to generate or import.
func mgmErr(what string, err error) error {
	if strings.Contains(err.Error(), "authenticating with management key") {
		return fmt.Errorf("%s: the card rejected the management key (if it is not the factory default, pass it hex-encoded in an environment variable named by --management-key-env): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func policies(s Slot, pin PINPolicy, touch TouchPolicy) (ykpiv.PINPolicy, ykpiv.TouchPolicy) {
	pin, touch = ResolvePolicies(s, pin, touch)
	pp := map[PINPolicy]ykpiv.PINPolicy{PINNever: ykpiv.PINPolicyNever, PINOnce: ykpiv.PINPolicyOnce, PINAlways: ykpiv.PINPolicyAlways}[pin]
	tp := map[TouchPolicy]ykpiv.TouchPolicy{TouchNever: ykpiv.TouchPolicyNever, TouchAlways: ykpiv.TouchPolicyAlways, TouchCached: ykpiv.TouchPolicyCached}[touch]
	return pp, tp
}

func pinPolicyName(p ykpiv.PINPolicy) PINPolicy {
	switch p {
	case ykpiv.PINPolicyNever:
		return PINNever
	case ykpiv.PINPolicyOnce:
		return PINOnce
	case ykpiv.PINPolicyAlways:
		return PINAlways
	case ykpiv.PINPolicyMatchOnce:
		return "match-once"
	case ykpiv.PINPolicyMatchAlways:
		return "match-always"
	}
	return ""
}

func touchPolicyName(p ykpiv.TouchPolicy) TouchPolicy {
	switch p {
	case ykpiv.TouchPolicyNever:
		return TouchNever
	case ykpiv.TouchPolicyAlways:
		return TouchAlways
	case ykpiv.TouchPolicyCached:
		return TouchCached
	}
	return ""
}

func algorithmName(a ykpiv.Algorithm) string {
	return map[ykpiv.Algorithm]string{
		ykpiv.AlgorithmEC256: "p256", ykpiv.AlgorithmEC384: "p384", ykpiv.AlgorithmEd25519: "ed25519",
		ykpiv.AlgorithmRSA1024: "rsa1024", ykpiv.AlgorithmRSA2048: "rsa2048", ykpiv.AlgorithmRSA3072: "rsa3072",
		ykpiv.AlgorithmRSA4096: "rsa4096", ykpiv.AlgorithmX25519: "x25519",
	}[a]
}

func publicKeyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return map[string]string{"P-256": "p256", "P-384": "p384"}[k.Curve.Params().Name]
	}
	return fmt.Sprintf("%T", pub)
}
