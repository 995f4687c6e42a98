package codesign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/codesign/entitlements"
	"github.com/farsign/farsign/agent/codesign/requirement"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/agent/macho/machotest"
)

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signBytes signs in-memory input as if it were the file name.
func signBytes(t testing.TB, in []byte, name string, opts Options) ([]byte, *Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, name, opts)
	if err != nil {
		t.Fatalf("Sign(%s): %v", name, err)
	}
	if int64(out.Len()) != res.Size {
		t.Fatalf("wrote %d bytes, result says %d", out.Len(), res.Size)
	}
	return out.Bytes(), res
}

func flagsPtr(v uint32) *uint32 { return &v }

func mustEntitlements(t testing.TB, xml string) *entitlements.Value {
	t.Helper()
	v, err := entitlements.ParseXML([]byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRcodesignGoldens signs the §12 fixture (rcodesign debug-create-macho) with
// the options of rcodesign's own tests and compares whole-file SHA-256 hashes and
// sizes with rcodesign's published outputs (tests/cmd/*.trycmd). These are the
// signatures that need no key; sign-cms.trycmd's, made with rcodesign's own
// test key, are matched in TestSignCMSFixedKey as far as a different key allows.
func TestRcodesignGoldens(t *testing.T) {
	exe := machotest.Exe(machotest.Options{})
	entsOne := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>get-task-allow</key>
	<true/>
</dict>
</plist>`
	entsFive := `<plist version="1.0"><dict>
<key>get-task-allow</key><true/><key>run-unsigned-code</key><true/>
<key>com.apple.private.cs.debugger</key><true/><key>dynamic-codesigning</key><true/>
<key>com.apple.private.skip-library-validation</key><true/></dict></plist>`
	info := mustEntitlements(t, `<plist><dict>
<key>CFBundleName</key><string>MyApp</string>
<key>CFBundlePackageType</key><string>APPL</string>
<key>CFBundleDisplayName</key><string>MyApp</string>
<key>CFBundleIdentifier</key><string>com.example.mybundle</string>
<key>CFBundleVersion</key><string>1.0.0</string>
<key>CFBundleSignature</key><string>sig</string>
<key>CFBundleExecutable</key><string>MyApp</string>
</dict></plist>`).XML()
	if got := sha256hex(info); got != "0a5902dc8e47f490d03889d3593d17bddbf79e6c1f79494e20dd28f9459effa5" {
		t.Fatalf("Info.plist fixture sha256 %s", got)
	}
	devReq, err := requirement.ParseSetText(`(anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] exists) and (certificate leaf[field.1.2.840.113635.100.6.1.14] exists or certificate leaf[field.1.2.840.113635.100.6.1.13] exists)`)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string // trycmd it comes from
		input  []byte
		file   string
		opts   Options
		size   int
		sha256 string
		cd     string // sha256 of the primary CodeDirectory, when published
	}{
		{"sign", exe, "exe", Options{}, 22544,
			"2adcd25a21eb14fc3f7b5ca4f5465b515f21939dd9843de5bf7d9e3f7acfa9db",
			"23fc7207e52f23c0f6d2317dbb92cf9eff2aca8fe61ac241900d48be8f46cf5c"},
		{"sign-digests sha1", exe, "exe", Options{Digests: []blob.HashType{blob.HashSHA1}}, 22544,
			"cdc8997042da0032519411d23d678ca453932182c9544393268da381e0205246",
			"908cc01763cfb3f0479a270998b2b7e349d15d0ef6cf88dfbdf8c7b6f8f61bba"},
		{"sign-digests sha1+sha256", exe, "exe", Options{Digests: []blob.HashType{blob.HashSHA1, blob.HashSHA256}}, 23568,
			"3e0e54e0e236947019d851382ebb65c3c4b7939e1c601dc981b8e88fa0e49ef7",
			"518625e9dc0e38bf4f9be3dfb17070091a091e3643dc89215ae17feeac66069b"},
		{"sign-digests min OS 10.11.3", machotest.Exe(machotest.Options{MinOS: 10<<16 | 11<<8 | 3}), "exe", Options{}, 23568,
			"55c1916f7737031457bd6cf921e72de7a6060e6a5416cb398de373a429df35cd",
			"0e4ae94cde8c28c6d0e1c156618602d99ad13661de603df665262a126987eaf2"},
		{"sign-digests no targeting", machotest.Exe(machotest.Options{NoTargeting: true}), "exe", Options{}, 23568,
			"188bcc6537912c2fa3b7db65d6ccec0053d0d680b35a0a3a18c7cfe0bee56687",
			"fa9a4ab20228af9d52544f9f021e8d3bd02b9a8bc38ebcd3787b167d41189ffc"},
		{"sign-binary-identifier", exe, "exe", Options{Identifier: "my-binary"}, 22544,
			"8ecbc87f8c751be9a6048b546f52eb817a34d1ac3839cc7763a14445a2068140",
			"8b710dbe31e6e2eecf6d8eaa6451a8f6afdf6a9cb0baa2f88cc0474ee5138889"},
		{"sign-code-signature-flags", exe, "exe", Options{Flags: flagsPtr(blob.FlagHost | blob.FlagForceHard | blob.FlagForceKill | blob.FlagForceExpiration | blob.FlagRuntime | blob.FlagLinkerSigned)}, 22544,
			"3017c61e6fcc2f51a8f617b6e7d942f7018e25c62fbacf40fe9e355fa04dff18",
			"64128ab1178a720c658230df5e9143daebed711fb6879b72741be13dfdb5d6db"},
		{"sign-entitlements get-task-allow", exe, "exe", Options{Entitlements: mustEntitlements(t, entsOne)}, 22544,
			"76362775999fdb91e4ee35c83e8b9b47cf4b30643fb7e1298096cd23e38676d0",
			"6929e7e458738363e16107c68e454ab544ad31e501b5a4223bcf736124a40275"},
		{"sign-entitlements five", exe, "exe", Options{Entitlements: mustEntitlements(t, entsFive)}, 22544,
			"430f7d90ca4ee8032a3449edc4bd653db9be9b25a2134bbfad6372572a45ae49",
			"45935fd888a2c65f4fdb2aec0539d97b8d0048c42e1eb50a9087a6bedd6e1e56"},
		{"sign-macho-info-plist", exe, "exe", Options{InfoPlist: info}, 22544,
			"a060c6c3b1bd72a2d0a8aca5e21d5a91ed7ecbcfdc7d0201a87ef53ed1a74077",
			"af781f6cf2fe6b3460d436deaf800f0481ae67eaae1681a419fc7e9657da69a4"},
		{"sign-code-requirements", exe, "exe", Options{Requirements: devReq}, 22544,
			"c08fddbfc311ebf3358bc6dca698de84f1eb89ba4dcc6a5aa7a0e214f766909d", ""},
		{"sign-macho-universal", machotest.Universal(exe, machotest.Exe(machotest.Options{Arch: machotest.X86_64})), "exe", Options{}, 59408,
			"70b20ec49527789389cd366af42fbb018551ec96a73d4798fe33d55701695ef3",
			"23fc7207e52f23c0f6d2317dbb92cf9eff2aca8fe61ac241900d48be8f46cf5c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := signBytes(t, tc.input, tc.file, tc.opts)
			if len(out) != tc.size || sha256hex(out) != tc.sha256 {
				t.Errorf("output %d bytes sha256 %s\nwant   %d bytes sha256 %s", len(out), sha256hex(out), tc.size, tc.sha256)
			}
			if tc.cd != "" {
				sig := firstSignature(t, out)
				if got := sha256hex(sig.Primary().Raw); got != tc.cd {
					t.Errorf("CodeDirectory sha256 %s, want %s", got, tc.cd)
				}
			}
		})
	}
}

func firstSignature(t testing.TB, data []byte) *Signature {
	t.Helper()
	bin, err := macho.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	sl := bin.Slices[0]
	sig, err := ReadSignature(sl.File, sl.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// Re-signing keeps identifier, flags and runtime version, exactly as in the
// second halves of rcodesign's sign.trycmd, sign-binary-identifier.trycmd and
// sign-code-signature-flags.trycmd.
func TestRcodesignResignGoldens(t *testing.T) {
	exe := machotest.Exe(machotest.Options{})
	signed, _ := signBytes(t, exe, "exe", Options{})
	again, _ := signBytes(t, signed, "exe.signed", Options{})
	if !bytes.Equal(signed, again) {
		t.Error("re-signing an ad-hoc signature changed it")
	}

	withID, _ := signBytes(t, exe, "exe", Options{Identifier: "my-binary"})
	again, res := signBytes(t, withID, "exe.signed", Options{})
	if got := sha256hex(again); got != "8ecbc87f8c751be9a6048b546f52eb817a34d1ac3839cc7763a14445a2068140" || res.Slices[0].Identifier != "my-binary" {
		t.Errorf("re-signed identifier %q, sha256 %s", res.Slices[0].Identifier, got)
	}

	flagged, _ := signBytes(t, exe, "exe", Options{Flags: flagsPtr(blob.FlagHost | blob.FlagForceHard | blob.FlagForceKill | blob.FlagForceExpiration | blob.FlagRuntime)})
	again, _ = signBytes(t, flagged, "exe.signed", Options{Flags: flagsPtr(blob.FlagHost)})
	if got := sha256hex(again); got != "2f9efe355a16d97141912918e577d4b17aa480d41b977115b75f299d4c32daf5" {
		t.Errorf("re-signed with --code-signature-flags host: sha256 %s", got)
	}
	sig := firstSignature(t, again)
	if cd := sig.Primary(); cd.Version != blob.CDVersionRuntime || cd.Runtime != 11<<16 || cd.Flags != blob.FlagHost|blob.FlagAdhoc {
		t.Errorf("version %#x runtime %#x flags %#x", cd.Version, cd.Runtime, cd.Flags)
	}
}

func TestPathIdentifier(t *testing.T) {
	for in, want := range map[string]string{
		"foo": "foo", "foo.dylib": "foo", "/etc/foo.dylib": "foo", ".foo": "", "123": "123",
		".foo.dylib": ".foo", "123.dylib": "123", "123.42": "123.42", "foo1": "foo1",
		"foo1.dylib": "foo1", "foo1.2.dylib": "foo1", "foo1.2": "foo1", "foo1.2.3.4.dylib": "foo1",
		"foo.1": "foo.1", "foo.1.2.3": "foo.1", "foo.1.2.dylib": "foo.1", "foo.1.dylib": "foo.1",
		"exe.signed": "exe",
	} {
		if got := PathIdentifier(in); got != want {
			t.Errorf("PathIdentifier(%q) = %q, want %q", in, got, want)
		}
	}
}
