package transfer

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// progressInterval is the least time between two progress events of one blob.
const progressInterval = 100 * time.Millisecond

// reporter serializes and throttles progress events.
type reporter struct {
	mu   sync.Mutex
	fn   func(Event)
	last map[digest.Digest]time.Time
}

func newReporter(fn func(Event)) *reporter {
	return &reporter{fn: fn, last: map[digest.Digest]time.Time{}}
}

func (r *reporter) emit(desc ocispec.Descriptor, st Status, completed int64, err error) {
	if r == nil || r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st == StatusProgress {
		now := time.Now()
		if now.Sub(r.last[desc.Digest]) < progressInterval && completed < desc.Size {
			return
		}
		r.last[desc.Digest] = now
	}
	r.fn(Event{
		Digest: desc.Digest, MediaType: desc.MediaType, Title: desc.Annotations[ocispec.AnnotationTitle],
		Total: desc.Size, Completed: completed, Status: st, Err: err,
	})
}

// counter counts the bytes of one blob moved so far and reports them.
type counter struct {
	n    atomic.Int64
	desc ocispec.Descriptor
	rep  *reporter
}

// startCounter returns the counter of a download that continues from off
// (0 for a fresh one) and reports its start: StatusResumed at off, or
// StatusStart.
func startCounter(desc ocispec.Descriptor, rep *reporter, off int64) *counter {
	c := &counter{desc: desc, rep: rep}
	c.n.Store(off)
	if off > 0 {
		rep.emit(desc, StatusResumed, off, nil)
	} else {
		rep.emit(desc, StatusStart, 0, nil)
	}
	return c
}

func (c *counter) add(n int) {
	v := c.n.Add(int64(n))
	c.rep.emit(c.desc, StatusProgress, v, nil)
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r io.Reader
	c *counter
}

func (cr countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 {
		cr.c.add(n)
	}
	return n, err
}

type countingReadCloser struct {
	countingReader
	io.Closer
}
