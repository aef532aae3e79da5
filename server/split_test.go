package server

import (
	"slices"
	"testing"

	"github.com/olmhq/olm/api"
)

func TestLoadOptionsSplitParts(t *testing.T) {
	m := &Model{WeightsPath: "/b/sha256-1", WeightsParts: []string{"/b/sha256-2", "/b/sha256-3"}}
	l := loadOptions(m, api.Options{}, false)
	if l.Model != m.WeightsPath || !slices.Equal(l.Parts, m.WeightsParts) {
		t.Errorf("load options = %+v, want model %s and parts %v", l, m.WeightsPath, m.WeightsParts)
	}
}
