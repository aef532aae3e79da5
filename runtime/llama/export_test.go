//go:build cgo

package llama

// SetGreedyReference makes a greedy sampler pick with the plain reference
// loop instead of the vectorized path, for tests that compare the two.
func SetGreedyReference(s *Sampler, on bool) { s.setGreedyReference(on) }
