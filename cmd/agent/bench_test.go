package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/farsign/farsign/internal/applecert"
	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/testtsa"
)

const benchAgentEnv = "FARSIGN_BENCH_AGENT"

// run executes a command and returns its wall time and peak RSS.
func run(b *testing.B, env []string, name string, args ...string) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return d, ru.Maxrss * 1024
}

// BenchmarkSignNode signs Apple's 147 MB node binary with the agent command, as
// a separate process, ad hoc and with a local RSA key (with and without a
// time-stamp from a local TSA). Each iteration also runs sha256sum over the same
// file, so the reported x-sha256sum is a ratio measured in the same run, on the
// same (page-cached) data. Reported: MB/s, x-sha256sum and the agent's peak RSS.
//
//	go test -run '^$' -bench SignNode -benchtime 10x ./cmd/agent/
func BenchmarkSignNode(b *testing.B) {
	if testing.Short() {
		b.Skip("uses the 147 MB node fixture")
	}
	node := fixtures.NodeDarwinArm64(b)
	sha256sum := testenv.LookPath(b, "sha256sum", "coreutils")
	st, err := os.Stat(node)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	key, cert, err := applecert.GenerateSelfSigned(applecert.Options{Profile: applecert.ProfileDeveloperIDApplication, Algorithm: applecert.RSA2048, TeamID: "BENCH12345", PersonName: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	idPEM := filepath.Join(dir, "id.pem")
	if err := keyfile.WritePEM(idPEM, keyfile.Identity{Signer: key, Certificate: cert}); err != nil {
		b.Fatal(err)
	}
	tsa := testtsa.New(b)
	self := []string{benchAgentEnv + "=1"}
	// Warm the page cache so both sides read from memory.
	run(b, nil, sha256sum, node)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"adhoc", nil},
		{"rsa-key", []string{"--pem-source", idPEM, "--timestamp-url", "none"}},
		{"rsa-key+tsa", []string{"--pem-source", idPEM, "--timestamp-url", tsa.URL()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out := filepath.Join(dir, "node."+tc.name)
			args := append([]string{"sign", "--quiet"}, tc.args...)
			args = append(args, node, out)
			var signTotal, shaTotal time.Duration
			var peak int64
			b.SetBytes(st.Size())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				d, _ := run(b, nil, sha256sum, node)
				shaTotal += d
				os.Remove(out)
				b.StartTimer()
				d, rss := run(b, self, os.Args[0], args...)
				signTotal += d
				peak = max(peak, rss)
			}
			b.ReportMetric(float64(signTotal)/float64(shaTotal), "x-sha256sum")
			b.ReportMetric(float64(peak)/1e6, "MB-peak-rss")
			b.ReportMetric(float64(st.Size())/1e6/(float64(shaTotal)/float64(b.N)/1e9), "sha256sum-MB/s")
		})
	}
	fmt.Fprintf(os.Stderr, "node: %d bytes, GOMAXPROCS default\n", st.Size())
}
