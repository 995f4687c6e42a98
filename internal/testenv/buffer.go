package testenv

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a test and the goroutines it starts (a session's
// logger, a child process's output copier) may use at once: tests read logs while
// the code under test is still writing them.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
