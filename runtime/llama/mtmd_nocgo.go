//go:build !cgo

package llama

import "context"

// ProjectorParams configure LoadProjector. Without cgo none can be loaded.
type ProjectorParams struct {
	UseGPU     bool
	NumThreads int
	Marker     string
}

// Projector is a multimodal projector. Without cgo none can be loaded.
type Projector struct{}

// Bitmap is a decoded image. Without cgo none can be made.
type Bitmap struct{}

// Chunks is a tokenized multimodal prompt. Without cgo none can be made.
type Chunks struct{}

// Chunk describes one chunk of Chunks.
type Chunk struct {
	Image     bool
	Tokens    []Token
	NumTokens int
	NumPos    int
	ID        string
}

// DefaultMediaMarker returns libmtmd's default media marker.
func DefaultMediaMarker() string { return "<__media__>" }

// LoadProjector loads a projector; without cgo it returns ErrNoCGO.
func (m *Model) LoadProjector(path string, p ProjectorParams) (*Projector, error) {
	return nil, ErrNoCGO
}

// Close does nothing without cgo.
func (p *Projector) Close() error { return nil }

// Marker returns "" without cgo.
func (p *Projector) Marker() string { return "" }

// Path returns "" without cgo.
func (p *Projector) Path() string { return "" }

// UsesMRoPE returns false without cgo.
func (p *Projector) UsesMRoPE() bool { return false }

// NewBitmap returns ErrNoCGO without cgo.
func (p *Projector) NewBitmap(data []byte) (*Bitmap, error) { return nil, ErrNoCGO }

// Size returns 0, 0 without cgo.
func (b *Bitmap) Size() (int, int) { return 0, 0 }

// Close does nothing without cgo.
func (b *Bitmap) Close() error { return nil }

// Tokenize returns ErrNoCGO without cgo.
func (p *Projector) Tokenize(text string, bitmaps []*Bitmap, addSpecial, parseSpecial bool) (*Chunks, error) {
	return nil, ErrNoCGO
}

// Close does nothing without cgo.
func (c *Chunks) Close() error { return nil }

// Len returns 0 without cgo.
func (c *Chunks) Len() int { return 0 }

// Chunk returns an empty Chunk without cgo.
func (c *Chunks) Chunk(i int) Chunk { return Chunk{} }

// EvalChunk returns ErrNoCGO without cgo.
func (c *Context) EvalChunk(ctx context.Context, p *Projector, chunks *Chunks, i, nPast, seq, nBatch int, logitsLast bool) (int, error) {
	return nPast, ErrNoCGO
}
