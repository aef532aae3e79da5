// Package blobstore is olm's local model store: an OCI image layout that
// oras, crane and skopeo read as they read any other.
//
// # Layout
//
//	<root>/                       $OLM_HOME/store, default ~/.olm/store
//	├── oci-layout                {"imageLayoutVersion":"1.0.0"}
//	├── index.json                tagged manifests; the tag is the full reference
//	│                             in org.opencontainers.image.ref.name
//	├── blobs/sha256/<hex>        verified content, mode 0444, never rewritten
//	├── ingest/<hex>              partial blob being written, named by digest,
//	│                             kept across restarts and resumed by offset
//	├── ingest/<hex>.lock         flock held by the one process writing <hex>
//	└── .olm/
//	    ├── index.lock            flock held while index.json is rewritten
//	    └── gc.lock               shared by writers, exclusive for garbage collection
//
// # Why not oras-go's content/oci.Store
//
// oras-go's oci.Store keeps the tag set in memory and rewrites index.json
// from that copy, so two processes (the server and a CLI) that tag at once
// lose each other's tags; its ingest files are random temporary names, so an
// interrupted download starts over. olm needs both: the server and CLI
// processes share one store, and multi-gigabyte weights must resume. So the
// layout is written here, with flock(2) around every index.json update (read,
// modify, write a temporary file, fsync, rename) and per-digest ingest files.
// Store still implements oras-go's content.Storage, content.TagResolver and
// oras.Target, so oras.Copy moves models in and out of it.
//
// # Guarantees
//
//   - A blob appears under blobs/ only after its size and sha256 digest were
//     verified and the file was synced; it is then made read-only.
//   - Tag refuses a manifest unless the manifest and every blob it references
//     (recursively, for an index) is present: a tagged model is never
//     missing a blob.
//   - Every digest is validated (oci.ValidateDigest) before it touches a path.
//   - Readers never lock: index.json is replaced by rename, blobs are immutable.
//   - Two writers of the same blob, in one process or two, serialize on the
//     ingest lock; the second finds the blob present and does nothing.
//   - GC deletes blobs that no manifest in index.json reaches. It runs only
//     when no writer holds the store (see Hold); otherwise it reports that it
//     was skipped, and a later GC collects.
//
// A Store is safe for concurrent use by many goroutines and processes.
package blobstore
