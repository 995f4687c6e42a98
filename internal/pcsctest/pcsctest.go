// Package pcsctest plugs virtual PIV cards (internal/vpiv) into the real PC/SC
// stack for a test: Debian's pcscd with the vsmartcard vpcd reader driver.
//
// The point is to test farsign's smart-card code the way it runs on a user's
// machine, through libpcsclite and pcscd, rather than against a mock. That needs
// system state a test cannot own alone, so this package:
//
//   - starts pcscd if it is not running (it is the system daemon; it stays up
//     afterwards, as it would under systemd);
//   - serialises access to the vpcd slots with an exclusive flock on a file in
//     os.TempDir(). vpcd has a fixed number of slots on fixed ports, and
//     `go test ./...` runs the test binaries of different packages in parallel;
//     the lock is held from Start until the test's cleanup, so a second binary
//     (or a parallel test in the same binary) waits its turn instead of seeing
//     someone else's card;
//   - waits until pcscd reports each card present before returning, and until
//     it is gone again on cleanup.
//
// A missing pcscd or vpcd goes through testenv.Missing: skipped locally, a failure
// under CI=true.
package pcsctest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/vpiv"
	"github.com/farsign/farsign/signer/piv/scard"
)

const (
	pcscdSocket   = "/run/pcscd/pcscd.comm"
	pcscdPIDFile  = "/run/pcscd/pcscd.pid"
	vpcdConfig    = "/etc/reader.conf.d/vpcd"
	readerPrefix  = "Virtual PCD"
	installHint   = "apt-get install pcscd vsmartcard-vpcd libpcsclite-dev"
	readyTimeout  = 15 * time.Second
	removeTimeout = 5 * time.Second
	// MaxCards is the number of slots Debian's vpcd driver opens.
	MaxCards = 2
)

// LockPath is the file whose flock serialises use of the vpcd slots across test
// binaries.
var LockPath = filepath.Join(os.TempDir(), "farsign-vpcd.lock")

// NewCard creates a card from cfg, plugs it in and returns it with the PC/SC
// reader name to open it by.
func NewCard(t testing.TB, cfg vpiv.Config) (*vpiv.Card, string) {
	t.Helper()
	card, err := vpiv.New(cfg)
	if err != nil {
		t.Fatalf("pcsctest: new card: %v", err)
	}
	return card, Start(t, card)[0]
}

// Start plugs cards (at most MaxCards) into the vpcd slots and returns their
// reader names in the same order. The cards stay plugged in until the test ends.
// Call Start once per test, with every card the test needs: the slot lock is not
// re-entrant.
func Start(t testing.TB, cards ...*vpiv.Card) []string {
	t.Helper()
	if len(cards) == 0 || len(cards) > MaxCards {
		t.Fatalf("pcsctest: Start needs 1 to %d cards, got %d", MaxCards, len(cards))
	}
	port := requireVPCD(t)
	unlock := lock(t)
	t.Cleanup(unlock)
	ensurePCSCD(t)

	readers := vpcdReaders(t)
	if len(readers) < len(cards) {
		t.Fatalf("pcsctest: pcscd lists %d vpcd readers (%q), need %d", len(readers), readers, len(cards))
	}
	names := make([]string, len(cards))
	for i, card := range cards {
		reader := readers[i]
		if err := waitAbsent(reader); err != nil {
			t.Fatalf("pcsctest: reader %q: %v (a card from an earlier test is still plugged in?)", reader, err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i))
		r, err := vpiv.Start(addr, card)
		if err != nil {
			t.Fatalf("pcsctest: %v", err)
		}
		t.Cleanup(func() {
			if err := r.Stop(); err != nil {
				t.Errorf("pcsctest: virtual card on %s: %v", reader, err)
			}
			if err := waitAbsent(reader); err != nil {
				t.Logf("pcsctest: %s: %v", reader, err)
			}
		})
		if err := waitPresent(reader, card.Serial()); err != nil {
			t.Fatalf("pcsctest: card on %q never became usable: %v", reader, err)
		}
		names[i] = reader
	}
	return names
}

