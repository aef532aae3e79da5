package transfer

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Options configures Copy. The zero value uses the defaults noted.
type Options struct {
	// Concurrency is how many blobs move at once; ≤0 means 3.
	Concurrency int
	// Parts is how many ranged GETs download one large blob at once; 1
	// disables ranged downloads. ≤0 means 4, except from a loopback registry,
	// where one stream is faster (see bench/transfer.sh) and ≤0 means 1.
	Parts int
	// MinParallelSize is the smallest blob, in bytes, downloaded with
	// parallel ranged GETs; smaller blobs stream. ≤0 means 128 MiB.
	MinParallelSize int64
	// PartSize is the size in bytes of each ranged GET of a parallel
	// download. The Parts workers take ranges in order, so the verified
	// prefix grows at the full download rate and the hash finishes right
	// after the last byte. ≤0 means 16 MiB.
	PartSize int64
	// Retries is how many times a failed request is retried; 0 means 5,
	// negative means none.
	Retries int
	// Backoff is the first retry delay, doubled on each attempt up to 30s;
	// ≤0 means 500ms.
	Backoff time.Duration
	// MountFrom lists repositories on the destination registry that may hold
	// the blobs already (cross-repository mount when pushing). Copy adds the
	// source repository itself when both are on one registry.
	MountFrom []string
	// Progress, if set, receives progress events. Calls are serialized (never
	// concurrent) and must return quickly.
	Progress func(Event)
}

// DefaultOptions is the zero Options with its defaults spelled out.
var DefaultOptions = Options{Concurrency: 3, Parts: 4, MinParallelSize: 128 << 20, PartSize: 16 << 20, Retries: 5, Backoff: 500 * time.Millisecond}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultOptions.Concurrency
	}
	if o.Parts <= 0 {
		o.Parts = DefaultOptions.Parts
	}
	if o.MinParallelSize <= 0 {
		o.MinParallelSize = DefaultOptions.MinParallelSize
	}
	if o.PartSize <= 0 {
		o.PartSize = DefaultOptions.PartSize
	}
	if o.Retries == 0 {
		o.Retries = DefaultOptions.Retries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultOptions.Backoff
	}
	return o
}

// Status is the state of one blob in a transfer.
type Status string

// Blob states, in the order a blob passes them.
const (
	// StatusStart means the blob started moving.
	StatusStart Status = "start"
	// StatusProgress reports bytes moved so far.
	StatusProgress Status = "progress"
	// StatusResumed means an earlier partial download was picked up at Completed bytes.
	StatusResumed Status = "resumed"
	// StatusRetry means a request failed and is retried (Err says why).
	StatusRetry Status = "retry"
	// StatusExists means the target had the blob; nothing moved.
	StatusExists Status = "exists"
	// StatusMounted means the registry mounted the blob from another repository.
	StatusMounted Status = "mounted"
	// StatusDone means the blob is at the target, verified.
	StatusDone Status = "done"
)

// Event is one progress report about one blob.
type Event struct {
	// Digest and MediaType identify the blob.
	Digest    digest.Digest
	MediaType string
	// Title is the file name from the org.opencontainers.image.title
	// annotation, if any.
	Title string
	// Total is the blob's size in bytes; Completed how many are at the target.
	Total, Completed int64
	// Status says what happened.
	Status Status
	// Err is the failure being retried (StatusRetry only).
	Err error
}
