// Package backend connects the server's interfaces to olm's real parts:
// Models to the local store (blobstore, read through build.Show), Engine to
// the runtime scheduler (runtime/sched, which runs `olm runner` children),
// Builder to package build, and Transfers to oci/transfer.
//
// cmd/olm's serve command assembles these; tests of package server use
// fakes instead, so that package builds without cgo and without a store.
package backend
