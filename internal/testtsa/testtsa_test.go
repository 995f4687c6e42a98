package testtsa

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/testenv"
)

// openssl is the client here: it builds the request, and checks the reply against
// the request (imprint, nonce) and the CA.
func TestOpenSSLClient(t *testing.T) {
	bin := testenv.LookPath(t, "openssl", "apt-get install openssl")
	s := New(t)
	s.SetClock(func() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 120e6, time.UTC) })
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	data := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(data, []byte("data to time-stamp"), 0o644); err != nil {
		t.Fatal(err)
	}
	query := filepath.Join(dir, "q.tsq")
	run("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
	reqBody, err := os.ReadFile(query)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.URL(), "application/timestamp-query", bytes.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/timestamp-reply" {
		t.Fatalf("HTTP %d, Content-Type %q", resp.StatusCode, ct)
	}
	replyPath := filepath.Join(dir, "r.tsr")
	if err := os.WriteFile(replyPath, reply, 0o644); err != nil {
		t.Fatal(err)
	}
	text := run("ts", "-reply", "-in", replyPath, "-text")
	for _, want := range []string{"Status: Granted.", "Policy OID: 1.3.6.1.4.1.32473.1.1", "Hash Algorithm: sha256",
		"Time stamp: May  6 07:08:09.12 2031 GMT", "Accuracy: 0x01 seconds", "Nonce: 0x"} {
		if !strings.Contains(text, want) {
			t.Errorf("reply lacks %q:\n%s", want, text)
		}
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.CACertificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// -queryfile checks the imprint and the nonce against the request.
	if out := run("ts", "-verify", "-queryfile", query, "-in", replyPath, "-CAfile", ca); !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify: %s", out)
	}
	if s.Requests() != 1 {
		t.Errorf("Requests() = %d", s.Requests())
	}

	// With BadSignature on, openssl must reject the reply: the fault is real.
	s.SetFault(BadSignature)
	resp, err = http.Post(s.URL(), "application/timestamp-query", bytes.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	bad := filepath.Join(dir, "bad.tsr")
	if err := os.WriteFile(bad, reply, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "ts", "-verify", "-queryfile", query, "-in", bad, "-CAfile", ca).CombinedOutput(); err == nil {
		t.Errorf("openssl accepted a corrupted token:\n%s", out)
	}
}

func TestTSACertificate(t *testing.T) {
	s := New(t)
	c := s.Certificate()
	chains, err := c.Verify(x509.VerifyOptions{Roots: s.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}})
	if err != nil || len(chains[0]) != 2 {
		t.Fatalf("TSA certificate does not verify for time-stamping: %v", err)
	}
	critical := false
	for _, e := range c.Extensions {
		if e.Id.String() == "2.5.29.37" {
			critical = e.Critical
		}
	}
	if !critical || len(c.ExtKeyUsage) != 1 {
		t.Errorf("extended key usage critical=%v usages=%v; RFC 3161 wants exactly timeStamping, critical", critical, c.ExtKeyUsage)
	}
}

func TestRejectsBadRequests(t *testing.T) {
	s := New(t)
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d", resp.StatusCode)
	}
	resp, err = http.Post(s.URL(), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("wrong content type: HTTP %d", resp.StatusCode)
	}
	// A malformed request gets an RFC 3161 rejection (status 2, badRequest).
	resp, err = http.Post(s.URL(), "application/timestamp-query", strings.NewReader("not DER"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasPrefix(body, []byte{0x30}) || !bytes.Contains(body, []byte{0x02, 0x01, 0x02}) || !bytes.Contains(body, []byte("malformed TimeStampReq")) {
		t.Errorf("reply to a malformed request: %x", body)
	}
}

func TestGenTime(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC):                    "20310506070809Z",
		time.Date(2031, 5, 6, 7, 8, 9, 500e6, time.UTC):                "20310506070809.5Z",
		time.Date(2031, 5, 6, 7, 8, 9, 123456, time.UTC):               "20310506070809Z",
		time.Date(2031, 5, 6, 9, 8, 9, 10e6, time.FixedZone("", 7200)): "20310506070809.01Z",
	} {
		if got := genTime(in); got != want {
			t.Errorf("genTime(%v) = %s, want %s", in, got, want)
		}
	}
}

// FuzzParseRequest: the server's request parser must reject junk without panicking,
// and whatever it accepts gets a reply the server can build.
func FuzzParseRequest(f *testing.F) {
	seed := []byte{0x30, 0x34, 0x02, 0x01, 0x01, 0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
		0x04, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	if _, err := parseRequest(seed); err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Add(seed)
	s, err := newServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseRequest(body); err != nil {
			return
		}
		if _, err := s.respond(body, NoFault, time.Now(), 1); err != nil {
			t.Fatalf("accepted request but could not answer it: %v", err)
		}
	})
}
