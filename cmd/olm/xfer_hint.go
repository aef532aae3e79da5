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
		// The registry's own words ("resolve 1: …: not found") add nothing.
		return exitError{ee.code, hint{fmt.Sprintf("%s: no such model in the registry %s; check the repository and tag", ref, ref.Registry), ee.err}}
	case exitNetwork:
		return exitError{ee.code, fmt.Errorf("cannot reach the registry %s; check its name and your network (a plain-HTTP or self-signed registry off loopback needs --insecure): %w", ref.Registry, ee.err)}
	}
	return err
}

// hint is an error whose message replaces the text of the error it wraps.
type hint struct {
	msg string
	err error
}

func (h hint) Error() string { return h.msg }
func (h hint) Unwrap() error { return h.err }
