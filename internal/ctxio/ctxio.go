// Package ctxio makes long copies stop when their context ends.
package ctxio

import (
	"context"
	"io"
)

// Reader returns r wrapped so that each Read first checks ctx and returns
// ctx.Err() once it is done: an io.Copy of many gigabytes then stops within
// one buffer of a cancellation.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
