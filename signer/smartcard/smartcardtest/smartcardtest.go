// Package smartcardtest gives tests of the signer a provisioned smart card: a
// virtual YubiKey (internal/vpiv) plugged into the real pcscd (internal/pcsctest)
// and prepared with the signer's own smartcard-generate-key command, so an
// end-to-end test exercises the same path a user's YubiKey takes.
//
// In Go tests use Insert and Provision. In testscript files, register Setup and
// Commands and use the vcard command:
//
//	vcard insert 12345678            # plug in a factory-fresh card (PIN 123456)
//	env PIN=123456
//	exec signer smartcard-generate-key --smartcard-slot 9c --smartcard-pin-env PIN
//	exec signer remote-sign --smartcard-slot 9c --smartcard-pin-env PIN ...
//	vcard retries 12345678 3         # the card has 3 PIN attempts left
//
// Cards are unplugged when the test (or script) ends. Tests that use cards are
// serialised across packages by pcsctest's lock, so keep them short.
package smartcardtest

import (
	"context"
	"crypto/x509"
	"fmt"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/internal/pcsctest"
	"github.com/farsign/farsign/internal/vpiv"
	"github.com/farsign/farsign/signer/piv"
	"github.com/farsign/farsign/signer/smartcard"
)

// PIN is the PIN of a factory-fresh card.
const PIN = vpiv.DefaultPIN

// Insert plugs in one factory-fresh virtual card per serial number (at most
// pcsctest.MaxCards) for the rest of the test.
func Insert(t testing.TB, serials ...uint32) []*vpiv.Card {
	t.Helper()
	cards := make([]*vpiv.Card, len(serials))
	for i, s := range serials {
		c, err := vpiv.New(vpiv.Config{Serial: s})
		if err != nil {
			t.Fatalf("smartcardtest: %v", err)
		}
		cards[i] = c
	}
	pcsctest.Start(t, cards...)
	return cards
}

// Provision runs `signer smartcard-generate-key --smartcard-slot slot` (in
// process, PIN from an environment variable) on the card with serial, plus any
// extra flags such as "--algorithm", "p256", and returns the self-signed
// certificate the command stored. The test must not be parallel (it sets an
// environment variable).
func Provision(t testing.TB, serial uint32, slot string, extra ...string) *x509.Certificate {
	t.Helper()
	const env = "FARSIGN_SMARTCARDTEST_PIN"
	t.Setenv(env, PIN)
	args := append([]string{"smartcard-generate-key",
		"--smartcard-slot", slot,
		"--smartcard-serial", strconv.FormatUint(uint64(serial), 10),
		"--smartcard-pin-env", env,
		"--person-name", "smartcardtest " + slot,
		"--force",
	}, extra...)
	app := &cli.App{Name: "signer", Commands: smartcard.Commands()}
	if code := app.Run(context.Background(), args); code != 0 {
		t.Fatalf("smartcardtest: signer %v exited with %d", args, code)
	}
	s, err := piv.ParseSlot(slot)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := piv.OpenDevice(serial)
	if err != nil {
		t.Fatalf("smartcardtest: %v", err)
	}
	defer dev.Close()
	info, err := dev.SlotInfo(s)
	if err != nil || info.Certificate == nil {
		t.Fatalf("smartcardtest: slot %s has no certificate after generation (%v)", slot, err)
	}
	return info.Certificate
}

type valuesKey struct{ name string }

var (
	tKey     = valuesKey{"t"}
	cardsKey = valuesKey{"cards"}
)

// Setup prepares a script for the vcard command. Call it from
// testscript.Params.Setup; the scripts must be run with testscript.Run.
func Setup(env *testscript.Env) error {
	tb, ok := env.T().(testing.TB)
	if !ok {
		return fmt.Errorf("smartcardtest: scripts must run under testscript.Run (got %T)", env.T())
	}
	env.Values[tKey] = tb
	env.Values[cardsKey] = map[uint32]*vpiv.Card{}
	return nil
}

// Commands returns the vcard script command (see the package documentation).
func Commands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){"vcard": vcard}
}

func vcard(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("vcard does not support !")
	}
	tb, _ := ts.Value(tKey).(testing.TB)
	cards, _ := ts.Value(cardsKey).(map[uint32]*vpiv.Card)
	if tb == nil || cards == nil {
		ts.Fatalf("vcard: call smartcardtest.Setup from Params.Setup")
	}
	usage := "usage: vcard insert SERIAL [SERIAL] | vcard retries SERIAL N | vcard touches SERIAL N"
	if len(args) < 2 {
		ts.Fatalf("%s", usage)
	}
	var serials []uint32
	for _, a := range args[1:] {
		n, err := strconv.ParseUint(a, 10, 32)
		if err != nil {
			ts.Fatalf("vcard: bad number %q", a)
		}
		serials = append(serials, uint32(n))
	}
	switch args[0] {
	case "insert":
		if len(cards) > 0 {
			ts.Fatalf("vcard insert: insert all cards with one command")
		}
		for i, c := range Insert(tb, serials...) {
			cards[serials[i]] = c
		}
	case "retries", "touches":
		if len(serials) != 2 {
			ts.Fatalf("%s", usage)
		}
		c := cards[serials[0]]
		if c == nil {
			ts.Fatalf("vcard: no card %d inserted", serials[0])
		}
		got := c.PINRetries()
		if args[0] == "touches" {
			got = c.Touches()
		}
		if got != int(serials[1]) {
			ts.Fatalf("vcard: card %d has %s %d, want %d", serials[0], args[0], got, serials[1])
		}
	default:
		ts.Fatalf("%s", usage)
	}
}
