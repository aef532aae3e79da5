package llama

import "math"

// Normalize scales v in place to unit Euclidean length (L2), as Ollama does
// for embeddings, and returns it. A zero vector is left unchanged.
func Normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return v
	}
	inv := 1 / math.Sqrt(sum)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}
