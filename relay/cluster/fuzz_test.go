package cluster

import (
	"strings"
	"testing"
)

// FuzzOwner feeds connection ids, which come from the shared Store and so
// are untrusted, to Owner: it must never panic, and anything it accepts must
// be an id the cluster minted, naming a canonical advertise URL.
func FuzzOwner(f *testing.F) {
	n, err := New(Config{Secret: secret, AdvertiseURL: "http://10.0.0.1:8081"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(n.NewConnID())
	f.Add(n.NewConnID() + "x")
	f.Add("AAAAAAAAAAAAAAAA")
	f.Add("aHR0cDovLzEwLjAuMC4xOjgwODE.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA")
	f.Add("..")
	f.Add(strings.Repeat(".", 600))
	f.Fuzz(func(t *testing.T, id string) {
		owner, err := n.Owner(id)
		if err != nil {
			return
		}
		if got, err := canonicalURL(owner); err != nil || got != owner {
			t.Fatalf("Owner(%q) = %q, not canonical", id, owner)
		}
		head := id[:strings.LastIndexByte(id, '.')]
		if b64.EncodeToString(n.tag(head)) != id[len(head)+1:] {
			t.Fatalf("Owner accepted %q with a wrong tag", id)
		}
	})
}

// FuzzParseAuthorization feeds Authorization headers, read from anyone who
// can reach the cluster listener, to the parser.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=farsign-relay-cluster/20260101/farsign/execute-api/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00")
	f.Add("AWS4-HMAC-SHA256 Credential=x, Credential=y")
	f.Add("Bearer secret")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			return
		}
		if len(a.signature) != 64 || len(a.date) != 8 || len(a.signedHeaders) == 0 || len(a.signedHeaders) > maxSignedHdrs {
			t.Fatalf("accepted %q as %+v", h, a)
		}
	})
}
