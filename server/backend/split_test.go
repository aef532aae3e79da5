package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/internal/testmodel"
)

// TestSplitWeights: a model built from a split GGUF resolves to all its
// parts' blobs, in order, for the runner (LoadOptions.Parts).
func TestSplitWeights(t *testing.T) {
	p := newParts(t)
	dir := t.TempDir()
	parts, err := testmodel.Split(testmodel.Tiny(t), 3, func(i int) string {
		return filepath.Join(dir, fmt.Sprintf("tiny-%05d-of-%05d.gguf", i+1, 3))
	})
	if err != nil {
		t.Fatal(err)
	}
	p.create(t, &api.CreateRequest{Model: "split", Modelfile: "FROM " + dir})
	m, err := p.models.Resolve(context.Background(), "split")
	if err != nil {
		t.Fatal(err)
	}
	got := append([]string{m.WeightsPath}, m.WeightsParts...)
	if len(got) != len(parts) {
		t.Fatalf("weights %v, want %d parts", got, len(parts))
	}
	for i := range parts {
		a, err1 := os.ReadFile(parts[i])
		b, err2 := os.ReadFile(got[i])
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("weights path %d (%s) is not part %d (%v %v)", i, got[i], i+1, err1, err2)
		}
	}
}
