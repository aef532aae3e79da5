// Package transfer copies models between the local store (blobstore), remote
// registries and OCI layout tarballs.
//
// Copy moves a tagged manifest and everything it references from any
// oras-go ReadOnlyTarget to any Target. Between a registry and the local
// store it takes a faster, resumable path of its own:
//
//   - Every blob downloads into the store's ingest file named by its digest.
//     An interrupted download (dropped connection, killed process) resumes
//     from where it stopped with an HTTP Range request; a process that starts
//     the same blob while another downloads it waits on the store's ingest
//     lock and then finds the blob present, so concurrent pulls of one model
//     download it once, in one process or across processes.
//   - A large blob (a GGUF is usually one multi-gigabyte layer) downloads as
//     several ranged GETs at once, written into the ingest file with WriteAt.
//     The sha256 is computed by one goroutine that follows the contiguous
//     prefix that has landed, reading those pages back while they are still
//     in the page cache: the network delivers every byte once, the disk is
//     never re-read, and verification finishes right after the last byte
//     arrives. A small blob, or a registry without Range support, streams
//     through the hash inline.
//   - Blobs the store has are skipped; the manifest is stored and tagged only
//     after every blob is verified, so a re-pull of an up-to-date model costs
//     one manifest request (HEAD).
//   - Transient failures (connection errors, 5xx, 429) are retried with
//     exponential backoff, continuing from the bytes already stored.
//
// Pushes and registry-to-registry copies use oras.Copy (which skips blobs the
// target has and mounts blobs across repositories of one registry when
// Options.MountFrom names candidates), wrapped with progress events and
// whole-copy retries.
//
// Remote repositories come from NewRepository: plain HTTP only for loopback
// registries that do not speak TLS, or with Insecure (which also accepts
// self-signed certificates); credentials from the Docker config file,
// including credsStore and credHelpers (oras-go's credentials package);
// anonymous, basic and bearer-token auth. Blob redirects to other hosts (CDNs)
// are followed without the Authorization header.
//
// Save and Load write and read OCI image layout tarballs for air-gapped
// machines.
package transfer
