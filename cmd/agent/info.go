package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/internal/cli"
)

func printInfoCommand(std *streams) *cli.Command {
	return &cli.Command{
		Name:      "print-signature-info",
		Summary:   "describe the signature structures of Mach-O files (YAML or JSON)",
		UsageLine: "[--json] FILE...",
		Help: `Describe every signature structure in the given Mach-O files: the SuperBlob
index, each CodeDirectory (version, flags, identifier, team ID, hashes, runtime
version, executable segment), the requirements in text form, the entitlements,
and the CMS signature (certificates, signer, signed attributes, time-stamp).

Nothing is verified here; use "agent verify" for that.

Examples:

  agent print-signature-info ./mytool
  agent print-signature-info --json ./mytool | jq '.[0].slices[0].signature.code_directories[0].flags'`,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			asJSON := fs.Bool("json", false, "print JSON instead of YAML")
			return func(ctx context.Context, args []string) error {
				if len(args) == 0 {
					return cli.Usagef("want at least one FILE")
				}
				var infos []*codesign.Info
				for _, p := range args {
					info, err := codesign.DescribeFile(p)
					if err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					info.Path = p
					infos = append(infos, info)
				}
				if *asJSON {
					enc := json.NewEncoder(std.out)
					enc.SetIndent("", "  ")
					return enc.Encode(infos)
				}
				b, err := marshalYAML(infos)
				if err != nil {
					return err
				}
				_, err = std.out.Write(b)
				return err
			}
		},
	}
}

func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func diffCommand(std *streams) *cli.Command {
	return &cli.Command{
		Name:      "diff-signatures",
		Summary:   "show how the signatures of two Mach-O files differ",
		UsageLine: "A B",
		Help: `Compare the signature descriptions (as printed by print-signature-info) of two
files and print the differing lines: "-" for A, "+" for B, " " for context.
The exit status is 0 when the signatures are identical and 1 when they differ,
like diff(1).

Example:

  agent diff-signatures mytool.apple mytool.farsign`,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			return func(ctx context.Context, args []string) error {
				if len(args) != 2 {
					return cli.Usagef("want two files A and B, got %d arguments", len(args))
				}
				var texts [2][]string
				for i, p := range args {
					info, err := codesign.DescribeFile(p)
					if err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					info.Path = "" // compared separately: only the content matters
					b, err := marshalYAML(info)
					if err != nil {
						return err
					}
					texts[i] = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				}
				diff := lineDiff(texts[0], texts[1])
				changed := 0
				for _, d := range diff {
					if d[0] != ' ' {
						changed++
					}
				}
				if changed == 0 {
					fmt.Fprintf(std.out, "the signatures of %s and %s are identical\n", args[0], args[1])
					return nil
				}
				fmt.Fprintf(std.out, "--- %s\n+++ %s\n", args[0], args[1])
				for _, d := range diff {
					fmt.Fprintln(std.out, d)
				}
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("the signatures differ (%d changed lines)", changed)}
			}
		},
	}
}

// lineDiff returns a minimal line diff of a and b (longest common subsequence),
// each line prefixed with ' ', '-' or '+'. Signature descriptions are a few
// hundred lines, so the quadratic table is small.
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, " "+a[i])
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "-"+a[i])
			i++
		default:
			out = append(out, "+"+b[j])
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, "-"+a[i])
	}
	for ; j < m; j++ {
		out = append(out, "+"+b[j])
	}
	return out
}

// extractKinds are the --data values of extract, with what they produce.
var extractKinds = []struct{ name, what string }{
	{"code-directory", "the primary CodeDirectory blob (binary; openssl's -content for the CMS)"},
	{"cms", "the CMS signature, DER/BER as embedded (binary; empty for ad hoc)"},
	{"certificates", "the certificates in the CMS signature (PEM)"},
	{"requirements", "the RequirementSet blob (binary)"},
	{"requirements-text", "the requirements in Apple's requirement language"},
	{"entitlements", "the entitlements XML plist"},
	{"entitlements-der", "the entitlements in Apple's DER encoding (binary)"},
	{"superblob", "the whole embedded signature SuperBlob, without padding (binary)"},
	{"blob", "the raw blob in the SuperBlob slot given by --slot (binary)"},
}