// requireVPCD checks that the vpcd driver is installed and returns the TCP port of
// its first slot.
func requireVPCD(t testing.TB) int {
	t.Helper()
	if _, err := scard.ListReaders(); errors.Is(err, scard.ErrUnsupported) {
		testenv.Missing(t, "this test binary was built without cgo; the PC/SC tests need cgo and libpcsclite-dev")
	}
	testenv.LookPath(t, "pcscd", installHint)
	f, err := os.Open(vpcdConfig)
	if err != nil {
		testenv.Missing(t, "vsmartcard-vpcd is not installed ("+vpcdConfig+" missing; "+installHint+")")
	}
	defer f.Close()
	port := 0x8c7b // Debian's default CHANNELID
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "CHANNELID" {
			if p, err := strconv.ParseInt(fields[1], 0, 32); err == nil {
				port = int(p)
			}
		}
	}
	return port
}

// ensurePCSCD starts pcscd if nothing answers on its socket, and waits until it
// lists the vpcd readers.
func ensurePCSCD(t testing.TB) {
	t.Helper()
	if !socketUp() {
		// Without arguments pcscd daemonises once its socket is ready; the parent's
		// exit status tells whether it could start (it needs to write /run/pcscd).
		out, err := exec.Command("pcscd").CombinedOutput()
		if err != nil {
			testenv.Missing(t, fmt.Sprintf("pcscd is not running and could not be started (%v: %s); run it as root or start the pcscd service", err, strings.TrimSpace(string(out))))
		}
	}
	if waitVPCD(readyTimeout) {
		return
	}
	// A pcscd that runs but has lost its vpcd readers (seen once on a
	// long-lived development machine; or a pcscd started before vpcd was
	// installed) cannot recover by itself. On a CI machine, which the suite
	// owns, restart it once; elsewhere say what to do.
	if os.Getenv("CI") == "true" {
		t.Logf("pcsctest: pcscd lists no %q reader; restarting it", readerPrefix)
		if err := restartPCSCD(); err != nil {
			testenv.Missing(t, "pcscd lists no \""+readerPrefix+"\" reader and could not be restarted: "+err.Error())
		}
		if waitVPCD(readyTimeout) {
			return
		}
	}
	testenv.Missing(t, "pcscd runs but lists no \""+readerPrefix+"\" reader: restart pcscd after installing vsmartcard-vpcd")
}

// waitVPCD polls until pcscd answers and lists a vpcd reader, for at most d.
func waitVPCD(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if socketUp() {
			if readers, err := listVPCD(); err == nil && len(readers) > 0 {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func socketUp() bool {
	c, err := net.DialTimeout("unix", pcscdSocket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func listVPCD() ([]string, error) {
	all, err := scard.ListReaders()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range all {
		if strings.HasPrefix(r, readerPrefix) {
			out = append(out, r)
		}
	}
	sort.Strings(out) // "… 00 00" is the slot on the first port
	return out, nil
}

func vpcdReaders(t testing.TB) []string {
	t.Helper()
	readers, err := listVPCD()
	if err != nil {
		t.Fatalf("pcsctest: listing readers: %v", err)
	}
	return readers
}

// waitPresent polls until the reader holds a PIV card with the expected serial.
// pcscd notices a new vpcd card on its next presence poll (about 400 ms). The
// check talks to the card through scard rather than piv-go: piv.Open leaks its
// exclusive connection when SELECT fails, which would lock the reader.
func waitPresent(reader string, serial uint32) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		got, err := readSerial(reader)
		if err == nil && got == serial {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("serial %d, want %d", got, serial)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return last
}

func readSerial(reader string) (uint32, error) {
	card, err := scard.Connect(reader)
	if err != nil {
		return 0, err
	}
	defer card.Close()
	for _, apdu := range [][]byte{{0x00, 0xa4, 0x04, 0x00, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08}, {0x00, 0xf8, 0x00, 0x00}} {
		r, err := card.Transmit(apdu)
		if err != nil {
			return 0, err
		}
		if len(r) < 2 || r[len(r)-2] != 0x90 {
			return 0, fmt.Errorf("card answered %x", r)
		}
		if apdu[1] == 0xf8 && len(r) == 6 {
			return binary.BigEndian.Uint32(r), nil
		}
	}
	return 0, errors.New("no serial number")
}

// waitAbsent polls until pcscd no longer sees a card in the reader.
func waitAbsent(reader string) error {
	deadline := time.Now().Add(removeTimeout)
	for time.Now().Before(deadline) {
		present, err := scard.Present(reader)
		if err != nil {
			return err
		}
		if !present {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("card still present")
}
