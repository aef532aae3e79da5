package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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
		errors.Is(err, oci.ErrInvalidDigest) || errors.Is(err, errNoRanges) {
		return false
	}
	return true // connection resets, unexpected EOF, timeouts
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
	c := &counter{desc: desc, rep: rep}
	c.n.Store(off)
	if off > 0 {
		rep.emit(desc, StatusResumed, off, nil)
	} else {
		rep.emit(desc, StatusStart, 0, nil)
	}
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
	if err := w.Commit(ctx, ""); err != nil {
		if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
		return err
	}
	rep.emit(desc, StatusDone, desc.Size, nil)
	return nil
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

// part is one range of a parallel download: bytes [Start, End), of which
// [Start, Next) are written.
type part struct {
	Start, End, Next int64
}

// partsState is what the ingest state file records for a parallel download.
type partsState struct {
	Size  int64  `json:"size"`
	Parts []part `json:"parts"`
}

// saveEvery is how many bytes a part writes between state saves.
const saveEvery = 64 << 20

// fetchParallel downloads the blob as several ranges at once, hashing the
// landed prefix in order as it grows. errNoRanges means nothing was written
// and the caller should stream instead.
func fetchParallel(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, w *blobstore.Writer, opts Options, rep *reporter) error {
	var st partsState
	if b := w.State(); b != nil && json.Unmarshal(b, &st) == nil && st.Size == desc.Size && validParts(st.Parts, desc.Size) {
		// resume the ranges recorded
	} else {
		have, _ := w.Size()
		st = partsState{Size: desc.Size}
		for s := int64(0); s < desc.Size; s += opts.PartSize {
			e := min(s+opts.PartSize, desc.Size)
			st.Parts = append(st.Parts, part{Start: s, End: e, Next: s})
		}
		// A sequential attempt may have left a prefix: keep it as part 0's.
		st.Parts[0].Next = min(have, st.Parts[0].End)
	}

	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		failed  error
		written int64
	)
	for _, p := range st.Parts {
		written += p.Next - p.Start
	}
	c := &counter{desc: desc, rep: rep}
	c.n.Store(written)
	save := func() {
		mu.Lock()
		b, _ := json.Marshal(st)
		mu.Unlock()
		w.SaveState(b)
	}

	// Probe range support with the first unfinished part before writing.
	first := -1
	for i, p := range st.Parts {
		if p.Next < p.End {
			first = i
			break
		}
	}
	var probe *http.Response
	if first >= 0 {
		resp, err := blobGET(ctx, repo, desc, st.Parts[first].Next, st.Parts[first].End-1)
		if err != nil {
			if retryable(err) {
				return errNoRanges // let the sequential path retry
			}
			return fmt.Errorf("pull %s: %w", desc.Digest, err)
		}
		if resp.StatusCode != http.StatusPartialContent {
			resp.Body.Close()
			return errNoRanges
		}
		probe = resp
	}
	if written > 0 {
		rep.emit(desc, StatusResumed, written, nil)
	} else {
		rep.emit(desc, StatusStart, 0, nil)
	}
	save()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		cond.Broadcast()
		mu.Unlock()
		cancel()
	}

	// Parts workers take the ranges in order; the one holding the probe's
	// response finishes that range first.
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	work := func(resp *http.Response, i int) {
		defer wg.Done()
		if resp != nil {
			if err := fetchPart(ctx, repo, desc, w, &st.Parts[i], resp, opts, rep, c, &mu, cond, save); err != nil {
				fail(err)
				return
			}
		}
		for {
			i := int(next.Add(1) - 1)
			if i >= len(st.Parts) || ctx.Err() != nil {
				return
			}
			if i == first {
				continue
			}
			if err := fetchPart(ctx, repo, desc, w, &st.Parts[i], nil, opts, rep, c, &mu, cond, save); err != nil {
				fail(err)
				return
			}
		}
	}
	for k := 0; k < opts.Parts; k++ {
		wg.Add(1)
		if k == 0 && first >= 0 {
			go work(probe, first)
		} else {
			go work(nil, -1)
		}
	}

	// The hasher follows the contiguous landed prefix.
	sum := make(chan error, 1)
	h := sha256.New()
	go func() {
		buf := make([]byte, 4<<20)
		var pos int64
		for pos < desc.Size {
			mu.Lock()
			var limit int64
			for {
				if failed != nil {
					mu.Unlock()
					sum <- failed
					return
				}
				limit = landed(st.Parts, pos)
				if limit > pos {
					break
				}
				cond.Wait()
			}
			mu.Unlock()
			n := min(limit-pos, int64(len(buf)))
			if _, err := w.ReadAt(buf[:n], pos); err != nil {
				sum <- fmt.Errorf("blobstore: read back %s: %w", desc.Digest, err)
				return
			}
			h.Write(buf[:n])
			pos += n
		}
		sum <- nil
	}()

	wg.Wait()
	save()
	mu.Lock()
	cond.Broadcast()
	mu.Unlock()
	if err := <-sum; err != nil {
		return err
	}
	mu.Lock()
	err := failed
	mu.Unlock()
	if err != nil {
		return err
	}
	if err := w.Commit(ctx, digestOf(h)); err != nil {
		if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
		return err
	}
	rep.emit(desc, StatusDone, desc.Size, nil)
	return nil
}