func extractCommand(std *streams) *cli.Command {
	var kinds []string
	for _, k := range extractKinds {
		kinds = append(kinds, fmt.Sprintf("  %-18s %s", k.name, k.what))
	}
	return &cli.Command{
		Name:      "extract",
		Summary:   "extract a raw signature structure (CodeDirectory, CMS, requirements, entitlements)",
		UsageLine: "--data KIND [flags] FILE",
		Help: `Write one structure of a Mach-O's embedded signature to stdout (or --output).
For a universal binary, pick the architecture with --arch or --slice (default:
the first slice).

KIND is one of:

` + strings.Join(kinds, "\n") + `

Examples:

  # Check a CMS signature with openssl, independently of farsign.
  agent extract --data cms mytool > cms.der
  agent extract --data code-directory mytool > cd.bin
  openssl cms -verify -inform DER -in cms.der -content cd.bin -binary -noverify

  agent extract --data entitlements --arch x86_64 universal-tool
  agent extract --data blob --slot 0x1000 mytool   # the SHA-256 alternate CodeDirectory`,
		Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			kind := fs.String("data", "", "what to extract (see above)")
			arch := fs.String("arch", "", "architecture `name` in a universal binary (arm64, x86_64, ...)")
			slice := fs.Int("slice", -1, "slice `index` in a universal binary")
			slot := fs.String("slot", "", "SuperBlob `slot` number for --data blob (e.g. 0, 2, 0x1000, 0x10000)")
			output := fs.String("output", "", "write to this `file` instead of stdout")
			fs.StringVar(output, "o", "", "alias of --output (`file`)")
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return cli.Usagef("want one FILE, got %d arguments", len(args))
				}
				if *kind == "" {
					return cli.Usagef("--data is required")
				}
				data, err := extract(args[0], *kind, *arch, *slice, *slot)
				if err != nil {
					return err
				}
				if *output != "" {
					return writeAtomic(*output, data)
				}
				_, err = std.out.Write(data)
				return err
			}
		},
	}
}

func extract(path, kind, arch string, index int, slotArg string) ([]byte, error) {
	known := false
	for _, k := range extractKinds {
		known = known || k.name == kind
	}
	if !known {
		return nil, cli.Usagef("unknown --data %q (run agent extract --help for the list)", kind)
	}
	bin, f, err := openMachO(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sl, err := pickSlice(bin, arch, index)
	if err != nil {
		return nil, err
	}
	sig, err := codesign.ReadSignature(sl.File, sl.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch kind {
	case "code-directory":
		return sig.Primary().Raw, nil
	case "cms":
		return sig.CMS, nil
	case "certificates":
		if len(sig.CMS) == 0 {
			return nil, fmt.Errorf("%s: ad-hoc signature: no certificates", path)
		}
		sd, err := cms.Parse(sig.CMS)
		if err != nil {
			return nil, err
		}
		var b []byte
		for _, c := range sd.Certificates {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b, nil
	case "requirements":
		b, ok := sig.SuperBlob.Find(blob.SlotRequirements)
		if !ok {
			return nil, fmt.Errorf("%s: the signature has no requirements", path)
		}
		return b, nil
	case "requirements-text":
		if sig.Requirements == nil {
			return nil, fmt.Errorf("%s: the signature has no requirements", path)
		}
		s := sig.Requirements.String()
		if s != "" {
			s += "\n"
		}
		return []byte(s), nil
	case "entitlements":
		if sig.Entitlements == nil {
			return nil, fmt.Errorf("%s: the signature has no entitlements", path)
		}
		return sig.Entitlements, nil
	case "entitlements-der":
		if sig.EntitlementsDER == nil {
			return nil, fmt.Errorf("%s: the signature has no DER entitlements", path)
		}
		return sig.EntitlementsDER, nil
	case "superblob":
		return sig.Raw, nil
	case "blob":
		if slotArg == "" {
			return nil, cli.Usagef("--data blob needs --slot")
		}
		n, err := strconv.ParseUint(slotArg, 0, 32)
		if err != nil {
			return nil, cli.Usagef("--slot %q is not a number", slotArg)
		}
		b, ok := sig.SuperBlob.Find(blob.Slot(n))
		if !ok {
			return nil, fmt.Errorf("%s: the signature has no blob in slot %#x", path, n)
		}
		return b, nil
	}
	return nil, cli.Usagef("unknown --data %q", kind)
}

func pickSlice(bin *macho.Binary, arch string, index int) (macho.Slice, error) {
	if arch != "" && index >= 0 {
		return macho.Slice{}, cli.Usagef("give --arch or --slice, not both")
	}
	var names []string
	for i, sl := range bin.Slices {
		name := macho.CPUName(sl.Arch.CPU, sl.Arch.SubCPU)
		names = append(names, name)
		if (arch != "" && name == arch) || (arch == "" && index == i) || (arch == "" && index < 0 && i == 0) {
			if sl.File == nil {
				return macho.Slice{}, fmt.Errorf("slice %d (%s) is not a Mach-O", i, name)
			}
			return sl, nil
		}
	}
	if arch != "" {
		return macho.Slice{}, fmt.Errorf("no %s slice (the file has: %s)", arch, strings.Join(names, ", "))
	}
	return macho.Slice{}, fmt.Errorf("no slice %d (the file has %d)", index, len(bin.Slices))
}

// writeAtomic writes data to path through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
