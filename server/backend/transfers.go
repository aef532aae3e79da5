package backend

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"

	"github.com/olmhq/olm/blobstore"
	"github.com/olmhq/olm/build"
	"github.com/olmhq/olm/oci"
	"github.com/olmhq/olm/oci/transfer"
	"github.com/olmhq/olm/server"
)

// Transfers is server.Transfers over oci/transfer.
type Transfers struct {
	// Store is the local store; required.
	Store *blobstore.Store
	// Naming completes short model names.
	Naming oci.Naming
	// Remote configures registry access (credentials, TLS); Insecure is
	// set per request.
	Remote transfer.RemoteOptions
}

var _ server.Transfers = (*Transfers)(nil)

func (t *Transfers) copy(ctx context.Context, name string, insecure, push bool, fn func(server.TransferEvent) error) error {
	ref, err := t.Naming.Parse(name)
	if err != nil {
		return fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	ro := t.Remote
	ro.Insecure = ro.Insecure || insecure
	repo, err := transfer.NewRepository(ctx, ref, ro)
	if err != nil {
		return err
	}
	// local is the manifest the store has under the name before the
	// transfer: on push the one sent (its own upload is "pushing
	// manifest", not a layer's progress); on pull the one the tag may
	// move off.
	local, lerr := t.Store.Resolve(ctx, ref.String())
	if lerr != nil && !errors.Is(lerr, blobstore.ErrNotFound) {
		return lerr
	}
	if err := fn(server.TransferEvent{Phase: server.PhaseManifest}); err != nil {
		return err
	}
	var sendErr error
	opts := transfer.Options{Progress: func(ev transfer.Event) {
		if sendErr != nil || (push && lerr == nil && ev.Digest == local.Digest) {
			return
		}
		done := ev.Completed
		switch ev.Status {
		case transfer.StatusExists, transfer.StatusMounted, transfer.StatusDone:
			done = ev.Total
		case transfer.StatusRetry:
			return
		}
		sendErr = fn(server.TransferEvent{Phase: server.PhaseLayer, Digest: string(ev.Digest), Total: ev.Total, Completed: done})
	}}
	var got ocispec.Descriptor
	if push {
		if lerr != nil {
			return fmt.Errorf("%w: model %s", server.ErrNotFound, name)
		}
		_, err = transfer.Copy(ctx, t.Store, ref.String(), repo, ref.TagOrDigest(), opts)
	} else {
		got, err = transfer.Copy(ctx, repo, ref.TagOrDigest(), t.Store, ref.String(), opts)
	}
	if err == nil {
		err = sendErr
	}
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("%w: %w", server.ErrNotFound, err)
		}
		return err
	}
	if err := fn(server.TransferEvent{Phase: server.PhaseVerify}); err != nil {
		return err
	}
	if err := fn(server.TransferEvent{Phase: server.PhaseWriteManifest}); err != nil {
		return err
	}
	if push || lerr != nil || local.Digest == got.Digest {
		return nil
	}
	// The tag moved to a new manifest: remove the blobs only the old one
	// used, as Ollama's pull does ("removing any unused layers"). GC skips
	// itself while another writer holds the store; a later one collects.
	if err := fn(server.TransferEvent{Phase: server.PhasePrune}); err != nil {
		return err
	}
	if _, err := t.Store.GC(ctx); err != nil {
		return fmt.Errorf("removing unused layers: %w", err)
	}
	// GGUF files unpacked from archived layers go with their blobs, as
	// after a delete.
	if _, _, err := build.PruneUnpacked(ctx, t.Store); err != nil {
		return fmt.Errorf("removing unused layers: %w", err)
	}
	return nil
}

// Pull implements server.Transfers.
func (t *Transfers) Pull(ctx context.Context, name string, insecure bool, fn func(server.TransferEvent) error) error {
	return t.copy(ctx, name, insecure, false, fn)
}

// Push implements server.Transfers.
func (t *Transfers) Push(ctx context.Context, name string, insecure bool, fn func(server.TransferEvent) error) error {
	return t.copy(ctx, name, insecure, true, fn)
}
