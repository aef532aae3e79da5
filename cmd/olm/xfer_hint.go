package main

import (
	"errors"
	"fmt"

	"github.com/olmhq/olm/oci"
)

// explainTransfer adds what to do next to a classified pull or push error
// for ref: a model the registry does not have, or a registry olm cannot
// reach. The exit code and the wrapped error are kept; other errors are
// returned as they are.
func explainTransfer(err error, ref oci.Reference) error {
	var ee exitError
	if !errors.As(err, &ee) {
		return err
	}
	switch ee.code {
	case exitNotFound:
		return exitError{ee.code, fmt.Errorf("%s: no such model in the registry %s; check the repository and tag: %w", ref, ref.Registry, ee.err)}
	case exitNetwork:
		return exitError{ee.code, fmt.Errorf("cannot reach the registry %s; check its name and your network (a plain-HTTP or self-signed registry off loopback needs --insecure): %w", ref.Registry, ee.err)}
	}
	return err
}
