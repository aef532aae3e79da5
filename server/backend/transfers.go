package backend

import (
	"context"
	"errors"
	"fmt"

	"oras.land/oras-go/v2/errdef"

	"github.com/olmhq/olm/blobstore"
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
	if err := fn(server.TransferEvent{Phase: server.PhaseManifest}); err != nil {
		return err
	}
	var sendErr error
	opts := transfer.Options{Progress: func(ev transfer.Event) {
		if sendErr != nil {
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
	if push {
		if _, err := t.Store.Resolve(ctx, ref.String()); err != nil {
			if errors.Is(err, blobstore.ErrNotFound) {
				return fmt.Errorf("%w: model %s", server.ErrNotFound, name)
			}
			return err
		}
		_, err = transfer.Copy(ctx, t.Store, ref.String(), repo, ref.TagOrDigest(), opts)
	} else {
		_, err = transfer.Copy(ctx, repo, ref.TagOrDigest(), t.Store, ref.String(), opts)
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
	return fn(server.TransferEvent{Phase: server.PhaseWriteManifest})
}

// Pull implements server.Transfers.
func (t *Transfers) Pull(ctx context.Context, name string, insecure bool, fn func(server.TransferEvent) error) error {
	return t.copy(ctx, name, insecure, false, fn)
}

// Push implements server.Transfers.
func (t *Transfers) Push(ctx context.Context, name string, insecure bool, fn func(server.TransferEvent) error) error {
	return t.copy(ctx, name, insecure, true, fn)
}
