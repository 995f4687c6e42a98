package codesign

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/farsign/farsign/agent/codesign/blob"
	"github.com/farsign/farsign/internal/fixtures"
)

// BenchmarkHashPagesNode hashes node's 35,582 pages with SHA-256 on all cores
// and, in the same run, with one sequential crypto/sha256 pass over the same
// bytes; x-sha256 is the ratio of the two.
//
//	go test -run '^$' -bench HashPagesNode ./agent/codesign/
func BenchmarkHashPagesNode(b *testing.B) {
	if testing.Short() {
		b.Skip("uses the 147 MB node fixture")
	}
	f, err := os.Open(fixtures.NodeDarwinArm64(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(st.Size())
	var hashTotal, seqTotal time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		start := time.Now()
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
			b.Fatal(err)
		}
		seqTotal += time.Since(start)
		b.StartTimer()
		start = time.Now()
		if _, err := HashPages(context.Background(), f, st.Size(), PageSize, []blob.HashType{blob.HashSHA256}, 0); err != nil {
			b.Fatal(err)
		}
		hashTotal += time.Since(start)
	}
	b.ReportMetric(float64(hashTotal)/float64(seqTotal), "x-sha256")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "workers")
}

// BenchmarkSignFileNode signs node ad hoc in-process (parse, plan, hash while
// copying, write, fsync, rename), with the same sequential-SHA-256 baseline.
func BenchmarkSignFileNode(b *testing.B) {
	if testing.Short() {
		b.Skip("uses the 147 MB node fixture")
	}
	node := fixtures.NodeDarwinArm64(b)
	st, _ := os.Stat(node)
	out := filepath.Join(b.TempDir(), "node")
	b.SetBytes(st.Size())
	var signTotal, seqTotal time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.Remove(out)
		f, _ := os.Open(node)
		start := time.Now()
		h := sha256.New()
		io.Copy(h, f)
		seqTotal += time.Since(start)
		f.Close()
		b.StartTimer()
		start = time.Now()
		if _, err := SignFile(context.Background(), node, out, Options{}); err != nil {
			b.Fatal(err)
		}
		signTotal += time.Since(start)
	}
	b.ReportMetric(float64(signTotal)/float64(seqTotal), "x-sha256")
}
