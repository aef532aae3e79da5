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
