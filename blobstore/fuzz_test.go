package blobstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzIndex feeds arbitrary index.json contents to the store: reading,
// resolving, tagging and collecting must never panic, and GC must never
// delete the blob of a manifest that index.json names.
func FuzzIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":2,"annotations":{"org.opencontainers.image.ref.name":"a"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.ref.name":"a"}}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, index []byte) {
		ctx := context.Background()
		s := newStore(t)
		md, _ := model(t, s, []byte("w"))
		if err := s.Tag(ctx, md, "keep"); err != nil {
			t.Fatal(err)
		}
		idx, _ := s.Index(ctx)
		// Replace index.json by the fuzz input, keeping our tag's entry by
		// appending it when the input parses.
		os.WriteFile(filepath.Join(s.Root(), "index.json"), index, 0o644)
		s.List(ctx)
		s.Resolve(ctx, "a")
		if _, err := s.Index(ctx); err == nil {
			s.Tag(ctx, md, "keep")
			st, err := s.GC(ctx)
			if err == nil && !st.Skipped {
				if ok, _ := s.Exists(ctx, md); !ok {
					t.Fatalf("GC deleted a tagged manifest (index %q, before %v)", index, idx)
				}
			}
		}
	})
}
