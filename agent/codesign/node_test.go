package codesign

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/farsign/farsign/agent/cms"
	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/agent/macho"
	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/testtsa"
)

// Re-signing Apple's signature of node: ad hoc it keeps what the old signature
// said (identifier, hardened runtime and its version, entitlements) and only
// changes who signed; with a key it becomes a verified CMS signature.
func TestResignNode(t *testing.T) {
	if testing.Short() {
		t.Skip("signs the 147 MB node fixture")
	}
	node := fixtures.NodeDarwinArm64(t)
	_, apple := readSig(t, node)
	acd := apple.Primary()

	dir := t.TempDir()
	adhoc := filepath.Join(dir, "node-adhoc")
	if _, err := SignFile(context.Background(), node, adhoc, Options{}); err != nil {
		t.Fatal(err)
	}
	_, ours := readSig(t, adhoc)
	cd := ours.Primary()
	if cd.Identifier != "node" || cd.Flags != blob.FlagRuntime|blob.FlagAdhoc || cd.Runtime != acd.Runtime || macho.Version(cd.Runtime).String() != "15.5.0" {
		t.Errorf("identifier %q flags %#x runtime %#x (Apple's: %#x)", cd.Identifier, cd.Flags, cd.Runtime, acd.Runtime)
	}
	if cd.TeamID != "" {
		t.Errorf("ad-hoc signature kept team ID %q", cd.TeamID)
	}
	if !bytes.Equal(ours.EntitlementsDER, apple.EntitlementsDER) {
		t.Error("entitlements were not kept")
	}
	// Same code, same pages: everything after page 0 hashes as Apple's did.
	for i := 1; i < len(cd.Code); i++ {
		if !bytes.Equal(cd.Code[i], acd.Code[i]) {
			t.Fatalf("page %d differs from Apple's", i)
		}
	}
	mustVerify(t, adhoc, VerifyOptions{})

	tsa := testtsa.New(t)
	id := selfSigned(t, applecert.RSA2048)
	signed := filepath.Join(dir, "node-signed")
	if _, err := SignFile(context.Background(), adhoc, signed, Options{Identity: id, Timestamper: &cms.HTTPTimestamper{URL: tsa.URL()}}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, signed, VerifyOptions{Roots: pool(id.Certificate), TimestampRoots: tsa.Roots()})
}
