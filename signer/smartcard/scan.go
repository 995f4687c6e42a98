package smartcard

import (
	"context"
	"flag"
	"fmt"
	"github.com/farsign/farsign/signer/certinfo"
	"io"
	"os"

	"github.com/farsign/farsign/internal/cli"
	"github.com/farsign/farsign/signer/piv"
)

const scanHelp = `Lists the connected smart cards (YubiKeys and other PIV cards) with their serial
number and firmware version, and for each PIV slot (9a, 9c, 9d, 9e) the key it
holds (type, PIN and touch policies, generated on the card or imported) and its
certificate, analysed as analyze-certificate does. The public key printed for a
slot is what the agent needs with --remote-public-key-pem-file.

Nothing on the card is changed and no PIN is needed.

Examples:
  signer smartcard-scan
  signer smartcard-scan --smartcard-serial 12345678`

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:      "smartcard-scan",
		Summary:   "show connected smart cards and the keys and certificates in their slots",
		UsageLine: "[--smartcard-serial N]",
		Help:      scanHelp,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			var serial uint
			fs.UintVar(&serial, "smartcard-serial", 0, "show only the card with this `serial`")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				devices, err := piv.Scan()
				if err != nil {
					return err
				}
				shown := 0
				for _, d := range devices {
					if serial != 0 && uint(d.Serial) != serial {
						continue
					}
					printDevice(os.Stdout, shown, d)
					shown++
				}
				if shown == 0 {
					if serial != 0 {
						return fmt.Errorf("no smart card with serial %d is connected", serial)
					}
					return piv.ErrNoDevice
				}
				return nil
			}
		},
	}
}

func printDevice(w io.Writer, n int, d piv.DeviceInfo) {
	fmt.Fprintf(w, "Device %d: %s\n", n, d.Reader)
	if d.Err != nil {
		fmt.Fprintf(w, "Device %d: not usable as a PIV card: %v\n\n", n, d.Err)
		return
	}
	fmt.Fprintf(w, "Device %d: Serial: %d\n", n, d.Serial)
	fmt.Fprintf(w, "Device %d: Version: %s\n", n, d.Version)
	for _, s := range d.Slots {
		fmt.Fprintf(w, "Device %d: Slot %s (%s): %s\n", n, s.Slot, s.Slot.Name(), slotSummary(s))
		if s.CertificateErr != nil {
			fmt.Fprintf(w, "    certificate unreadable: %v\n", s.CertificateErr)
		}
		if s.Certificate != nil {
			certinfo.Describe(w, "    ", s.Certificate, nil)
		} else if s.Key != nil && s.Key.Public != nil {
			fmt.Fprintf(w, "    no certificate; public key:\n")
			if spki, err := marshalPublicKey(s.Key.Public); err == nil {
				certinfo.WritePublicKeyPEM(w, "    ", spki)
			}
		}
	}
	fmt.Fprintln(w)
}

func slotSummary(s piv.SlotInfo) string {
	switch {
	case s.Key != nil:
		origin := "imported"
		if s.Key.Generated {
			origin = "generated on the card"
		}
		return fmt.Sprintf("%s key, %s, PIN policy %s, touch policy %s", s.Key.Algorithm, origin, s.Key.PINPolicy, s.Key.TouchPolicy)
	case s.Certificate != nil:
		return "certificate (this card cannot report key details)"
	}
	return "empty"
}
