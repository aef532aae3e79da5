package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/oci"
)

// maxDepth bounds index nesting.
const maxDepth = 4

func digestOf(h hash.Hash) digest.Digest { return digest.NewDigest(digest.SHA256, h) }

// Copy copies the manifest srcRef of src, and everything it references, to
// dst and tags it dstRef there (dstRef empty: srcRef). src and dst may be
// the local store (*blobstore.Store), a registry (*remote.Repository from
// NewRepository) or any oras-go target. It returns the manifest's descriptor.
//
// From a registry into the store it downloads with resume, parallel ranges
// and single-flight (see the package documentation); other directions use
// oras.Copy. The destination is tagged only once every blob is there.
func Copy(ctx context.Context, src oras.ReadOnlyTarget, srcRef string, dst oras.Target, dstRef string, opts Options) (ocispec.Descriptor, error) {
	partsSet := opts.Parts > 0
	opts = opts.withDefaults()
	if dstRef == "" {
		dstRef = srcRef
	}
	rep := newReporter(opts.Progress)
	store, toStore := dst.(*blobstore.Store)
	if repo, fromRemote := src.(*remote.Repository); fromRemote && toStore {
		if !partsSet && oci.IsLoopbackHost(repo.Reference.Registry) {
			// On loopback one stream already runs at page-cache speed and
			// each extra range request costs the registry more than it
			// saves (bench/transfer.sh); ranges pay over real networks.
			opts.Parts = 1
		}
		desc, err := pull(ctx, repo, srcRef, store, dstRef, opts, rep)
		return desc, mapError(err)
	}
	if toStore {
		release, err := store.Hold(ctx)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		defer release()
	}
	mount := opts.MountFrom
	if sr, ok := src.(*remote.Repository); ok {
		if dr, ok := dst.(*remote.Repository); ok && sr.Reference.Registry == dr.Reference.Registry && sr.Reference.Repository != dr.Reference.Repository {
			mount = append([]string{sr.Reference.Repository}, mount...)
		}
	}
	co := oras.CopyOptions{}
	co.Concurrency = opts.Concurrency
	co.FindSuccessors = findSuccessors
	co.PreCopy = func(ctx context.Context, d ocispec.Descriptor) error {
		rep.emit(d, StatusStart, 0, nil)
		return nil
	}
	co.PostCopy = func(ctx context.Context, d ocispec.Descriptor) error {
		rep.emit(d, StatusDone, d.Size, nil)
		return nil
	}
	co.OnCopySkipped = func(ctx context.Context, d ocispec.Descriptor) error {
		rep.emit(d, StatusExists, d.Size, nil)
		return nil
	}
	if len(mount) > 0 {
		co.MountFrom = func(ctx context.Context, d ocispec.Descriptor) ([]string, error) { return mount, nil }
		co.OnMounted = func(ctx context.Context, d ocispec.Descriptor) error {
			rep.emit(d, StatusMounted, d.Size, nil)
			return nil
		}
	}
	psrc := progressSource{ReadOnlyTarget: src, rep: rep}
	var desc ocispec.Descriptor
	var err error
	for attempt := 0; ; attempt++ {
		desc, err = oras.Copy(ctx, psrc, srcRef, dst, dstRef, co)
		if err == nil || !retryable(mapError(err)) || attempt >= opts.Retries {
			break
		}
		rep.emit(ocispec.Descriptor{}, StatusRetry, 0, err)
		if serr := sleep(ctx, opts.Backoff, attempt); serr != nil {
			return desc, serr
		}
	}
	return desc, mapError(err)
}

// progressSource counts the bytes read from src.
type progressSource struct {
	oras.ReadOnlyTarget
	rep *reporter
}

func (p progressSource) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := p.ReadOnlyTarget.Fetch(ctx, d)
	if err != nil || oci.IsManifest(d.MediaType) {
		return rc, err
	}
	return countingReadCloser{countingReader{rc, &counter{desc: d, rep: p.rep}}, rc}, nil
}

// findSuccessors validates every digest a manifest names before oras-go
// uses it.
func findSuccessors(ctx context.Context, f content.Fetcher, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	out, err := content.Successors(ctx, f, d)
	if err != nil {
		return nil, err
	}
	for _, s := range out {
		if err := oci.ValidateDigest(s.Digest); err != nil {
			return nil, fmt.Errorf("%w: manifest %s: %w", oci.ErrInvalidManifest, d.Digest, err)
		}
	}
	return out, nil
}

