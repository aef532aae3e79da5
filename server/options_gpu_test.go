package server

import (
	"io"
	"testing"

	"github.com/olmhq/olm/api"
	"github.com/olmhq/olm/runtime/runner"
)

// num_gpu from the request (or Modelfile) reaches the runner's flags: unset
// is auto, distinct from 0 (CPU) and -1 (all layers).
func TestLoadOptionsNumGPU(t *testing.T) {
	m := &Model{WeightsPath: "/b/sha256-1"}
	for _, tc := range []struct {
		name string
		set  *int
		want int
	}{
		{"unset", nil, runner.NumGPUAuto},
		{"zero", new(0), 0},
		{"all", new(-1), -1},
		{"count", new(12), 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := loadOptions(m, api.Options{NumGPU: tc.set}, false)
			if l.NumGPU != tc.want {
				t.Fatalf("NumGPU = %d, want %d", l.NumGPU, tc.want)
			}
			got, _, err := runner.ParseArgs(l.Args("/s"), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got.NumGPU != tc.want {
				t.Fatalf("after the runner's flags NumGPU = %d, want %d", got.NumGPU, tc.want)
			}
		})
	}
}
