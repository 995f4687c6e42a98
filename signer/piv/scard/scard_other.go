//go:build !(cgo && (linux || darwin || freebsd || openbsd))

package scard

// Card is unavailable on this platform or without cgo.
type Card struct{}

// Connect always fails on this platform.
func Connect(string) (*Card, error) { return nil, ErrUnsupported }

// Transmit always fails on this platform.
func (*Card) Transmit([]byte) ([]byte, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Card) Close() error { return nil }

// Present always fails on this platform.
func Present(string) (bool, error) { return false, ErrUnsupported }

// ListReaders always fails on this platform.
func ListReaders() ([]string, error) { return nil, ErrUnsupported }
