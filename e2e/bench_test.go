package e2e

import (
	"bytes"
	"github.com/farsign/farsign/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
)

// BenchmarkRemoteSignNode signs Apple's 147 MB node executable through a
// remote signer — `agent sign --remote-...`, `signer remote-sign` and
// `relay serve`, three processes on loopback — and, in the same loop, locally
// with the same RSA key and settings (`agent sign --pem-source`), so the
// ratio is measured on the same machine at the same moment.
//
// Reported per operation:
//
//	remote-s    the remote signing: from starting the agent until both the
//	            agent and the signer have exited
//	local-s     the local signing's wall time (agent start to exit)
//	x-local     remote / local
//	join-s      session created → signer joined and sent its certificate
//	            (here: starting the signer process; in real life, a person)
//	sig-wait-s  time the agent waited for signatures (request → verified answer)
//
//	go test -run '^$' -bench RemoteSignNode -benchtime 5x -count 2 ./e2e/
func BenchmarkRemoteSignNode(b *testing.B) {
	if testing.Short() {
		b.Skip("uses the 147 MB node fixture")
	}
	bin := binaries(b)
	agent, signer, relay := filepath.Join(bin, "agent"), filepath.Join(bin, "signer"), filepath.Join(bin, "relay")
	node := fixtures.NodeDarwinArm64(b)
	st, err := os.Stat(node)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileDeveloperIDApplication, Algorithm: applecert.RSA2048, TeamID: "BENCH12345", PersonName: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	idPEM, certPEM := filepath.Join(dir, "id.pem"), filepath.Join(dir, "cert.pem")
	if err := keyfile.WritePEM(idPEM, keyfile.Identity{Signer: key, Certificate: cert}); err != nil {
		b.Fatal(err)
	}
	if err := keyfile.WriteCertificatesPEM(certPEM, cert); err != nil {
		b.Fatal(err)
	}
	relayURL := startRelayServe(b, relay, dir)
	env := append(os.Environ(), "GITHUB_STEP_SUMMARY=", "BENCH_SECRET=benchmark secret")

	for _, scheme := range []struct {
		name               string
		agentArgs, sigArgs []string
	}{
		{"publickey0", []string{"--remote-public-key-pem-file", certPEM}, nil},
		{"sharedsecret0", []string{"--remote-shared-secret-env", "BENCH_SECRET"}, []string{"--remote-shared-secret-env", "BENCH_SECRET", "--remote-signing-url", relayURL}},
	} {
		b.Run(scheme.name, func(b *testing.B) {
			var local, total, join, wait time.Duration
			b.SetBytes(st.Size())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// Deleting a 147 MB output costs tens of milliseconds: never
				// inside a measurement.
				localOut := filepath.Join(dir, "node.local")
				os.Remove(localOut)
				os.Remove(filepath.Join(dir, "node.remote"))
				start := time.Now()
				runBench(b, env, agent, "sign", "--pem-source", idPEM, "--timestamp-url", "none", "--quiet", node, localOut)
				local += time.Since(start)
				b.StartTimer()

				r := remoteSign(b, env, agent, signer, dir, node, relayURL, scheme.agentArgs, scheme.sigArgs)
				total += r.total
				join += r.join
				wait += r.wait
			}
			n := float64(b.N)
			b.ReportMetric(total.Seconds()/n, "remote-s")
			b.ReportMetric(local.Seconds()/n, "local-s")
			b.ReportMetric(float64(total)/float64(local), "x-local")
			b.ReportMetric(join.Seconds()/n, "join-s")
			b.ReportMetric(wait.Seconds()/n, "sig-wait-s")
		})
	}
}

type remoteTimes struct{ total, join, wait time.Duration }

var (
	readyRE = regexp.MustCompile(`(?m)^remote signer ready after ([0-9.]+)s`)
	waitRE  = regexp.MustCompile(`(?m), ([0-9.]+)s of it waiting for the remote signer's 1 signature\(s\)$`)
)

// remoteSign runs one remote signing of in: the agent, and the signer once
// the agent has written the join string.
func remoteSign(b *testing.B, env []string, agent, signer, dir, in, relayURL string, agentArgs, signerArgs []string) remoteTimes {
	b.Helper()
	out, join := filepath.Join(dir, "node.remote"), filepath.Join(dir, "join.txt")
	os.Remove(join)
	args := append([]string{"sign", "--remote-signing-url", relayURL, "--timestamp-url", "none", "--join-string-file", join}, agentArgs...)
	a := exec.Command(agent, append(args, in, out)...)
	a.Env = env
	var aerr bytes.Buffer
	a.Stderr = &aerr
	start := time.Now()
	testenv.DieWithParent(a)
	if err := a.Start(); err != nil {
		b.Fatal(err)
	}
	for {
		if fi, err := os.Stat(join); err == nil && fi.Size() > 0 {
			break
		}
		if time.Since(start) > time.Minute {
			a.Process.Kill()
			a.Wait()
			b.Fatalf("no join string after a minute:\n%s", aerr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	s := exec.Command(signer, append([]string{"remote-sign", "--pem-source", filepath.Join(dir, "id.pem"), "--sjs-path", join}, signerArgs...)...)
	s.Env = env
	sout, serr := s.CombinedOutput()
	aerrWait := a.Wait()
	total := time.Since(start)
	if serr != nil || aerrWait != nil {
		b.Fatalf("signer: %v\n%s\nagent: %v\n%s", serr, sout, aerrWait, aerr.String())
	}
	return remoteTimes{total: total, join: seconds(b, readyRE, aerr.String()), wait: seconds(b, waitRE, aerr.String())}
}

func seconds(b *testing.B, re *regexp.Regexp, log string) time.Duration {
	b.Helper()
	m := re.FindStringSubmatch(log)
	if m == nil {
		b.Fatalf("%v not found in the agent's output:\n%s", re, log)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(f * float64(time.Second))
}

func runBench(b *testing.B, env []string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startRelayServe runs `relay serve` on a free loopback port until the
// benchmark ends and returns its URL.
func startRelayServe(b testing.TB, relay, dir string) string {
	b.Helper()
	addr := filepath.Join(dir, "relay.url")
	cmd := exec.Command(relay, "serve", "--listen", "127.0.0.1:0", "--addr-file", addr, "--log-level", "warn")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	testenv.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(addr); err == nil && len(data) > 0 {
			return strings.TrimSpace(string(data))
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	b.Fatalf("relay serve did not start:\n%s", logs.String())
	return ""
}
