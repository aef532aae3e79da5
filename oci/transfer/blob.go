package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// errNoRanges means the registry ignored a Range request.
var errNoRanges = errors.New("registry does not serve byte ranges")

// httpStatusError is an unexpected HTTP status from a registry.
type httpStatusError struct {
	code int
	url  string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.url, e.code, http.StatusText(e.code))
}

// retryable reports whether err may go away on another attempt.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.code >= 500 || he.code == http.StatusTooManyRequests || he.code == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrVerify) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNoSpace) ||
		errors.Is(err, oci.ErrInvalidDigest) || errors.Is(err, errNoRanges) || unreachable(err) {
		return false
	}
	return true // connection resets, unexpected EOF, timeouts
}

// unreachable reports whether err says the registry cannot be reached at
// all: its name does not resolve, or nothing listens at its address. Waiting
// does not fix a typo, so these fail at once, as `docker pull` does; a
// connection that breaks once established is retried.
func unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" &&
		(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH))
}

// sleep waits for the backoff of attempt (0-based) or until ctx ends.
func sleep(ctx context.Context, base time.Duration, attempt int) error {
	d := base << attempt
	if d > 30*time.Second || d <= 0 {
		d = 30 * time.Second
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// blobGET requests bytes [start, end] (end < 0: to the end) of a blob.
func blobGET(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, start, end int64) (*http.Response, error) {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	ref := repo.Reference
	url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, ref.Host(), ref.Repository, desc.Digest)
	ctx = auth.AppendRepositoryScope(ctx, ref, auth.ActionPull)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if start > 0 || end >= 0 {
		r := "bytes=" + strconv.FormatInt(start, 10) + "-"
		if end >= 0 {
			r += strconv.FormatInt(end, 10)
		}
		req.Header.Set("Range", r)
	}
	resp, err := repo.Client.Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return resp, nil
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("blob %s in %s: %w", desc.Digest, ref.Repository, ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("blob %s in %s: %w (HTTP %d)", desc.Digest, ref.Repository, ErrUnauthorized, resp.StatusCode)
	}
	return nil, &httpStatusError{code: resp.StatusCode, url: url}
}

// checkSpace fails with ErrNoSpace when the store cannot hold need more bytes.
func checkSpace(store *blobstore.Store, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(store.Root(), &st); err != nil {
		return nil // unknown: let the write fail if it must
	}
	if free := int64(st.Bavail) * int64(st.Bsize); need > free {
		return fmt.Errorf("%w: need %d bytes in %s, %d free", ErrNoSpace, need, store.Root(), free)
	}
	return nil
}

// fetchBlob downloads one blob of repo into store, resuming any partial
// download and waiting for another writer of the same blob.
func fetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, store *blobstore.Store, opts Options, rep *reporter) error {
	w, err := store.OpenWriter(ctx, desc)
	if errors.Is(err, blobstore.ErrAlreadyExists) {
		rep.emit(desc, StatusExists, desc.Size, nil)
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	have, err := w.Size()
	if err != nil {
		return err
	}
	if err := checkSpace(store, desc.Size-have); err != nil {
		return err
	}
	if opts.Parts > 1 && desc.Size >= opts.MinParallelSize && desc.Size > opts.PartSize {
		err = fetchParallel(ctx, repo, desc, w, opts, rep)
		if !errors.Is(err, errNoRanges) {
			return err
		}
	}
	return fetchSequential(ctx, repo, desc, w, opts, rep)
}

// fetchSequential streams the blob through the store writer's inline hash,
// continuing after the bytes a previous attempt left.
func fetchSequential(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, w *blobstore.Writer, opts Options, rep *reporter) error {
	off, err := w.Resume(ctx)
	if err != nil {
		return err
	}
	c := startCounter(desc, rep, off)
	buf := make([]byte, 1<<20)
	for attempt := 0; ; attempt++ {
		if off == desc.Size {
			break
		}
		err := func() error {
			resp, err := blobGET(ctx, repo, desc, off, rangeEnd(off, desc.Size))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK && off > 0 {
				if err := w.Reset(); err != nil { // the registry sent everything again
					return err
				}
				off = 0
				c.n.Store(0)
			}
			if resp.ContentLength > desc.Size-off {
				return fmt.Errorf("%w: blob %s: registry sends %d bytes from offset %d, the manifest says %d in all", ErrVerify, desc.Digest, resp.ContentLength, off, desc.Size)
			}
			_, err = io.CopyBuffer(w, countingReader{io.LimitReader(resp.Body, desc.Size-off+1), c}, buf)
			if errors.Is(err, blobstore.ErrSizeMismatch) {
				w.Cancel()
				return fmt.Errorf("%w: %w", ErrVerify, err)
			}
			if n, serr := w.Size(); serr == nil {
				off = n
			}
			if err == nil && off < desc.Size {
				err = fmt.Errorf("blob %s: connection ended after %d of %d bytes: %w", desc.Digest, off, desc.Size, io.ErrUnexpectedEOF)
			}
			return err
		}()
		if err == nil {
			continue
		}
		if !retryable(err) || attempt >= opts.Retries {
			return fmt.Errorf("pull %s: %w", desc.Digest, err)
		}
		rep.emit(desc, StatusRetry, off, err)
		if err := sleep(ctx, opts.Backoff, attempt); err != nil {
			return err
		}
	}
	return commit(ctx, w, desc, rep)
}

// rangeEnd is the last byte to ask for when continuing from off: none
// (-1: no Range header) from the start, else the blob's last byte (some
// registries refuse open-ended ranges).
func rangeEnd(off, size int64) int64 {
	if off == 0 {
		return -1
	}
	return size - 1
}

// fetchParallel downloads the blob as PartSize ranges, Parts of them at
// once. Workers take ranges in order and fill memory buffers; one goroutine
// appends the buffers to the ingest file in order through the writer's
// inline hash. So the file is written sequentially by one writer (parallel
// writes to one file are slow on ext4), nothing is read back, the hash is
// done when the last byte lands, and the ingest file is always a verified
// prefix that a later pull resumes from. Memory: (Parts+1)×PartSize.
// errNoRanges means nothing was written and the caller should stream.
func fetchParallel(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, w *blobstore.Writer, opts Options, rep *reporter) error {
	off, err := w.Resume(ctx)
	if err != nil {
		return err
	}
	type job struct {
		start, end int64
	}
	var jobs []job
	for s := off; s < desc.Size; s += opts.PartSize {
		jobs = append(jobs, job{s, min(s+opts.PartSize, desc.Size)})
	}
	if len(jobs) == 0 {
		return commit(ctx, w, desc, rep)
	}
	// Probe range support with the first range before anything is written.
	probe, err := blobGET(ctx, repo, desc, jobs[0].start, jobs[0].end-1)
	if err != nil {
		if retryable(err) {
			return errNoRanges // the streaming path retries
		}
		return fmt.Errorf("pull %s: %w", desc.Digest, err)
	}
	if probe.StatusCode != http.StatusPartialContent {
		probe.Body.Close()
		return errNoRanges
	}
	c := startCounter(desc, rep, off)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make([]chan []byte, len(jobs))
	for i := range results {
		results[i] = make(chan []byte, 1)
	}
	// A worker takes a buffer before it takes a range, so the ranges being
	// filled are always the lowest ones not yet written: no deadlock. Range
	// 0 is the probe's, so its buffer is taken here, before any worker runs:
	// were it left to the probe's worker, the others could take every
	// buffer for later ranges first and wait forever behind range 0.
	pool := make(chan []byte, opts.Parts+1)
	for i := 0; i < opts.Parts+1; i++ {
		pool <- nil // allocated on first use
	}
	<-pool // range 0's
	var next atomic.Int64
	next.Store(1) // range 0 belongs to the worker holding the probe's response
	var wg sync.WaitGroup
	worker := func(resp *http.Response) {
		defer wg.Done()
		for first := resp != nil; ; first = false {
			var buf []byte // range 0's, taken above, on the probe worker's first pass
			if !first {
				select {
				case buf = <-pool:
				case <-ctx.Done():
					return
				}
			}
			i := 0
			if !first {
				i = int(next.Add(1) - 1)
			}
			if i >= len(jobs) {
				if resp != nil {
					resp.Body.Close()
				}
				return
			}
			if buf == nil {
				buf = make([]byte, opts.PartSize)
			}
			j := jobs[i]
			buf = buf[:j.end-j.start]
			if err := fetchRange(ctx, repo, desc, j.start, buf, resp, opts, rep, c); err != nil {
				cancel(err)
				return
			}
			resp = nil
			results[i] <- buf
		}
	}
	wg.Add(opts.Parts)
	go worker(probe)
	for k := 1; k < opts.Parts; k++ {
		go worker(nil)
	}
	var werr error
	for i := range jobs {
		select {
		case buf := <-results[i]:
			if _, err := w.Write(buf); err != nil {
				werr = err
			}
			pool <- buf[:cap(buf)]
		case <-ctx.Done():
			werr = context.Cause(ctx)
		}
		if werr != nil {
			cancel(werr)
			break
		}
	}
	wg.Wait()
	if werr != nil {
		return fmt.Errorf("pull %s: %w", desc.Digest, werr)
	}
	return commit(ctx, w, desc, rep)
}

// commit verifies and stores the written blob.
func commit(ctx context.Context, w *blobstore.Writer, desc ocispec.Descriptor, rep *reporter) error {
	if err := w.Commit(ctx, ""); err != nil {
		if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
		return err
	}
	rep.emit(desc, StatusDone, desc.Size, nil)
	return nil
}

// fetchRange fills buf with the blob's bytes from start, retrying from where
// a broken response stopped. resp, if set, is an open response for exactly
// that range.
func fetchRange(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, start int64, buf []byte,
	resp *http.Response, opts Options, rep *reporter, c *counter) error {
	got := 0
	for attempt := 0; ; attempt++ {
		if got == len(buf) {
			return nil
		}
		err := func() error {
			if resp == nil {
				r, err := blobGET(ctx, repo, desc, start+int64(got), start+int64(len(buf))-1)
				if err != nil {
					return err
				}
				resp = r
			}
			defer func() { resp.Body.Close(); resp = nil }()
			if resp.StatusCode != http.StatusPartialContent {
				return fmt.Errorf("%w: blob %s: registry answered a range request with HTTP %d", ErrVerify, desc.Digest, resp.StatusCode)
			}
			if want := int64(len(buf) - got); resp.ContentLength > want {
				return fmt.Errorf("%w: blob %s: registry sends %d bytes for a %d-byte range", ErrVerify, desc.Digest, resp.ContentLength, want)
			}
			for got < len(buf) {
				n, err := resp.Body.Read(buf[got:min(got+1<<20, len(buf))])
				got += n
				c.add(n)
				if err != nil {
					if got < len(buf) {
						return fmt.Errorf("blob %s: range from %d ended after %d of %d bytes: %w", desc.Digest, start, got, len(buf), io.ErrUnexpectedEOF)
					}
					return nil
				}
			}
			return nil
		}()
		if err == nil {
			continue
		}
		if !retryable(err) || attempt >= opts.Retries {
			return err
		}
		rep.emit(desc, StatusRetry, c.n.Load(), err)
		if err := sleep(ctx, opts.Backoff, attempt); err != nil {
			return err
		}
	}
}