// mapError turns library errors into this package's sentinels (keeping the detail).
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var ec *errcode.ErrorResponse
	if errors.As(err, &ec) {
		switch ec.StatusCode {
		case 401, 403:
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		case 404:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if ec.StatusCode >= 500 || ec.StatusCode == 429 {
			return err
		}
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%w: %w (log in with `olm login`)", ErrUnauthorized, err)
	}
	if errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, ErrNotFound) {
		return classed{ErrNotFound, err} // its text already ends in "not found"
	}
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return err
}

// pull copies ref from a registry into the store.
func pull(ctx context.Context, repo *remote.Repository, ref string, store *blobstore.Store, dstRef string, opts Options, rep *reporter) (ocispec.Descriptor, error) {
	release, err := store.Hold(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer release()

	var desc ocispec.Descriptor
	for attempt := 0; ; attempt++ {
		desc, err = repo.Resolve(ctx, ref)
		if err == nil || !retryable(mapError(err)) || attempt >= opts.Retries {
			break
		}
		if serr := sleep(ctx, opts.Backoff, attempt); serr != nil {
			return desc, serr
		}
	}
	if err != nil {
		return desc, fmt.Errorf("resolve %s: %w", ref, mapError(err))
	}
	if err := oci.ValidateDigest(desc.Digest); err != nil {
		return desc, fmt.Errorf("%w: registry resolved %s to a bad digest: %w", ErrVerify, ref, err)
	}
	if d, err := digest.Parse(ref); err == nil && d != desc.Digest {
		return desc, fmt.Errorf("%w: asked for %s, registry resolved %s", ErrVerify, d, desc.Digest)
	}
	// Up to date: the manifest and all it references are here already.
	if ok, _ := store.Exists(ctx, desc); ok {
		if err := store.Tag(ctx, desc, dstRef); err == nil {
			return desc, nil
		}
	}
	if err := pullManifest(ctx, repo, desc, store, opts, rep, 0); err != nil {
		return desc, err
	}
	if err := store.Tag(ctx, desc, dstRef); err != nil {
		return desc, err
	}
	return desc, nil
}

// pullManifest fetches a manifest, the blobs it references, and then stores
// the manifest itself (last, so it never stands without its blobs).
func pullManifest(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, store *blobstore.Store, opts Options, rep *reporter, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: indexes nested deeper than %d", oci.ErrInvalidManifest, maxDepth)
	}
	if desc.Size > oci.MaxManifestSize || desc.Size < 0 {
		return fmt.Errorf("%w: manifest %s is %d bytes, the limit is %d", oci.ErrTooLarge, desc.Digest, desc.Size, oci.MaxManifestSize)
	}
	b, err := store.ReadBlob(ctx, desc.Digest, oci.MaxManifestSize)
	if err != nil {
		b, err = fetchSmall(ctx, repo, desc, opts)
		if err != nil {
			return err
		}
	}
	children, err := oci.Successors(desc, b)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for _, c := range children {
		if oci.IsManifest(c.MediaType) {
			if err := pullManifest(ctx, repo, c, store, opts, rep, depth+1); err != nil {
				return err
			}
			continue
		}
		g.Go(func() error { return fetchBlob(gctx, repo, c, store, opts, rep) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := store.Push(ctx, desc, bytes.NewReader(b)); err != nil && !errors.Is(err, blobstore.ErrAlreadyExists) {
		if errors.Is(err, blobstore.ErrDigestMismatch) || errors.Is(err, blobstore.ErrSizeMismatch) {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
		return err
	}
	return nil
}

// fetchSmall reads a manifest from the registry by digest, verifying it.
func fetchSmall(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, opts Options) ([]byte, error) {
	var b []byte
	var err error
	for attempt := 0; ; attempt++ {
		b, err = func() ([]byte, error) {
			rc, err := repo.Manifests().Fetch(ctx, desc)
			if err != nil {
				return nil, mapError(err)
			}
			defer rc.Close()
			return content.ReadAll(rc, desc)
		}()
		if err == nil || !retryable(mapError(err)) || attempt >= opts.Retries {
			break
		}
		if serr := sleep(ctx, opts.Backoff, attempt); serr != nil {
			return nil, serr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, mapError(err))
	}
	return b, nil
}
