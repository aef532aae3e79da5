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
//   - A large blob (a GGUF is usually one multi-gigabyte layer) from a
//     remote registry downloads as several ranged GETs at once (Options.Parts
//     workers taking PartSize ranges in order into memory buffers). One
//     goroutine appends the buffers to the ingest file in order through the
//     inline sha256, so nothing is read twice (not even from the page
//     cache), the file is written sequentially by one writer (concurrent
//     pwrites into one file measured 10× slower per call on ext4), the
//     hash is done when the last byte lands, and the ingest file is always a
//     hashed prefix a later pull resumes from. The price is bounded memory,
//     (Parts+1)×PartSize (80 MiB by default). We chose this over WriteAt at
//     scattered offsets plus a hasher reading the landed prefix back: that
//     reads every byte twice and needs a range map to resume. A small blob, a
//     registry without Range support, or a loopback registry (where one
//     stream is faster) streams through the hash inline.
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
