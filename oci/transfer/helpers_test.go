package transfer

import (
	"context"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

type remoteRepo = remote.Repository

func newMemCreds(host, user, pass string) credentials.Store {
	s := credentials.NewMemoryStore()
	s.Put(context.Background(), host, auth.Credential{Username: user, Password: pass})
	return s
}
