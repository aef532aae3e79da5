//go:build !cgo

package llama

// FIMPrefix returns TokenNull without cgo.
func (m *Model) FIMPrefix() Token { return TokenNull }

// FIMSuffix returns TokenNull without cgo.
func (m *Model) FIMSuffix() Token { return TokenNull }

// FIMMiddle returns TokenNull without cgo.
func (m *Model) FIMMiddle() Token { return TokenNull }
