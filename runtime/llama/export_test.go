//go:build cgo

package llama

// SetGreedyReference makes a greedy sampler pick with the plain reference
// loop instead of the vectorized path, for tests that compare the two.
func SetGreedyReference(s *Sampler, on bool) { s.setGreedyReference(on) }

// DecodeCounts returns how many decodes of c ran on the caller's thread and
// how many on its decoder thread.
func DecodeCounts(c *Context) (direct, handoff int64) { return c.decodeCounts() }

// DecoderThread returns the OS thread ID of the thread that runs c's
// multi-threaded decodes (0 without one).
func DecoderThread(c *Context) int { return c.decoderThread() }

// FitDefaults runs the common_fit_params binding on llama.cpp's default
// model params for the model at path (on any build) and returns the
// fitted n_gpu_layers, whether a tensor split or overrides were set, and
// the context size left in the context params.
func FitDefaults(path string, fc ContextParams) (r FitResult, split, overrides bool, nCtx int) {
	return fitDefaults(path, fc)
}