// validParts checks recorded parts: in order, covering [0, size) exactly.
func validParts(ps []part, size int64) bool {
	if len(ps) == 0 {
		return false
	}
	var at int64
	for _, p := range ps {
		if p.Start != at || p.End <= p.Start || p.Next < p.Start || p.Next > p.End {
			return false
		}
		at = p.End
	}
	return at == size
}

// landed returns the end of the contiguous written bytes that start at pos.
func landed(ps []part, pos int64) int64 {
	for _, p := range ps {
		if pos >= p.Start && pos < p.End {
			if p.Next < p.End {
				return p.Next
			}
			pos = p.End
		}
	}
	return pos
}

// fetchPart downloads one range into the writer, retrying from where it got to.
func fetchPart(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, w *blobstore.Writer, p *part,
	resp *http.Response, opts Options, rep *reporter, c *counter, mu *sync.Mutex, cond *sync.Cond, save func()) error {
	buf := make([]byte, 1<<20)
	sinceSave := int64(0)
	for attempt := 0; ; attempt++ {
		mu.Lock()
		next, end := p.Next, p.End
		mu.Unlock()
		if next >= end {
			if resp != nil {
				resp.Body.Close()
			}
			return nil
		}
		err := func() error {
			if resp == nil {
				r, err := blobGET(ctx, repo, desc, next, end-1)
				if err != nil {
					return err
				}
				resp = r
			}
			defer func() { resp.Body.Close(); resp = nil }()
			if resp.StatusCode != http.StatusPartialContent {
				return fmt.Errorf("%w: blob %s: registry answered a range request with HTTP %d", ErrVerify, desc.Digest, resp.StatusCode)
			}
			if resp.ContentLength > end-next {
				return fmt.Errorf("%w: blob %s: registry sends %d bytes for a %d-byte range", ErrVerify, desc.Digest, resp.ContentLength, end-next)
			}
			for next < end {
				want := min(int64(len(buf)), end-next)
				n, err := io.ReadFull(resp.Body, buf[:want])
				if n > 0 {
					if _, werr := w.WriteAt(buf[:n], next); werr != nil {
						return werr
					}
					next += int64(n)
					mu.Lock()
					p.Next = next
					cond.Broadcast()
					mu.Unlock()
					c.add(n)
					if sinceSave += int64(n); sinceSave >= saveEvery {
						sinceSave = 0
						save()
					}
				}
				if err != nil {
					if next < end {
						return fmt.Errorf("blob %s: range ended at %d of [%d, %d): %w", desc.Digest, next, p.Start, end, io.ErrUnexpectedEOF)
					}
					break
				}
			}
			return nil
		}()
		if err == nil {
			continue
		}
		if !retryable(err) || attempt >= opts.Retries {
			return fmt.Errorf("pull %s: %w", desc.Digest, err)
		}
		rep.emit(desc, StatusRetry, c.n.Load(), err)
		if err := sleep(ctx, opts.Backoff, attempt); err != nil {
			return err
		}
	}
}
